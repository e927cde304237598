//! Hypotheses from signals, each with a confidence that is a measured probability.
//!
//! - **Features**: each signal's strength, control-plane signals split into new and routine for their caller,
//!   and the strongest identity anomaly ([`FEATURES`]).
//! - **Confidence**: per hypothesis, a logistic model over the features, P(h) = σ(b + w·x), its weights fitted
//!   on the labelled suite (`sentinel-bridge evaluate --fit`, seeds in [`super::weights`]) so a confidence of
//!   0.8 is right about eight times in ten. Each hypothesis is judged on its own: confidences do not sum to 1.
//! - **Leading finding**: the most probable hypothesis; "no corroborated threat" when none reaches the fitted
//!   lead threshold. A **kill chain** (credential compromise and an impact it enabled, both at the fitted chain
//!   threshold or more) leads with the impact and names the compromise as its entry point.
//! - **Thin baseline**: a hypothesis whose strongest support rests on an entity with under a week of history is
//!   capped below the act threshold, and says so.

use serde::Serialize;

use super::signals::{Feature, Role, Signal, SignalKind};
use super::weights;

/// The hypotheses the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisId {
    Cryptojacking,
    CredentialCompromise,
    DataExfiltration,
    ConfigDrift,
    /// Ransomware, wiping: data encrypted or destroyed, recovery taken away.
    DestructiveImpact,
    BenignLoad,
    /// The leading finding when nothing is corroborated.
    NoFinding,
}

impl HypothesisId {
    pub fn as_str(self) -> &'static str {
        match self {
            HypothesisId::Cryptojacking => "cryptojacking",
            HypothesisId::CredentialCompromise => "credential_compromise",
            HypothesisId::DataExfiltration => "data_exfiltration",
            HypothesisId::ConfigDrift => "config_drift",
            HypothesisId::DestructiveImpact => "destructive_impact",
            HypothesisId::BenignLoad => "benign_load",
            HypothesisId::NoFinding => "no_finding",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            HypothesisId::Cryptojacking => "Cryptojacking",
            HypothesisId::CredentialCompromise => "Credential compromise",
            HypothesisId::DataExfiltration => "Data exfiltration",
            HypothesisId::ConfigDrift => "Malicious configuration drift",
            HypothesisId::DestructiveImpact => "Ransomware or destructive impact",
            HypothesisId::BenignLoad => "Benign operational load",
            HypothesisId::NoFinding => "No corroborated threat",
        }
    }

    /// What an intruder did with access, as opposed to how they got it.
    pub fn is_impact(self) -> bool {
        matches!(self, HypothesisId::Cryptojacking | HypothesisId::DataExfiltration | HypothesisId::ConfigDrift | HypothesisId::DestructiveImpact)
    }
}

impl std::fmt::Display for HypothesisId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hypotheses a model scores, in the order `weights.rs` lists them.
pub const SCORED: [HypothesisId; 6] = [
    HypothesisId::Cryptojacking,
    HypothesisId::DataExfiltration,
    HypothesisId::ConfigDrift,
    HypothesisId::DestructiveImpact,
    HypothesisId::CredentialCompromise,
    HypothesisId::BenignLoad,
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hypothesis {
    pub id: HypothesisId,
    pub title: &'static str,
    pub confidence: f64,
    /// The signals it rests on, strongest contribution first.
    pub evidence: Vec<SignalKind>,
    pub recommendation: String,
    /// Why the confidence was capped, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped: Option<String>,
}

/// What the recommendations may name.
#[derive(Debug, Clone, Default)]
pub struct Subjects<'a> {
    pub accounts: &'a [String],
    pub hosts: &'a [String],
    pub resources: &'a [String],
    pub ips: &'a [String],
}

fn list(v: &[String], fallback: &str) -> String {
    if v.is_empty() {
        fallback.to_string()
    } else {
        let mut shown: Vec<String> = v.iter().take(3).cloned().collect();
        if v.len() > 3 {
            shown.push(format!("{} more", v.len() - 3));
        }
        shown.join(", ")
    }
}

pub fn band(confidence: f64) -> &'static str {
    if confidence >= 0.7 {
        "high"
    } else if confidence >= 0.4 {
        "medium"
    } else {
        "low"
    }
}

/// The model's inputs: each signal that plays a [`Role::Feature`], each control-plane change twice (new for
/// its caller, routine for it), and the strongest identity anomaly. Context-only signals are not inputs.
pub static FEATURES: std::sync::LazyLock<Vec<Feature>> = std::sync::LazyLock::new(|| {
    let mut f = Vec::new();
    for k in SignalKind::ALL {
        match k.role() {
            Role::Feature => f.push(Feature::Signal(k)),
            Role::Change => f.extend([Feature::Signal(k), Feature::Routine(k)]),
            Role::ContextOnly(_) => {}
        }
    }
    f.push(Feature::Identity);
    f
});

/// The feature vector of a set of signals, in [`FEATURES`] order.
pub fn features(signals: &[Signal]) -> Vec<f64> {
    let get = |k: SignalKind| signals.iter().find(|s| s.name == k);
    FEATURES
        .iter()
        .map(|f| match *f {
            Feature::Routine(k) => get(k).filter(|s| s.routine).map_or(0.0, |s| s.strength),
            Feature::Identity => signals.iter().filter(|s| s.name.is_identity_anomaly()).map(|s| s.strength).fold(0.0, f64::max),
            Feature::Signal(k) if k.role() == Role::Change => get(k).filter(|s| !s.routine).map_or(0.0, |s| s.strength),
            Feature::Signal(k) => get(k).map_or(0.0, |s| s.strength),
        })
        .collect()
}

/// Which way a feature may move a hypothesis: what an analyst knows, fixed before any fit, so a fit cannot learn
/// a generator's accidents (a memory drop counting against mining, a new location against it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Evidence for it: its weight is at least 0, so more of it never lowers the hypothesis.
    Supports,
    /// Evidence against it (the activity is routine, expected): its weight is at most 0.
    Opposes,
    /// No defensible direction, or evidence of another stage of the attack: weight 0.
    Silent,
}

/// The analyst's table. Impact hypotheses (mining, exfiltration, drift) are scored on impact evidence only and
/// credential compromise on entry evidence only (identity anomalies, a caller on a new network); the kill
/// chain then combines them ([`infer`]). Benign load rests on evidence of benign only (the host's own routine,
/// a change routine for its caller); any anomaly opposes it, and its absence is not evidence.
pub fn direction(id: HypothesisId, f: Feature) -> Direction {
    use Direction::*;
    use SignalKind as K;
    let routine = matches!(f, Feature::Signal(K::LoadRoutine) | Feature::Routine(_));
    match id {
        HypothesisId::Cryptojacking => match f {
            Feature::Signal(K::CpuSpike | K::CpuSustained | K::GpuCompute | K::ComputeProvisioned | K::CodeOnHost | K::MiningPool | K::AlertMining) => Supports,
            Feature::Signal(K::LoadRoutine) | Feature::Routine(K::ComputeProvisioned | K::CodeOnHost) => Opposes,
            _ => Silent,
        },
        HypothesisId::DataExfiltration => match f {
            Feature::Signal(
                K::NetworkOutSpike | K::StorageKeysListed | K::VaultSecretBurst | K::BlobReadsNewNetwork | K::AiPolicyViolations | K::AlertExfiltration,
            ) => Supports,
            Feature::Signal(K::LoadRoutine) | Feature::Routine(K::StorageKeysListed) => Opposes,
            _ => Silent,
        },
        HypothesisId::ConfigDrift => match f {
            Feature::Signal(K::RoleAssignment | K::NetworkOpened | K::ResourceGroupCreated | K::NetworkInSpike | K::AlertDrift) => Supports,
            Feature::Routine(K::RoleAssignment | K::NetworkOpened | K::ResourceGroupCreated) => Opposes,
            _ => Silent,
        },
        // "A sudden drop in database performance could indicate a ransomware encryption process": a database's log
        // writes, a storage account's writes, far above their hour; recovery taken away (shadow copies, backups,
        // snapshots, soft delete); the detection's own word.
        HypothesisId::DestructiveImpact => match f {
            Feature::Signal(K::DbWriteSurge | K::StorageWriteSurge | K::DestructiveChange | K::ShadowCopyDeleted | K::AlertDestruction) => Supports,
            Feature::Signal(K::LoadRoutine) | Feature::Routine(K::DestructiveChange) => Opposes,
            _ => Silent,
        },
        HypothesisId::CredentialCompromise => match f {
            Feature::Identity | Feature::Signal(K::CallerNewIp | K::VaultNewNetwork | K::DeceptionHit | K::AlertCredentialAccess | K::HostBruteForce) => {
                Supports
            }
            Feature::Signal(k) if k.is_identity_anomaly() || k == K::SprayAttempt => Supports,
            _ => Silent,
        },
        HypothesisId::BenignLoad => match f {
            _ if routine => Supports,
            // The alert is why there is an incident at all: what it claims is weighed by the threats it names,
            // and benign is judged on the telemetry.
            Feature::Signal(K::AlertMining | K::AlertCredentialAccess | K::AlertExfiltration | K::AlertDrift | K::AlertDestruction) => Silent,
            // Load that may or may not be expected: the host's own routine decides, not the spike.
            Feature::Signal(K::MemoryPressure | K::CpuSpike | K::NetworkInSpike | K::NetworkOutSpike | K::DbWriteSurge | K::StorageWriteSurge) => Silent,
            _ => Opposes,
        },
        HypothesisId::NoFinding => Silent,
    }
}

/// The fitted weights as `weights.rs` writes them: per hypothesis, its bias and (feature, weight) pairs.
pub type WeightTable = &'static [(HypothesisId, f64, &'static [(Feature, f64)])];

/// One hypothesis' logistic model.
#[derive(Debug, Clone)]
pub struct Logistic {
    pub id: HypothesisId,
    pub bias: f64,
    /// One weight per feature, in [`FEATURES`] order.
    pub weights: Vec<f64>,
}

impl Logistic {
    pub fn probability(&self, x: &[f64]) -> f64 {
        let z = self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// A fitted model: one logistic per scored hypothesis, the threshold under which nothing leads, and the one
/// from which a kill chain is named.
#[derive(Debug, Clone)]
pub struct Model {
    pub hypotheses: Vec<Logistic>,
    pub lead_threshold: f64,
    pub chain_threshold: f64,
    /// How an established entry point raises an impact that has evidence of its own.
    pub chain: Combiner,
}

/// The kill chain's second stage: an impact scored on its own evidence (`p_impact`) and the entry point
/// scored on its own (`p_entry`) are combined as `σ(bias + impact·logit(p_impact) + entry·logit(p_entry))`,
/// fitted on the suite with `impact, entry ≥ 0`, and used only where the impact has evidence of its own and
/// the entry point is established (at least the chain threshold): a
/// sign-in from an atypical location makes a CPU spike on the incident's host far more likely to be mining,
/// never the other way round, and never lowers what the impact's own evidence says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combiner {
    pub bias: f64,
    pub impact: f64,
    pub entry: f64,
}

impl Combiner {
    /// No combination: the impact keeps its own score.
    pub const NONE: Combiner = Combiner { bias: -30.0, impact: 0.0, entry: 0.0 };

    pub fn combine(&self, p_impact: f64, p_entry: f64) -> f64 {
        let z = self.bias + self.impact * logit(p_impact) + self.entry * logit(p_entry);
        (1.0 / (1.0 + (-z).exp())).max(p_impact)
    }
}

/// `ln(p / (1 − p))`, with `p` kept off 0 and 1.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Model {
    /// The shipped model, fitted on the suite (see [`weights`]).
    pub fn fitted() -> &'static Model {
        static M: std::sync::LazyLock<Model> = std::sync::LazyLock::new(weights::model);
        &M
    }
}

/// What inference decides.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The leading finding first, then the rest by confidence.
    pub hypotheses: Vec<Hypothesis>,
    /// In a kill chain, the hypothesis that let the impact happen.
    pub entry_point: Option<HypothesisId>,
}

fn recommendation(id: HypothesisId, s: &Subjects) -> String {
    let accounts = list(s.accounts, "the incident's accounts");
    let hosts = list(s.hosts, "the affected hosts");
    match id {
        HypothesisId::Cryptojacking => format!("Isolate {hosts} from the network, revoke the sessions and role assignments of {accounts}, and delete compute they created."),
        HypothesisId::CredentialCompromise => format!("Reset the credentials and revoke the refresh tokens of {accounts} (for a service principal, its secrets and certificates), require MFA re-registration, and review what they did since the first anomalous sign-in."),
        HypothesisId::DataExfiltration => format!("Block outbound traffic from {hosts} to unknown destinations, rotate the storage and Key Vault keys {accounts} could read, and review data access logs for the window."),
        HypothesisId::ConfigDrift => format!("Revert the network, role and storage changes made by {accounts}, and confirm each with its owner before re-applying."),
        HypothesisId::DestructiveImpact => format!("Isolate {hosts} and disable {accounts} now; protect what can still be recovered (turn soft delete and backup immutability back on, stop further deletions), preserve the evidence, and restore from a recovery point taken before the first destructive change."),
        HypothesisId::BenignLoad => format!("Confirm the scaling, batch or backup on {hosts} with its owner; if confirmed, close as benign positive and tune the rule."),
        HypothesisId::NoFinding => "Nothing in the surrounding telemetry corroborates the alert; triage it on its own merits and keep watching the accounts and hosts involved.".into(),
    }
}

/// The most a hypothesis with no supporting evidence may claim.
pub const UNSUPPORTED_CAP: f64 = 0.2;

/// Infers the hypotheses; `cap` is the confidence a thin-baseline hypothesis may not exceed (under the act
/// threshold).
pub fn infer(signals: &[Signal], subjects: &Subjects, model: &Model, cap: f64) -> Inference {
    let x = features(signals);
    let mut out: Vec<Hypothesis> = Vec::new();
    let p_entry = model.hypotheses.iter().find(|m| m.id == HypothesisId::CredentialCompromise).map_or(0.0, |m| m.probability(&x));
    for m in &model.hypotheses {
        let mut confidence = m.probability(&x);
        // Evidence: the signals whose features pushed this hypothesis up, strongest first.
        let mut contributions: Vec<(f64, Feature)> =
            FEATURES.iter().zip(&x).zip(&m.weights).filter(|((_, v), w)| **v > 0.0 && **w > 0.0).map(|((f, v), w)| (v * w, *f)).collect();
        contributions.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut evidence: Vec<SignalKind> = Vec::new();
        for (_, f) in &contributions {
            for k in f.signals().into_iter().filter(|k| signals.iter().any(|s| s.name == *k)) {
                if !evidence.contains(&k) {
                    evidence.push(k);
                }
            }
        }
        // The kill chain's second stage: an impact with evidence of its own, raised by an established entry.
        // And what an analyst knows before any fit: an established entry and evidence of the impact on its own
        // target make the chain at least as likely as the entry times that evidence's strength (the design's
        // "a sign-in from an atypical location coinciding with abnormal CPU on a VM" is mining entered by it).
        if m.id.is_impact() && !evidence.is_empty() && p_entry >= model.chain_threshold {
            let own = signals.iter().filter(|s| evidence.contains(&s.name) && !s.routine).map(|s| s.strength).fold(0.0, f64::max);
            confidence = model.chain.combine(confidence, p_entry).max(p_entry * own);
        }
        let mut capped = None;
        // No confidence without evidence: a hypothesis nothing read supports (benign load with no sign that the
        // load is expected, a threat with none of its signals) stays low, whatever its prior.
        if evidence.is_empty() && confidence > UNSUPPORTED_CAP {
            confidence = UNSUPPORTED_CAP;
        }
        let lead_signal = evidence.first().and_then(|k| signals.iter().find(|s| s.name == *k));
        if let Some(days) = lead_signal.and_then(|s| s.thin_baseline_days) {
            if confidence > cap {
                confidence = cap;
                capped = Some(format!("capped at {cap:.2}: its strongest evidence rests on {days:.1} days of history, under a week"));
            }
        }
        // Benign against a detection product's own classification is contested: what the routine explains and
        // what the vendor saw cannot both be right, so benign stays under the act threshold for an analyst.
        if m.id == HypothesisId::BenignLoad && confidence > cap {
            let claim = signals.iter().filter(|s| s.strength >= super::signals::triggering::VENDOR).find_map(|s| s.name.alert_claim());
            if let Some(claim) = claim {
                confidence = cap;
                capped = Some(format!("capped at {cap:.2}: a detection product classifies the activity as {claim}"));
            }
        }
        out.push(Hypothesis {
            id: m.id,
            title: m.id.title(),
            confidence: (confidence * 100.0).round() / 100.0,
            evidence,
            recommendation: recommendation(m.id, subjects),
            capped,
        });
    }
    out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.id.cmp(&b.id)));
    // Two readings that cannot both be right are both likely: benign on evidence of routine, and a threat on
    // evidence of its own. Neither is certain: each stays under the act threshold, in the order the evidence
    // put them, and says why, for an analyst to decide.
    let likely = |id: HypothesisId| out.iter().any(|h| h.id == id && h.confidence >= 0.5);
    let threat = out.iter().find(|h| h.id != HypothesisId::BenignLoad && h.confidence >= 0.5).map(|h| h.id);
    if let (true, Some(threat)) = (likely(HypothesisId::BenignLoad), threat) {
        for h in out.iter_mut().filter(|h| h.confidence > cap) {
            let other = if h.id == HypothesisId::BenignLoad { threat.title().to_lowercase() } else { "benign operational load".to_string() };
            h.confidence = cap;
            h.capped.get_or_insert(format!("capped at {cap:.2}: contested, {other} is as well supported"));
        }
    }
    let conf = |id: HypothesisId| out.iter().find(|h| h.id == id).map_or(0.0, |h| h.confidence);
    let mut entry_point = None;
    // A kill chain: the compromise and what it enabled are both supported; lead with the impact.
    let impact = out.iter().find(|h| h.id.is_impact()).map(|h| (h.id, h.confidence));
    if let Some((imp, c)) = impact {
        if c >= model.chain_threshold && conf(HypothesisId::CredentialCompromise) >= model.chain_threshold {
            entry_point = Some(HypothesisId::CredentialCompromise);
            let i = out.iter().position(|h| h.id == imp).unwrap_or(0);
            let lead = out.remove(i);
            out.insert(0, lead);
            let entry = recommendation(HypothesisId::CredentialCompromise, subjects);
            out[0].recommendation = format!("{} Entry point, credential compromise: {entry}", out[0].recommendation);
        }
    }
    let top = out.first().map_or(0.0, |h| h.confidence);
    if top < model.lead_threshold {
        out.insert(
            0,
            Hypothesis {
                id: HypothesisId::NoFinding,
                title: HypothesisId::NoFinding.title(),
                confidence: ((1.0 - top) * 100.0).round() / 100.0,
                evidence: Vec::new(),
                recommendation: recommendation(HypothesisId::NoFinding, subjects),
                capped: None,
            },
        );
    }
    Inference { hypotheses: out, entry_point }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(name: SignalKind, strength: f64, routine: bool) -> Signal {
        Signal { name, family: "test", summary: String::new(), strength, routine, thin_baseline_days: None, evidence: Vec::new() }
    }

    fn lead(signals: &[Signal]) -> (HypothesisId, Option<HypothesisId>, Vec<(HypothesisId, f64)>) {
        let i = infer(signals, &Subjects::default(), Model::fitted(), 0.75);
        (i.hypotheses[0].id, i.entry_point, i.hypotheses.iter().map(|h| (h.id, h.confidence)).collect())
    }

    #[test]
    fn nothing_read_is_no_finding() {
        assert_eq!(lead(&[]).0, HypothesisId::NoFinding);
    }

    /// Credential compromise and the mining it enabled: the comment leads with the impact and names the entry
    /// point; each confidence stays its own.
    #[test]
    fn a_kill_chain_leads_with_the_impact() {
        let s = [
            signal(SignalKind::NewLocation, 0.7, false),
            signal(SignalKind::RiskySignin, 0.8, false),
            signal(SignalKind::CpuSpike, 1.0, false),
            signal(SignalKind::CpuSustained, 1.0, false),
            signal(SignalKind::ComputeProvisioned, 0.7, false),
            signal(SignalKind::GpuCompute, 0.8, false),
        ];
        let (id, entry, all) = lead(&s);
        assert_eq!(id, HypothesisId::Cryptojacking, "{all:?}");
        assert_eq!(entry, Some(HypothesisId::CredentialCompromise));
        let cred = all.iter().find(|h| h.0 == HypothesisId::CredentialCompromise).unwrap().1;
        assert!(cred >= Model::fitted().chain_threshold, "{all:?}");
    }

    /// The shipped weights keep to the analyst's table: no fit can make a memory drop or a new location count
    /// against mining, or make the absence of an identity anomaly count for benign load.
    #[test]
    fn the_shipped_weights_keep_to_the_analysts_table() {
        for h in &Model::fitted().hypotheses {
            for (f, w) in FEATURES.iter().zip(&h.weights) {
                let ok = match direction(h.id, *f) {
                    Direction::Supports => *w >= 0.0,
                    Direction::Opposes => *w <= 0.0,
                    Direction::Silent => *w == 0.0,
                };
                assert!(ok, "{}: {f:?} weighs {w}, against {:?}", h.id, direction(h.id, *f));
            }
        }
    }

    /// Monotone evidence: adding any anomaly to a case never lowers a threat it supports or is silent on, and a
    /// memory drop added to a mining case changes nothing.
    #[test]
    fn more_evidence_never_lowers_a_threat() {
        let m = Model::fitted();
        let base = vec![signal(SignalKind::CpuSpike, 0.8, false), signal(SignalKind::NewLocation, 0.6, false)];
        let p = |s: &[Signal], id: HypothesisId| m.hypotheses.iter().find(|h| h.id == id).unwrap().probability(&features(s));
        for k in SignalKind::ALL.into_iter().filter(|k| *k != SignalKind::LoadRoutine) {
            for strength in [0.3, 1.0] {
                let mut more = base.clone();
                more.retain(|s| s.name != k);
                more.push(signal(k, strength, false));
                for id in [
                    HypothesisId::Cryptojacking,
                    HypothesisId::DataExfiltration,
                    HypothesisId::ConfigDrift,
                    HypothesisId::DestructiveImpact,
                    HypothesisId::CredentialCompromise,
                ] {
                    let before = base.iter().filter(|s| s.name == k).map(|s| s.strength).fold(0.0, f64::max);
                    if strength >= before {
                        assert!(p(&more, id) >= p(&base, id) - 1e-12, "{k} at {strength} lowered {id}");
                    }
                }
            }
        }
        let mut with_memory = base.clone();
        with_memory.push(signal(SignalKind::MemoryPressure, 1.0, false));
        assert_eq!(p(&with_memory, HypothesisId::Cryptojacking), p(&base, HypothesisId::Cryptojacking));
    }

    /// The design's headline case: a sign-in from an atypical location coinciding with abnormal CPU on a VM,
    /// enriched minutes after the alert (a spike, not hours of sustained CPU), is cryptojacking entered by a
    /// compromised credential, not a rival hypothesis.
    #[test]
    fn the_design_s_headline_case_is_mining_entered_by_a_credential() {
        // "A 90% CPU spike" on a host that idles near 10% is far above its hour: the spike's full strength.
        let (id, entry, all) = lead(&[signal(SignalKind::NewLocation, 0.7, false), signal(SignalKind::CpuSpike, 1.0, false)]);
        assert_eq!(id, HypothesisId::Cryptojacking, "{all:?}");
        assert_eq!(entry, Some(HypothesisId::CredentialCompromise), "{all:?}");
    }

    /// "A sudden drop in database performance could indicate a ransomware encryption process": a database's log
    /// writes far above its hour make destructive impact the likeliest threat (alone, "could indicate": shown,
    /// not led); recovery taken away as well makes it lead, an entry point makes it a kill chain; the same surge
    /// the database's own history expects does not.
    #[test]
    fn a_database_rewritten_in_place_with_recovery_taken_away_is_ransomware() {
        let surge = signal(SignalKind::DbWriteSurge, 0.9, false);
        let (_, _, all) = lead(std::slice::from_ref(&surge));
        let threats: Vec<&(HypothesisId, f64)> = all.iter().filter(|h| !matches!(h.0, HypothesisId::NoFinding | HypothesisId::BenignLoad)).collect();
        assert_eq!(threats[0].0, HypothesisId::DestructiveImpact, "{all:?}");
        let conf = |all: &[(HypothesisId, f64)]| all.iter().find(|h| h.0 == HypothesisId::DestructiveImpact).unwrap().1;
        let (id, _, more) = lead(&[surge.clone(), signal(SignalKind::DestructiveChange, 0.7, false)]);
        assert_eq!(id, HypothesisId::DestructiveImpact, "{more:?}");
        assert!(conf(&more) >= conf(&all), "{more:?}");
        let (id, entry, all) = lead(&[surge, signal(SignalKind::NewLocation, 0.7, false), signal(SignalKind::ImpossibleTravel, 0.9, false)]);
        assert_eq!((id, entry), (HypothesisId::DestructiveImpact, Some(HypothesisId::CredentialCompromise)), "{all:?}");
        let (id, _, all) = lead(&[signal(SignalKind::LoadRoutine, 0.5, true)]);
        assert_ne!(id, HypothesisId::DestructiveImpact, "{all:?}");
    }

    /// The chain's second stage never lowers an impact, and a stronger entry never lowers the combination.
    #[test]
    fn an_entry_point_only_ever_raises_its_impact() {
        let c = Model::fitted().chain;
        assert!(c.impact >= 0.0 && c.entry >= 0.0, "{c:?}");
        for p in [0.01, 0.2, 0.5, 0.9] {
            let mut last = 0.0;
            for e in [0.0, 0.1, 0.5, 0.9, 1.0] {
                let v = c.combine(p, e);
                assert!(v >= p && v >= last, "{p} {e}: {v}");
                last = v;
            }
        }
    }

    /// Benign only on evidence of benign: an unexplained load with no identity anomaly is never called benign;
    /// the host's own routine is what makes it so.
    #[test]
    fn benign_needs_evidence_that_the_load_is_expected() {
        let (id, _, all) = lead(&[signal(SignalKind::CpuSpike, 0.9, false)]);
        assert_ne!(id, HypothesisId::BenignLoad, "{all:?}");
        let (id, _, all) = lead(&[signal(SignalKind::CpuSpike, 0.9, false), signal(SignalKind::LoadRoutine, 0.9, true)]);
        assert_eq!(id, HypothesisId::BenignLoad, "{all:?}");
    }

    #[test]
    fn routine_work_is_not_drift() {
        let (id, _, all) = lead(&[signal(SignalKind::NetworkOpened, 0.3, true)]);
        assert!(matches!(id, HypothesisId::NoFinding | HypothesisId::BenignLoad), "{all:?}");
    }

    #[test]
    fn a_thin_baseline_caps_the_confidence_below_the_act_threshold() {
        let mut s = vec![signal(SignalKind::CpuSpike, 1.0, false), signal(SignalKind::CpuSustained, 1.0, false)];
        for x in &mut s {
            x.thin_baseline_days = Some(2.0);
        }
        let i = infer(&s, &Subjects::default(), Model::fitted(), 0.75);
        let h = i.hypotheses.iter().find(|h| h.id == HypothesisId::Cryptojacking).unwrap();
        assert!(h.confidence <= 0.75, "{h:?}");
        assert!(h.capped.as_deref().unwrap_or("").contains("2.0 day"), "{h:?}");
    }

    #[test]
    fn every_feature_has_a_weight_in_every_hypothesis() {
        let m = Model::fitted();
        assert_eq!(m.hypotheses.iter().map(|h| h.id).collect::<Vec<_>>(), SCORED);
        for h in &m.hypotheses {
            assert_eq!(h.weights.len(), FEATURES.len(), "{}", h.id);
        }
    }

    /// Every signal a reader can emit either feeds a hypothesis (a non-zero weight on one of its features in the
    /// shipped model) or says, in the vocabulary, why it is context only: a typo or a forgotten weight cannot
    /// silently zero a signal.
    #[test]
    fn every_signal_feeds_a_hypothesis_or_says_why_not() {
        let m = Model::fitted();
        for k in SignalKind::ALL {
            let weighed = FEATURES.iter().enumerate().filter(|(_, f)| f.signals().contains(&k)).any(|(i, _)| m.hypotheses.iter().any(|h| h.weights[i] != 0.0));
            match k.role() {
                Role::ContextOnly(why) => {
                    assert!(!why.is_empty(), "{k}");
                    assert!(!FEATURES.iter().any(|f| matches!(f, Feature::Signal(x) | Feature::Routine(x) if *x == k)), "{k} is context only but a feature");
                }
                Role::Feature | Role::Change => assert!(weighed, "{k} feeds no hypothesis: give it a weight (refit) or make it context only, saying why"),
            }
        }
    }
}
