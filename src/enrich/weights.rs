//! The fitted model: written by `sentinel-bridge evaluate --from 1 --cases 300 --fit src/enrich/weights.rs`
//! from the labelled suite's seeds 1..301; do not edit by hand. Weights are per feature (a feature the table
//! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.

use super::hypotheses::{Combiner, HypothesisId, Logistic, Model, WeightTable, FEATURES};
use super::signals::{Feature, SignalKind as S};

pub const FIT_SEEDS: (u64, u64) = (1, 301);

#[rustfmt::skip]
const WEIGHTS: WeightTable = &[
    (HypothesisId::Cryptojacking, -5.5649, &[
        (Feature::Signal(S::ComputeProvisioned), 2.2878),
        (Feature::Routine(S::ComputeProvisioned), -0.9971),
        (Feature::Signal(S::GpuCompute), 2.6146),
        (Feature::Signal(S::CodeOnHost), 3.1640),
        (Feature::Routine(S::CodeOnHost), -0.1004),
        (Feature::Signal(S::CpuSpike), 3.3471),
        (Feature::Signal(S::CpuSustained), 3.6898),
        (Feature::Signal(S::LoadRoutine), -1.0570),
        (Feature::Signal(S::MiningPool), 3.2789),
        (Feature::Signal(S::AlertMining), 3.8846),
    ]),
    (HypothesisId::DataExfiltration, -4.7960, &[
        (Feature::Signal(S::StorageKeysListed), 3.2753),
        (Feature::Routine(S::StorageKeysListed), -0.2708),
        (Feature::Signal(S::LoadRoutine), -0.9629),
        (Feature::Signal(S::NetworkOutSpike), 4.4233),
        (Feature::Signal(S::VaultSecretBurst), 7.2324),
        (Feature::Signal(S::BlobReadsNewNetwork), 1.6793),
        (Feature::Signal(S::AiPolicyViolations), 1.6584),
        (Feature::Signal(S::AlertExfiltration), 1.3563),
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
    (HypothesisId::CredentialCompromise, -4.2478, &[
        (Feature::Signal(S::NewLocation), 1.7215),
        (Feature::Signal(S::ImpossibleTravel), 2.5681),
        (Feature::Signal(S::RiskySignin), 0.2962),
        (Feature::Signal(S::MfaFatigue), 0.5695),
        (Feature::Signal(S::PasswordSpray), 0.5195),
        (Feature::Signal(S::BruteForce), 0.6072),
        (Feature::Signal(S::SpNewNetwork), 3.1392),
        (Feature::Signal(S::CallerNewIp), 1.5524),
        (Feature::Signal(S::HostBruteForce), 7.4084),
        (Feature::Signal(S::VaultNewNetwork), 0.2954),
        (Feature::Signal(S::DeceptionHit), 1.0943),
        (Feature::Signal(S::AlertCredentialAccess), 1.3766),
        (Feature::Identity, 5.7074),
    ]),
    (HypothesisId::BenignLoad, -1.7778, &[
        (Feature::Signal(S::NewLocation), -0.5658),
        (Feature::Signal(S::ImpossibleTravel), -0.7771),
        (Feature::Signal(S::RiskySignin), -0.0663),
        (Feature::Signal(S::MfaFatigue), -0.2255),
        (Feature::Signal(S::PasswordSpray), -0.1290),
        (Feature::Signal(S::BruteForce), -0.1818),
        (Feature::Signal(S::SprayAttempt), -0.4276),
        (Feature::Signal(S::SpNewNetwork), -2.3784),
        (Feature::Signal(S::CallerNewIp), -0.4085),
        (Feature::Signal(S::ComputeProvisioned), -0.9641),
        (Feature::Routine(S::ComputeProvisioned), 5.1547),
        (Feature::Signal(S::RoleAssignment), -1.3109),
        (Feature::Signal(S::ResourceGroupCreated), -0.1340),
        (Feature::Signal(S::NetworkOpened), -1.7969),
        (Feature::Signal(S::StorageKeysListed), -1.2924),
        (Feature::Routine(S::StorageKeysListed), 1.1329),
        (Feature::Signal(S::GpuCompute), -1.1018),
        (Feature::Routine(S::CodeOnHost), 1.2168),
        (Feature::Signal(S::DestructiveChange), -2.0671),
        (Feature::Signal(S::CpuSustained), -1.1039),
        (Feature::Signal(S::LoadRoutine), 8.5877),
        (Feature::Signal(S::ShadowCopyDeleted), -1.2820),
        (Feature::Signal(S::HostBruteForce), -1.8729),
        (Feature::Signal(S::MiningPool), -1.1250),
        (Feature::Signal(S::VaultSecretBurst), -1.1141),
        (Feature::Signal(S::VaultNewNetwork), -0.1105),
        (Feature::Signal(S::BlobReadsNewNetwork), -1.2358),
        (Feature::Signal(S::DeceptionHit), -0.8076),
        (Feature::Signal(S::AiPolicyViolations), -0.6968),
        (Feature::Identity, -3.1555),
    ]),
];

pub const LEAD_THRESHOLD: f64 = 0.50;
pub const CHAIN_THRESHOLD: f64 = 0.50;

/// The kill chain's second stage: an impact with evidence of its own, raised by an established entry.
pub const CHAIN: Combiner = Combiner { bias: 3.1215, impact: 1.8161, entry: 0.1455 };

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
