//! The fitted model: written by `sentinel-bridge evaluate --from 1 --cases 300 --fit src/enrich/weights.rs`
//! from the labelled suite's seeds 1..301; do not edit by hand. Weights are per feature (a feature the table
//! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.

use super::hypotheses::{HypothesisId, Logistic, Model, WeightTable, FEATURES};
use super::signals::{Feature, SignalKind as S};

pub const FIT_SEEDS: (u64, u64) = (1, 301);

#[rustfmt::skip]
const WEIGHTS: WeightTable = &[
    (HypothesisId::Cryptojacking, -5.8676, &[
        (Feature::Signal(S::ComputeProvisioned), 3.0153),
        (Feature::Routine(S::ComputeProvisioned), -0.1657),
        (Feature::Signal(S::GpuCompute), 3.4461),
        (Feature::Signal(S::CpuSpike), 4.3946),
        (Feature::Signal(S::CpuSustained), 3.1476),
        (Feature::Signal(S::LoadRoutine), -0.3591),
    ]),
    (HypothesisId::DataExfiltration, -5.5693, &[
        (Feature::Signal(S::StorageKeysListed), 4.3336),
        (Feature::Routine(S::StorageKeysListed), -0.0518),
        (Feature::Signal(S::LoadRoutine), -0.4149),
        (Feature::Signal(S::NetworkOutSpike), 6.1909),
        (Feature::Signal(S::AiPolicyViolations), 1.0913),
    ]),
    (HypothesisId::ConfigDrift, -4.2211, &[
        (Feature::Signal(S::RoleAssignment), 8.0347),
        (Feature::Signal(S::ResourceGroupCreated), 0.4990),
        (Feature::Signal(S::NetworkOpened), 8.4193),
        (Feature::Routine(S::NetworkOpened), -0.1474),
        (Feature::Signal(S::NetworkInSpike), 2.6285),
    ]),
    (HypothesisId::CredentialCompromise, -4.5289, &[
        (Feature::Signal(S::NewLocation), 1.6398),
        (Feature::Signal(S::ImpossibleTravel), 2.3006),
        (Feature::Signal(S::RiskySignin), 0.2711),
        (Feature::Signal(S::MfaFatigue), 0.5426),
        (Feature::Signal(S::PasswordSpray), 0.4488),
        (Feature::Signal(S::BruteForce), 0.4749),
        (Feature::Signal(S::SpNewNetwork), 4.0200),
        (Feature::Signal(S::CallerNewIp), 3.5330),
        (Feature::Signal(S::DeceptionHit), 0.9686),
        (Feature::Identity, 6.3206),
    ]),
    (HypothesisId::BenignLoad, -0.6944, &[
        (Feature::Signal(S::NewLocation), -0.9425),
        (Feature::Signal(S::ImpossibleTravel), -1.2982),
        (Feature::Signal(S::RiskySignin), -0.1471),
        (Feature::Signal(S::MfaFatigue), -0.3320),
        (Feature::Signal(S::PasswordSpray), -0.2714),
        (Feature::Signal(S::BruteForce), -0.2554),
        (Feature::Signal(S::SprayAttempt), -2.0090),
        (Feature::Signal(S::SpNewNetwork), -1.4454),
        (Feature::Signal(S::CallerNewIp), -0.3218),
        (Feature::Signal(S::ComputeProvisioned), -1.5383),
        (Feature::Signal(S::RoleAssignment), -2.9907),
        (Feature::Signal(S::ResourceGroupCreated), -0.1499),
        (Feature::Signal(S::NetworkOpened), -2.5433),
        (Feature::Signal(S::StorageKeysListed), -3.4154),
        (Feature::Routine(S::StorageKeysListed), 0.7526),
        (Feature::Signal(S::GpuCompute), -1.7580),
        (Feature::Signal(S::CpuSustained), -1.6122),
        (Feature::Signal(S::LoadRoutine), 7.0841),
        (Feature::Signal(S::DeceptionHit), -0.6852),
        (Feature::Signal(S::AiPolicyViolations), -0.8105),
        (Feature::Identity, -2.7436),
    ]),
];

pub const LEAD_THRESHOLD: f64 = 0.50;
pub const CHAIN_THRESHOLD: f64 = 0.50;

pub fn model() -> Model {
    let hypotheses = WEIGHTS
        .iter()
        .map(|(id, bias, w)| Logistic {
            id: *id,
            bias: *bias,
            weights: FEATURES.iter().map(|f| w.iter().find(|(n, _)| n == f).map_or(0.0, |(_, v)| *v)).collect(),
        })
        .collect();
    Model { hypotheses, lead_threshold: LEAD_THRESHOLD, chain_threshold: CHAIN_THRESHOLD }
}
