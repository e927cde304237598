//! The fitted model: written by `sentinel-bridge evaluate --from 1 --cases 300 --fit src/enrich/weights.rs`
//! from the labelled suite's seeds 1..301; do not edit by hand. Weights are per feature (a feature the table
//! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.

use super::hypotheses::{Combiner, HypothesisId, Logistic, Model, WeightTable, FEATURES};
use super::signals::{Feature, SignalKind as S};

pub const FIT_SEEDS: (u64, u64) = (1, 301);

#[rustfmt::skip]
const WEIGHTS: WeightTable = &[
    (HypothesisId::Cryptojacking, -5.5795, &[
        (Feature::Signal(S::ComputeProvisioned), 2.2550),
        (Feature::Routine(S::ComputeProvisioned), -2.5225),
        (Feature::Signal(S::GpuCompute), 2.5771),
        (Feature::Signal(S::CpuSpike), 5.1749),
        (Feature::Signal(S::CpuSustained), 4.3297),
        (Feature::Signal(S::LoadRoutine), -0.4745),
    ]),
    (HypothesisId::DataExfiltration, -5.5693, &[
        (Feature::Signal(S::StorageKeysListed), 4.3336),
        (Feature::Routine(S::StorageKeysListed), -0.0518),
        (Feature::Signal(S::LoadRoutine), -0.4149),
        (Feature::Signal(S::NetworkOutSpike), 6.1909),
        (Feature::Signal(S::AiPolicyViolations), 1.0913),
    ]),
    (HypothesisId::ConfigDrift, -4.2189, &[
        (Feature::Signal(S::RoleAssignment), 8.0313),
        (Feature::Signal(S::ResourceGroupCreated), 0.6308),
        (Feature::Signal(S::NetworkOpened), 8.4084),
        (Feature::Routine(S::NetworkOpened), -0.1477),
        (Feature::Signal(S::NetworkInSpike), 2.6228),
    ]),
    (HypothesisId::CredentialCompromise, -4.5115, &[
        (Feature::Signal(S::NewLocation), 1.6636),
        (Feature::Signal(S::ImpossibleTravel), 2.3965),
        (Feature::Signal(S::RiskySignin), 0.2279),
        (Feature::Signal(S::MfaFatigue), 0.5614),
        (Feature::Signal(S::PasswordSpray), 0.5181),
        (Feature::Signal(S::BruteForce), 0.4589),
        (Feature::Signal(S::SpNewNetwork), 4.0594),
        (Feature::Signal(S::CallerNewIp), 3.3928),
        (Feature::Signal(S::DeceptionHit), 0.8680),
        (Feature::Identity, 6.4559),
    ]),
    (HypothesisId::BenignLoad, -0.8831, &[
        (Feature::Signal(S::NewLocation), -0.8016),
        (Feature::Signal(S::ImpossibleTravel), -1.1021),
        (Feature::Signal(S::RiskySignin), -0.1066),
        (Feature::Signal(S::MfaFatigue), -0.3075),
        (Feature::Signal(S::PasswordSpray), -0.2232),
        (Feature::Signal(S::BruteForce), -0.2108),
        (Feature::Signal(S::SprayAttempt), -1.7889),
        (Feature::Signal(S::SpNewNetwork), -2.1294),
        (Feature::Signal(S::CallerNewIp), -0.4475),
        (Feature::Signal(S::ComputeProvisioned), -1.4523),
        (Feature::Routine(S::ComputeProvisioned), 4.6498),
        (Feature::Signal(S::RoleAssignment), -2.8174),
        (Feature::Signal(S::ResourceGroupCreated), -0.2620),
        (Feature::Signal(S::NetworkOpened), -2.4246),
        (Feature::Signal(S::StorageKeysListed), -3.2620),
        (Feature::Routine(S::StorageKeysListed), 0.7789),
        (Feature::Signal(S::GpuCompute), -1.6597),
        (Feature::Signal(S::CpuSustained), -1.5739),
        (Feature::Signal(S::LoadRoutine), 7.3740),
        (Feature::Signal(S::DeceptionHit), -0.7385),
        (Feature::Signal(S::AiPolicyViolations), -0.7699),
        (Feature::Identity, -3.2315),
    ]),
];

pub const LEAD_THRESHOLD: f64 = 0.50;
pub const CHAIN_THRESHOLD: f64 = 0.50;

/// The kill chain's second stage: an impact with evidence of its own, raised by an established entry.
pub const CHAIN: Combiner = Combiner { bias: 0.3277, impact: 2.6180, entry: 1.1128 };

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
