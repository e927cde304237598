//! The fitted model: written by `sentinel-bridge evaluate --from 1 --cases 300 --fit src/enrich/weights.rs`
//! from the labelled suite's seeds 1..301; do not edit by hand. Weights are per feature (a feature the table
//! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.

use super::hypotheses::{Combiner, HypothesisId, Logistic, Model, WeightTable, FEATURES};
use super::signals::{Feature, SignalKind as S};

pub const FIT_SEEDS: (u64, u64) = (1, 301);

#[rustfmt::skip]
const WEIGHTS: WeightTable = &[
    (HypothesisId::Cryptojacking, -5.5026, &[
        (Feature::Signal(S::ComputeProvisioned), 2.1993),
        (Feature::Routine(S::ComputeProvisioned), -1.7833),
        (Feature::Signal(S::GpuCompute), 2.5135),
        (Feature::Signal(S::CodeOnHost), 3.2399),
        (Feature::Routine(S::CodeOnHost), -0.1130),
        (Feature::Signal(S::CpuSpike), 3.9866),
        (Feature::Signal(S::CpuSustained), 3.2654),
        (Feature::Signal(S::LoadRoutine), -1.1742),
        (Feature::Signal(S::AlertMining), 4.3516),
    ]),
    (HypothesisId::DataExfiltration, -5.7865, &[
        (Feature::Signal(S::StorageKeysListed), 4.0672),
        (Feature::Routine(S::StorageKeysListed), -0.1922),
        (Feature::Signal(S::LoadRoutine), -0.5541),
        (Feature::Signal(S::NetworkOutSpike), 5.6198),
        (Feature::Signal(S::AiPolicyViolations), 1.1002),
        (Feature::Signal(S::AlertExfiltration), 1.8329),
    ]),
    (HypothesisId::ConfigDrift, -4.9350, &[
        (Feature::Signal(S::RoleAssignment), 5.0892),
        (Feature::Signal(S::ResourceGroupCreated), 0.3893),
        (Feature::Signal(S::NetworkOpened), 5.7083),
        (Feature::Routine(S::NetworkOpened), -0.3536),
        (Feature::Signal(S::NetworkInSpike), 2.4984),
        (Feature::Signal(S::AlertDrift), 4.8116),
    ]),
    (HypothesisId::DestructiveImpact, -3.6931, &[
        (Feature::Signal(S::DestructiveChange), 4.5889),
        (Feature::Routine(S::DestructiveChange), -0.1455),
        (Feature::Signal(S::LoadRoutine), -1.9070),
        (Feature::Signal(S::DbWriteSurge), 3.1476),
        (Feature::Signal(S::StorageWriteSurge), 4.2102),
        (Feature::Signal(S::ShadowCopyDeleted), 4.5299),
        (Feature::Signal(S::AlertDestruction), 5.7973),
    ]),
    (HypothesisId::CredentialCompromise, -4.2471, &[
        (Feature::Signal(S::NewLocation), 1.7236),
        (Feature::Signal(S::ImpossibleTravel), 2.5784),
        (Feature::Signal(S::RiskySignin), 0.2985),
        (Feature::Signal(S::MfaFatigue), 0.5722),
        (Feature::Signal(S::PasswordSpray), 0.5180),
        (Feature::Signal(S::BruteForce), 0.6084),
        (Feature::Signal(S::SpNewNetwork), 3.0868),
        (Feature::Signal(S::CallerNewIp), 1.6258),
        (Feature::Signal(S::HostBruteForce), 7.4050),
        (Feature::Signal(S::DeceptionHit), 1.1030),
        (Feature::Signal(S::AlertCredentialAccess), 1.3887),
        (Feature::Identity, 5.6652),
    ]),
    (HypothesisId::BenignLoad, -1.8128, &[
        (Feature::Signal(S::NewLocation), -0.5688),
        (Feature::Signal(S::ImpossibleTravel), -0.7876),
        (Feature::Signal(S::RiskySignin), -0.0778),
        (Feature::Signal(S::MfaFatigue), -0.2175),
        (Feature::Signal(S::PasswordSpray), -0.1221),
        (Feature::Signal(S::BruteForce), -0.1889),
        (Feature::Signal(S::SprayAttempt), -0.4155),
        (Feature::Signal(S::SpNewNetwork), -2.3582),
        (Feature::Signal(S::CallerNewIp), -0.4527),
        (Feature::Signal(S::ComputeProvisioned), -1.0285),
        (Feature::Routine(S::ComputeProvisioned), 5.2042),
        (Feature::Signal(S::RoleAssignment), -1.2923),
        (Feature::Signal(S::ResourceGroupCreated), -0.1345),
        (Feature::Signal(S::NetworkOpened), -1.7767),
        (Feature::Signal(S::StorageKeysListed), -2.1655),
        (Feature::Routine(S::StorageKeysListed), 1.1389),
        (Feature::Signal(S::GpuCompute), -1.1754),
        (Feature::Signal(S::CodeOnHost), -0.0083),
        (Feature::Routine(S::CodeOnHost), 1.2227),
        (Feature::Signal(S::DestructiveChange), -2.0422),
        (Feature::Signal(S::CpuSustained), -1.1786),
        (Feature::Signal(S::LoadRoutine), 8.6440),
        (Feature::Signal(S::ShadowCopyDeleted), -1.2647),
        (Feature::Signal(S::HostBruteForce), -1.8434),
        (Feature::Signal(S::DeceptionHit), -0.8043),
        (Feature::Signal(S::AiPolicyViolations), -0.7813),
        (Feature::Identity, -3.1458),
    ]),
];

pub const LEAD_THRESHOLD: f64 = 0.50;
pub const CHAIN_THRESHOLD: f64 = 0.50;

/// The kill chain's second stage: an impact with evidence of its own, raised by an established entry.
pub const CHAIN: Combiner = Combiner { bias: 2.9743, impact: 1.3701, entry: 0.0000 };

pub fn model() -> Model {
    let hypotheses = WEIGHTS
        .iter()
        .map(|(id, bias, w)| Logistic {
            id: *id,
            bias: *bias,
            weights: FEATURES.iter().map(|f| w.iter().find(|(n, _)| n == f).map_or(0.0, |(_, v)| *v)).collect(),
        })
        .collect();
    Model { hypotheses, lead_threshold: LEAD_THRESHOLD, chain_threshold: CHAIN_THRESHOLD, chain: CHAIN }
}
