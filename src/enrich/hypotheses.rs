//! Hypotheses from signals, with a confidence in 0..1 from a small, documented model.
//!
//! Each hypothesis lists the signals that support it with a weight; its confidence is the noisy-OR of the
//! supporting evidence, 1 − Π(1 − weight × strength), then scaled down when what it needs is missing (no CPU
//! anomaly for cryptojacking, no identity anomaly for credential compromise, …) or when a signal contradicts
//! it (an identity anomaly makes benign load unlikely). The same signals always give the same confidences.
//! When no hypothesis reaches 0.25, the leading finding is "no corroborated threat".

use std::collections::BTreeMap;

use serde::Serialize;

use super::signals::Signal;

/// The hypotheses the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisId {
    Cryptojacking,
    CredentialCompromise,
    DataExfiltration,
    ConfigDrift,
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
            HypothesisId::BenignLoad => "benign_load",
            HypothesisId::NoFinding => "no_finding",
        }
    }
}

impl std::fmt::Display for HypothesisId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hypothesis {
    pub id: HypothesisId,
    pub title: &'static str,
    pub confidence: f64,
    /// The signals it rests on.
    pub evidence: Vec<String>,
    pub recommendation: String,
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

pub fn infer(signals: &[Signal], subjects: &Subjects) -> Vec<Hypothesis> {
    let s: BTreeMap<&str, f64> = signals.iter().map(|x| (x.name.as_str(), x.strength)).collect();
    let get = |n: &str| s.get(n).copied().unwrap_or(0.0);
    let has = |n: &str| s.contains_key(n);
    let nonroutine = |n: &str| signals.iter().any(|x| x.name == n && !x.routine);
    let identity = ["new_location", "impossible_travel", "risky_signin", "failures_then_success"];
    let identity_strength = identity.iter().map(|n| get(n)).fold(0.0, f64::max);
    let identity_anomaly = identity_strength > 0.0;

    let noisy_or = |parts: &[(&str, f64)]| -> (f64, Vec<String>) {
        let mut keep = 1.0;
        let mut used = Vec::new();
        for (name, w) in parts {
            let v = if *name == "identity" { identity_strength } else { get(name) };
            if v > 0.0 {
                keep *= 1.0 - w * v;
                if *name == "identity" {
                    used.extend(identity.iter().filter(|n| has(n)).map(|n| n.to_string()));
                } else {
                    used.push(name.to_string());
                }
            }
        }
        (1.0 - keep, used)
    };
    let accounts = list(subjects.accounts, "the incident's accounts");
    let hosts = list(subjects.hosts, "the affected hosts");
    let mut out = Vec::new();

    // Cryptojacking: compute burning with no business reason, often on infrastructure an intruder created.
    let (mut c, ev) = noisy_or(&[("cpu_spike", 0.6), ("compute_provisioned", 0.5), ("identity", 0.3), ("network_out_spike", 0.1)]);
    if !has("cpu_spike") {
        c *= 0.3;
    }
    if !identity_anomaly && !nonroutine("compute_provisioned") {
        c *= 0.45;
    }
    out.push(Hypothesis {
        id: HypothesisId::Cryptojacking,
        title: "Cryptojacking",
        confidence: c,
        evidence: ev,
        recommendation: format!("Isolate {hosts} from the network, revoke the sessions and role assignments of {accounts}, and delete compute they created."),
    });

    let (mut c, ev) = noisy_or(&[
        ("impossible_travel", 0.6),
        ("risky_signin", 0.5),
        ("new_location", 0.45),
        ("failures_then_success", 0.45),
        ("related_identity_alerts", 0.3),
        ("deception_hit", 0.3),
        ("related_alerts", 0.15),
        ("role_assignment", 0.2),
    ]);
    if !identity_anomaly {
        c *= 0.3;
    }
    out.push(Hypothesis {
        id: HypothesisId::CredentialCompromise,
        title: "Credential compromise",
        confidence: c,
        evidence: ev,
        recommendation: format!("Reset the credentials and revoke the refresh tokens of {accounts}, require MFA re-registration, and review what they did since the first anomalous sign-in."),
    });

    let (mut c, ev) = noisy_or(&[
        ("network_out_spike", 0.55),
        ("storage_keys_listed", 0.45),
        ("ai_policy_violations", 0.35),
        ("keyvault_access", 0.25),
        ("storage_config_changed", 0.2),
        ("access_grant", 0.15),
    ]);
    if !(has("network_out_spike") || has("storage_keys_listed") || has("ai_policy_violations")) {
        c *= 0.3;
    }
    out.push(Hypothesis {
        id: HypothesisId::DataExfiltration,
        title: "Data exfiltration",
        confidence: c,
        evidence: ev,
        recommendation: format!("Block outbound traffic from {hosts} to unknown destinations, rotate the storage and Key Vault keys {accounts} could read, and review data access logs for the window."),
    });

    let (mut c, ev) = noisy_or(&[
        ("network_opened", 0.65),
        ("role_assignment", 0.45),
        ("storage_config_changed", 0.35),
        ("network_in_spike", 0.3),
        ("keyvault_access", 0.2),
        ("identity", 0.15),
    ]);
    if !(has("network_opened") || has("role_assignment") || has("storage_config_changed")) {
        c = 0.0;
    }
    out.push(Hypothesis {
        id: HypothesisId::ConfigDrift,
        title: "Malicious configuration drift",
        confidence: c,
        evidence: ev,
        recommendation: format!("Revert the network, role and storage changes made by {accounts}, and confirm each with its owner before re-applying."),
    });

    // Benign operational load: scaling and busy compute with nothing suspicious around them.
    let compute_any = if has("compute_provisioned") { 1.0 } else { 0.0 };
    let mut c = 1.0 - (1.0 - 0.4 * get("cpu_spike")) * (1.0 - 0.5 * compute_any);
    let mut ev: Vec<String> = ["cpu_spike", "compute_provisioned"].iter().filter(|n| has(n)).map(|n| n.to_string()).collect();
    if identity_anomaly {
        c *= 0.25;
    }
    if has("related_alerts") || has("related_identity_alerts") {
        c *= 0.6;
    }
    if has("network_opened") || has("deception_hit") || has("storage_keys_listed") {
        c *= 0.5;
    }
    if !has("cpu_spike") && !has("compute_provisioned") {
        c = 0.0;
        ev.clear();
    }
    out.push(Hypothesis {
        id: HypothesisId::BenignLoad,
        title: "Benign operational load",
        confidence: c,
        evidence: ev,
        recommendation: format!("Confirm the scaling or job on {hosts} with its owner; if confirmed, close as benign positive and tune the rule."),
    });

    for h in &mut out {
        h.confidence = (h.confidence * 100.0).round() / 100.0;
    }
    out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.id.as_str().cmp(b.id.as_str())));
    let top = out.first().map(|h| h.confidence).unwrap_or(0.0);
    if top < 0.25 {
        out.insert(
            0,
            Hypothesis {
                id: HypothesisId::NoFinding,
                title: "No corroborated threat",
                confidence: ((1.0 - top) * 100.0).round() / 100.0,
                evidence: Vec::new(),
                recommendation: "Nothing in the surrounding telemetry corroborates the alert; triage it on its own merits and keep watching the accounts and hosts involved.".into(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(name: &str, strength: f64, routine: bool) -> Signal {
        Signal { name: name.into(), family: "test", summary: String::new(), strength, routine, evidence: Vec::new() }
    }

    /// The model as a table: signals in, the leading hypothesis and every confidence out. A change to a weight
    /// or a rule shows here first, row by row.
    #[test]
    fn signals_to_confidences() {
        type Row = (&'static [(&'static str, f64, bool)], HypothesisId, &'static [(HypothesisId, f64)]);
        use HypothesisId::*;
        // (signals: name, strength, routine) → the leading hypothesis, and the top two confidences in order.
        let table: &[Row] = &[
            (&[], NoFinding, &[(NoFinding, 1.0), (BenignLoad, 0.0)]),
            (&[("cpu_spike", 1.0, false), ("compute_provisioned", 1.0, false)], Cryptojacking, &[(Cryptojacking, 0.8), (BenignLoad, 0.7)]),
            // A CPU spike alone is more likely load than mining: cryptojacking needs more than the spike.
            (&[("cpu_spike", 0.8, false)], BenignLoad, &[(BenignLoad, 0.32), (Cryptojacking, 0.22)]),
            (&[("impossible_travel", 1.0, false), ("role_assignment", 1.0, false)], CredentialCompromise, &[(CredentialCompromise, 0.68), (ConfigDrift, 0.53)]),
            (&[("network_out_spike", 1.0, false), ("storage_keys_listed", 1.0, false)], DataExfiltration, &[(DataExfiltration, 0.75), (Cryptojacking, 0.01)]),
            (&[("network_opened", 1.0, false), ("role_assignment", 1.0, false)], ConfigDrift, &[(ConfigDrift, 0.81), (CredentialCompromise, 0.06)]),
            // The same provisioning done routinely by its caller reads as operations.
            (&[("cpu_spike", 0.5, false), ("compute_provisioned", 0.6, true)], BenignLoad, &[(BenignLoad, 0.6), (Cryptojacking, 0.23)]),
            (&[("related_alerts", 0.2, false)], NoFinding, &[(NoFinding, 0.99), (CredentialCompromise, 0.01)]),
        ];
        for (signals, lead, top) in table {
            let signals: Vec<Signal> = signals.iter().map(|(n, s, r)| signal(n, *s, *r)).collect();
            let out = infer(&signals, &Subjects::default());
            let got: Vec<(HypothesisId, f64)> = out.iter().map(|h| (h.id, h.confidence)).collect();
            assert_eq!(out[0].id, *lead, "{got:?}");
            assert_eq!(&got[..top.len()], *top, "{:?}", signals.iter().map(|s| &s.name).collect::<Vec<_>>());
            assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "ordered by confidence: {got:?}");
        }
    }
}
