//! The fitted model: written by `sentinel-bridge evaluate --from 1 --cases 300 --fit src/enrich/weights.rs`
//! from the labelled suite's seeds 1..301; do not edit by hand. Weights are per feature (a feature the table
//! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.

use super::hypotheses::{Combiner, HypothesisId, Logistic, Model, WeightTable, FEATURES};
use super::signals::{Feature, SignalKind as S};

pub const FIT_SEEDS: (u64, u64) = (1, 301);

#[rustfmt::skip]
const WEIGHTS: WeightTable = &[
    (HypothesisId::Cryptojacking, -4.9520, &[
        (Feature::Signal(S::ComputeProvisioned), 2.0912),
        (Feature::Routine(S::ComputeProvisioned), -1.9989),
        (Feature::Signal(S::GpuCompute), 2.3899),
        (Feature::Signal(S::CodeOnHost), 0.9413),
        (Feature::Routine(S::CodeOnHost), -0.5627),
        (Feature::Signal(S::CpuSpike), 3.4635),
        (Feature::Signal(S::CpuSustained), 4.4957),
        (Feature::Signal(S::LoadRoutine), -1.2093),
        (Feature::Signal(S::AlertMining), 4.7813),
    ]),
    (HypothesisId::DataExfiltration, -5.6751, &[
        (Feature::Signal(S::StorageKeysListed), 4.0039),
        (Feature::Routine(S::StorageKeysListed), -0.0939),
        (Feature::Signal(S::LoadRoutine), -0.4475),
        (Feature::Signal(S::NetworkOutSpike), 5.7199),
        (Feature::Signal(S::AiPolicyViolations), 1.0589),
        (Feature::Signal(S::AlertExfiltration), 2.0268),
    ]),
    (HypothesisId::ConfigDrift, -4.7927, &[
        (Feature::Signal(S::RoleAssignment), 6.3686),
        (Feature::Signal(S::ResourceGroupCreated), 0.4219),
        (Feature::Signal(S::NetworkOpened), 5.5178),
        (Feature::Routine(S::NetworkOpened), -0.5638),
        (Feature::Signal(S::NetworkInSpike), 2.2823),
        (Feature::Signal(S::AlertDrift), 5.1971),
    ]),
    (HypothesisId::CredentialCompromise, -4.5890, &[
        (Feature::Signal(S::NewLocation), 1.6486),
        (Feature::Signal(S::ImpossibleTravel), 2.3279),
        (Feature::Signal(S::RiskySignin), 0.2237),
        (Feature::Signal(S::MfaFatigue), 0.5942),
        (Feature::Signal(S::PasswordSpray), 0.4152),
        (Feature::Signal(S::BruteForce), 0.4594),
        (Feature::Signal(S::SpNewNetwork), 3.9564),
        (Feature::Signal(S::CallerNewIp), 3.5531),
        (Feature::Signal(S::DeceptionHit), 0.8040),
        (Feature::Signal(S::AlertCredentialAccess), 0.8095),
        (Feature::Identity, 6.2843),
    ]),
    (HypothesisId::BenignLoad, -0.9412, &[
        (Feature::Signal(S::NewLocation), -0.7861),
        (Feature::Signal(S::ImpossibleTravel), -1.1029),
        (Feature::Signal(S::RiskySignin), -0.1029),
        (Feature::Signal(S::MfaFatigue), -0.2960),
        (Feature::Signal(S::PasswordSpray), -0.2287),
        (Feature::Signal(S::BruteForce), -0.2030),
        (Feature::Signal(S::SprayAttempt), -1.7240),
        (Feature::Signal(S::SpNewNetwork), -2.1109),
        (Feature::Signal(S::CallerNewIp), -0.4151),
        (Feature::Signal(S::ComputeProvisioned), -1.4750),
        (Feature::Routine(S::ComputeProvisioned), 4.7584),
        (Feature::Signal(S::RoleAssignment), -2.7580),
        (Feature::Signal(S::ResourceGroupCreated), -0.2003),
        (Feature::Signal(S::NetworkOpened), -2.1913),
        (Feature::Signal(S::StorageKeysListed), -3.2105),
        (Feature::Routine(S::StorageKeysListed), 0.8674),
        (Feature::Signal(S::GpuCompute), -1.6857),
        (Feature::Routine(S::CodeOnHost), 3.4518),
        (Feature::Signal(S::CpuSustained), -1.4936),
        (Feature::Signal(S::LoadRoutine), 7.2107),
        (Feature::Signal(S::DeceptionHit), -0.7353),
        (Feature::Signal(S::AiPolicyViolations), -0.7600),
        (Feature::Identity, -3.2138),
    ]),
];

pub const LEAD_THRESHOLD: f64 = 0.50;
pub const CHAIN_THRESHOLD: f64 = 0.50;

/// The kill chain's second stage: an impact with evidence of its own, raised by an established entry.
pub const CHAIN: Combiner = Combiner { bias: 0.4673, impact: 2.4638, entry: 1.3406 };

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
