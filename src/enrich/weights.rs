//! The fitted model: written by `sentinel-bridge evaluate --from 1 --cases 300 --fit src/enrich/weights.rs`
//! from the labelled suite's seeds 1..301; do not edit by hand. Weights are per feature (a feature the table
//! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.

use super::hypotheses::{Combiner, HypothesisId, Logistic, Model, WeightTable, FEATURES};
use super::signals::{Feature, SignalKind as S};

pub const FIT_SEEDS: (u64, u64) = (1, 301);

#[rustfmt::skip]
const WEIGHTS: WeightTable = &[
    (HypothesisId::Cryptojacking, -5.4415, &[
        (Feature::Signal(S::ComputeProvisioned), 1.7611),
        (Feature::Routine(S::ComputeProvisioned), -1.3930),
        (Feature::Signal(S::GpuCompute), 2.0127),
        (Feature::Signal(S::CodeOnHost), 3.1095),
        (Feature::Routine(S::CodeOnHost), -0.9775),
        (Feature::Signal(S::CpuSpike), 4.3733),
        (Feature::Signal(S::CpuSustained), 3.9998),
        (Feature::Signal(S::LoadRoutine), -1.0417),
        (Feature::Signal(S::AlertMining), 4.1924),
    ]),
    (HypothesisId::DataExfiltration, -5.7602, &[
        (Feature::Signal(S::StorageKeysListed), 3.9387),
        (Feature::Routine(S::StorageKeysListed), -0.1420),
        (Feature::Signal(S::LoadRoutine), -0.5117),
        (Feature::Signal(S::NetworkOutSpike), 5.6267),
        (Feature::Signal(S::AiPolicyViolations), 1.2342),
        (Feature::Signal(S::AlertExfiltration), 1.7909),
    ]),
    (HypothesisId::ConfigDrift, -4.8943, &[
        (Feature::Signal(S::RoleAssignment), 6.2392),
        (Feature::Signal(S::ResourceGroupCreated), 0.8265),
        (Feature::Signal(S::NetworkOpened), 5.2681),
        (Feature::Routine(S::NetworkOpened), -0.5542),
        (Feature::Signal(S::NetworkInSpike), 2.0563),
        (Feature::Signal(S::AlertDrift), 5.0107),
    ]),
    (HypothesisId::DestructiveImpact, -3.6830, &[
        (Feature::Signal(S::DestructiveChange), 2.2087),
        (Feature::Routine(S::DestructiveChange), -0.3246),
        (Feature::Signal(S::LoadRoutine), -2.0119),
        (Feature::Signal(S::DbWriteSurge), 4.8662),
        (Feature::Signal(S::StorageWriteSurge), 4.8358),
        (Feature::Signal(S::ShadowCopyDeleted), 5.9678),
        (Feature::Signal(S::AlertDestruction), 5.9190),
    ]),
    (HypothesisId::CredentialCompromise, -4.7182, &[
        (Feature::Signal(S::NewLocation), 1.7497),
        (Feature::Signal(S::ImpossibleTravel), 2.6273),
        (Feature::Signal(S::RiskySignin), 0.2306),
        (Feature::Signal(S::MfaFatigue), 0.6556),
        (Feature::Signal(S::PasswordSpray), 0.6024),
        (Feature::Signal(S::BruteForce), 0.4249),
        (Feature::Signal(S::SpNewNetwork), 3.7608),
        (Feature::Signal(S::CallerNewIp), 2.8504),
        (Feature::Signal(S::DeceptionHit), 0.6383),
        (Feature::Signal(S::AlertCredentialAccess), 0.9465),
        (Feature::Identity, 6.2061),
    ]),
    (HypothesisId::BenignLoad, -1.8576, &[
        (Feature::Signal(S::ImpossibleTravel), -1.4912),
        (Feature::Signal(S::RiskySignin), -0.1113),
        (Feature::Signal(S::MfaFatigue), -0.3840),
        (Feature::Signal(S::PasswordSpray), -0.3903),
        (Feature::Signal(S::BruteForce), -0.2479),
        (Feature::Signal(S::SprayAttempt), -0.7540),
        (Feature::Signal(S::SpNewNetwork), -2.4543),
        (Feature::Signal(S::CallerNewIp), -0.6361),
        (Feature::Signal(S::ComputeProvisioned), -0.9435),
        (Feature::Routine(S::ComputeProvisioned), 3.9961),
        (Feature::Signal(S::RoleAssignment), -1.2600),
        (Feature::Signal(S::ResourceGroupCreated), -0.3833),
        (Feature::Signal(S::NetworkOpened), -1.7931),
        (Feature::Signal(S::StorageKeysListed), -2.1117),
        (Feature::Routine(S::StorageKeysListed), 1.0470),
        (Feature::Signal(S::GpuCompute), -1.0783),
        (Feature::Signal(S::CodeOnHost), -0.1665),
        (Feature::Routine(S::CodeOnHost), 3.5741),
        (Feature::Signal(S::DestructiveChange), -1.7323),
        (Feature::Signal(S::CpuSustained), -1.1972),
        (Feature::Signal(S::LoadRoutine), 8.7674),
        (Feature::Signal(S::ShadowCopyDeleted), -1.2793),
        (Feature::Signal(S::DeceptionHit), -0.6713),
        (Feature::Signal(S::AiPolicyViolations), -0.7528),
        (Feature::Identity, -2.2755),
    ]),
];

pub const LEAD_THRESHOLD: f64 = 0.50;
pub const CHAIN_THRESHOLD: f64 = 0.50;

/// The kill chain's second stage: an impact with evidence of its own, raised by an established entry.
pub const CHAIN: Combiner = Combiner { bias: 2.7440, impact: 1.2845, entry: 0.0000 };

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
