//! The incident's own alerts as evidence: what the detection itself says (its type, name, description,
//! MITRE techniques and tactics) and what its entities carry (a process command line, a file, a malware
//! name, a URL or a domain). Alert text is written by whoever controls the alerting source, so it is only
//! ever matched against the fixed vocabularies below, never interpreted, and shown escaped like any value.
//!
//! How much a match weighs depends on who says it:
//! - an **artefact** in an entity (a miner's binary, pool or options on a command line): what ran, 0.95;
//! - a **detection product's classification** (Defender for Cloud, Entra ID Protection, Defender for Cloud
//!   Apps…: anything but the customer's own scheduled rules): the vendor watched the behaviour, 0.8;
//! - a **scheduled rule's name**: the rule author's claim about what the rule looks for, 0.4;
//! - a **technique tag** alone: the rule's MITRE mapping, which it carries whether or not this firing is
//!   malicious, 0.25.
//!
//! The model then weighs each class as a feature like any other, fitted on the labelled suite, in which the
//! rules' tags and the vendors' classifications fire on benign cases too (an "unusual amount of data" alert on
//! a month-end backup, an unfamiliar sign-in that is a traveller).

use serde_json::Value;

use super::{Evidence, Signal, SignalKind};
use crate::azure::sentinel::{Alert, Entity};
use crate::model::text::count;

/// Who says it, and how much that weighs.
const ARTEFACT: f64 = 0.95;
/// A detection product classified it (public: a benign verdict against it is capped, see `hypotheses::infer`).
pub const VENDOR: f64 = 0.8;
const RULE_NAME: f64 = 0.4;
const TAG: f64 = 0.25;

/// What one class of detection is called, in each place an alert can say it (all lower case; alert types
/// are matched without separators, so `VM_DigitalCurrencyMining` is `vmdigitalcurrencymining`).
struct Vocabulary {
    kind: SignalKind,
    what: &'static str,
    /// Substrings of the alert type.
    types: &'static [&'static str],
    /// Phrases of the display name or description.
    phrases: &'static [&'static str],
    /// MITRE ATT&CK techniques (a sub-technique matches its parent).
    techniques: &'static [&'static str],
    /// Tactics that, alone, say as much as a technique tag.
    tactics: &'static [&'static str],
    /// Substrings of an entity's command line, file, malware, URL or domain that name the tooling.
    artefacts: &'static [&'static str],
}

/// Technique ids from MITRE ATT&CK (attack.mitre.org): T1496 resource hijacking; T1110 brute force, T1078 valid
/// accounts, T1621 MFA request generation, T1528/T1550/T1539 token and cookie theft, T1556 authentication
/// process; T1537/T1567/T1048/T1041/T1030/T1020/T1530 exfiltration and data from cloud storage; T1578 cloud
/// compute modification, T1562 impair defences, T1098 account manipulation, T1484 policy modification;
/// T1486/T1485/T1490/T1489/T1561/T1491 encryption, destruction, inhibiting recovery, service stop, wipe, defacement.
const VOCABULARIES: &[Vocabulary] = &[
    Vocabulary {
        kind: SignalKind::AlertMining,
        what: "crypto mining",
        types: &["digitalcurrencymining", "coinminer", "cryptominer", "cryptomining", "bitcoinmining", "miningpool", "cryptocurrencymining"],
        phrases: &[
            "digital currency mining",
            "currency mining",
            "coin mining",
            "coinminer",
            "crypto mining",
            "crypto-mining",
            "cryptomining",
            "cryptocurrency mining",
            "bitcoin mining",
            "mining pool",
            "cryptojacking",
        ],
        techniques: &["t1496"],
        tactics: &[],
        artefacts: &[
            // Miners and the droppers that install them.
            "xmrig",
            "xmr-stak",
            "minerd",
            "cpuminer",
            "ccminer",
            "cgminer",
            "bfgminer",
            "ethminer",
            "nbminer",
            "lolminer",
            "phoenixminer",
            "nanominer",
            "srbminer",
            "teamredminer",
            "gminer",
            "t-rex ",
            "kdevtmpfsi",
            "kinsing",
            "coinminer",
            "cryptominer",
            // The pool protocol and options only miners take.
            "stratum+tcp",
            "stratum+ssl",
            "stratum+tls",
            "stratum2+tcp",
            "--donate-level",
            "--max-cpu-usage",
            "--cpu-max-threads-hint",
            "--randomx",
            "-a rx/0",
            "--algo=rx",
            "--coin=monero",
            "--coin monero",
            "--nicehash",
            "--cpu-priority",
            // Public pools.
            "minexmr",
            "supportxmr",
            "nanopool",
            "2miners",
            "f2pool",
            "ethermine",
            "hashvault",
            "moneroocean",
            "c3pool",
            "unmineable",
            "herominers",
            "minergate",
            "xmrpool",
            "monerohash",
            "miningpoolhub",
        ],
    },
    Vocabulary {
        kind: SignalKind::AlertCredentialAccess,
        what: "credential attack",
        types: &[
            "impossibletravel",
            "unfamiliarlocation",
            "unfamiliarfeatures",
            "passwordspray",
            "bruteforce",
            "leakedcredentials",
            "anomaloustoken",
            "tokenissueranomaly",
            "mfafatigue",
        ],
        phrases: &[
            "impossible travel",
            "atypical travel",
            "unfamiliar sign-in",
            "unfamiliar location",
            "password spray",
            "brute force",
            "brute-force",
            "leaked credential",
            "anomalous token",
            "mfa fatigue",
            "credential stuffing",
        ],
        techniques: &["t1110", "t1078", "t1621", "t1528", "t1550", "t1539", "t1556"],
        tactics: &["credentialaccess"],
        artefacts: &["mimikatz", "sekurlsa", "hydra ", "crackmapexec", "roadtx", "aadinternals"],
    },
    Vocabulary {
        kind: SignalKind::AlertExfiltration,
        what: "data exfiltration",
        types: &["exfiltration", "amountofdataanomaly", "unusualamountofdata"],
        phrases: &["exfiltration", "data extracted", "unusual amount of data", "mass download", "data was transferred to"],
        techniques: &["t1537", "t1567", "t1048", "t1041", "t1030", "t1020", "t1530"],
        tactics: &["exfiltration"],
        artefacts: &["rclone copy", "rclone sync", "megacmd", "mega-put", "megasync"],
    },
    Vocabulary {
        kind: SignalKind::AlertDrift,
        what: "configuration tampering",
        types: &["disablediagnostic", "defenderplandisabled", "nsgrule"],
        phrases: &["network security group", "nsg rule", "firewall rule", "role assignment", "granting of permissions", "diagnostic settings", "defender plan"],
        techniques: &["t1578", "t1562", "t1098", "t1484"],
        tactics: &["defenseevasion"],
        artefacts: &[],
    },
    Vocabulary {
        kind: SignalKind::AlertDestruction,
        what: "destructive impact",
        types: &["ransomware", "shadowcopydelet", "massdelet", "wiper"],
        phrases: &["ransomware", "shadow cop", "mass delet", "encrypted files", "wiper", "backups deleted", "soft delete disabled"],
        techniques: &["t1486", "t1485", "t1490", "t1489", "t1561", "t1491"],
        tactics: &[],
        artefacts: &[
            "vssadmin delete shadows",
            "vssadmin.exe delete shadows",
            "shadowcopy delete",
            "recoveryenabled no",
            "wbadmin delete catalog",
            ".encrypted",
        ],
    },
];

/// The mining tool, pool protocol or public pool a lower-cased text names, if any (the crypto-mining
/// vocabulary's artefacts): also how a host's connections are read ([`super::network`]).
pub fn mining_artefact(lower: &str) -> Option<&'static str> {
    VOCABULARIES.iter().find(|v| v.kind == SignalKind::AlertMining).and_then(|v| v.artefacts.iter().copied().find(|a| lower.contains(a)))
}

/// The fields of an alert that are read, each as text whatever type the source gave it.
struct AlertFacts {
    id: String,
    time: String,
    name: String,
    alert_type: String,
    product: String,
    tactics: Vec<String>,
    techniques: Vec<String>,
    /// What the vocabularies are matched against, made once: the alert type lower-cased without separators,
    /// the name and description lower-cased, the tactics and techniques lower-cased (tactics without spaces).
    type_key: String,
    words: String,
    tactic_keys: Vec<String>,
    technique_keys: Vec<String>,
}

/// A string, or the strings of an array, or a comma-separated string: how tactics and techniques arrive.
fn texts(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        _ => Vec::new(),
    }
}

/// A string field, at most `max` characters of it: alert text is the sender's, and one huge value must not
/// crowd the evidence, the comment or the tables.
fn text(p: &Value, key: &str, max: usize) -> String {
    bounded(p.get(key).and_then(Value::as_str).unwrap_or_default(), max)
}

fn bounded(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        s.chars().take(max - 1).chain(['…']).collect()
    } else {
        s.to_string()
    }
}

impl AlertFacts {
    fn of(a: &Alert) -> AlertFacts {
        let p = &a.properties;
        let mut techniques = texts(p.get("techniques"));
        techniques.extend(texts(p.get("subTechniques")));
        // Scheduled rules' alerts may carry them only in additionalData.
        techniques.extend(texts(p.get("additionalData").and_then(|d| d.get("Techniques").or_else(|| d.get("techniques")))));
        // Bounded as an analyst would read them; a description is only matched, never shown.
        techniques.truncate(20);
        techniques.iter_mut().for_each(|t| *t = bounded(t, 20));
        let mut tactics = texts(p.get("tactics"));
        tactics.truncate(20);
        tactics.iter_mut().for_each(|t| *t = bounded(t, 40));
        let id = text(p, "systemAlertId", 100);
        let (name, description, alert_type) = (text(p, "alertDisplayName", 200), text(p, "description", 4000), text(p, "alertType", 120));
        AlertFacts {
            id: if id.is_empty() { bounded(&a.name, 100) } else { id },
            time: [text(p, "timeGenerated", 40), text(p, "startTimeUtc", 40)].into_iter().find(|t| !t.is_empty()).unwrap_or_default(),
            type_key: alert_type.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect(),
            words: format!("{name} {description}").to_lowercase(),
            tactic_keys: tactics.iter().map(|t| t.to_lowercase().replace(' ', "")).collect(),
            technique_keys: techniques.iter().map(|t| t.to_lowercase()).collect(),
            name,
            alert_type,
            product: text(p, "productName", 80),
            tactics,
            techniques,
        }
    }

    /// The customer's own analytics rule, as opposed to a detection product's classification.
    fn is_scheduled_rule(&self) -> bool {
        let p = self.product.to_lowercase();
        p.is_empty() || p.contains("sentinel")
    }

    /// How strongly, and why, this alert says `v`.
    fn says(&self, v: &Vocabulary) -> Option<(f64, String)> {
        let named = v.types.iter().any(|t| self.type_key.contains(t)) || v.phrases.iter().any(|p| self.words.contains(p));
        let technique = self.technique_keys.iter().any(|t| v.techniques.iter().any(|w| t.starts_with(w)));
        let tactic = self.tactic_keys.iter().any(|t| v.tactics.contains(&t.as_str()));
        let (strength, by) = match (named, self.is_scheduled_rule()) {
            (true, false) => (VENDOR, format!("classified as {} by {}", v.what, self.product)),
            (true, true) => (RULE_NAME, format!("an analytics rule named for {}", v.what)),
            (false, _) if technique || tactic => (TAG, format!("tagged for {} by its rule", v.what)),
            _ => return None,
        };
        let mut tags: Vec<String> = self.tactics.clone();
        tags.extend(self.techniques.iter().cloned());
        let detail = format!(
            "{} ({}{}{}): {by}",
            if self.name.is_empty() { "an alert" } else { &self.name },
            if self.product.is_empty() { "unknown product" } else { &self.product },
            if self.alert_type.is_empty() { String::new() } else { format!(", {}", self.alert_type) },
            if tags.is_empty() { String::new() } else { format!(", {}", bounded(&tags.join(" "), 200)) },
        );
        Some((strength, detail))
    }
}

/// The text of an entity that can name tooling: a process' command line, a file's name and folder, a
/// malware's name and category, a URL, a domain.
fn entity_texts(e: &Entity) -> Vec<(&'static str, String)> {
    let fields: &[(&str, &'static str)] = match e.kind.as_str() {
        "Process" => &[("commandLine", "command line"), ("processName", "process")],
        "File" => &[("fileName", "file"), ("directory", "folder")],
        "Malware" => &[("malwareName", "malware"), ("category", "malware category")],
        "Url" => &[("url", "URL")],
        "DnsResolution" => &[("domainName", "domain")],
        _ => &[],
    };
    fields.iter().filter_map(|(k, label)| e.properties.get(*k).and_then(Value::as_str).map(|s| (*label, s.to_string()))).collect()
}

/// Signals from the incident's own alerts and entities: one per class of detection, at its strongest.
pub fn own_alerts(alerts: &[Alert], entities: &[Entity]) -> Vec<Signal> {
    let facts: Vec<AlertFacts> = alerts.iter().map(AlertFacts::of).collect();
    let (first_id, first_time) = facts.first().map(|f| (f.id.clone(), f.time.clone())).unwrap_or_default();
    // Each entity text once, with its lower-cased form to match: (label, as written, lower-cased).
    let entity_texts: Vec<Vec<(&str, String, String)>> = entities
        .iter()
        .map(|e| {
            entity_texts(e)
                .into_iter()
                .map(|(label, value)| {
                    let lower = value.to_lowercase();
                    (label, value, lower)
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for v in VOCABULARIES {
        let mut strength: f64 = 0.0;
        let mut evidence = Vec::new();
        for f in &facts {
            if let Some((s, detail)) = f.says(v) {
                strength = strength.max(s);
                evidence.push(Evidence { table: "SecurityAlert".into(), time: f.time.clone(), key: f.id.clone(), detail });
            }
        }
        // Artefacts first: what ran outweighs what was said about it.
        let mut found: Vec<Evidence> = Vec::new();
        for texts in &entity_texts {
            // At most one artefact per entity: its first text that names the tooling.
            for (label, value, lower) in texts {
                if let Some(hit) = v.artefacts.iter().find(|a| lower.contains(*a)) {
                    strength = ARTEFACT;
                    let shown: String = value.chars().take(160).collect();
                    found.push(Evidence {
                        table: "SecurityAlert".into(),
                        time: first_time.clone(),
                        key: first_id.clone(),
                        detail: format!("{label} '{shown}' names {} tooling ('{}')", v.what, hit.trim()),
                    });
                    break;
                }
            }
        }
        let artefacts = found.len();
        found.append(&mut evidence);
        let mut evidence = found;
        if evidence.is_empty() {
            continue;
        }
        // Said as strongly as its strongest source says it.
        let summary = if artefacts > 0 {
            format!("{} tooling in the incident's entities ({})", v.what, count(artefacts, "artefact", "artefacts"))
        } else if strength >= VENDOR {
            format!("a detection product classifies the incident's alert as {}", v.what)
        } else if strength >= RULE_NAME {
            format!("the incident's alert rule is named for {}", v.what)
        } else {
            format!("the incident's alert rule is tagged for {} (the rule's MITRE mapping)", v.what)
        };
        evidence.truncate(5);
        out.push(Signal { name: v.kind, family: "the alert itself", summary, strength, routine: false, thin_baseline_days: None, evidence });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(p: Value) -> Alert {
        Alert { name: "a1".into(), properties: p }
    }

    fn strength(signals: &[Signal], k: SignalKind) -> Option<f64> {
        signals.iter().find(|s| s.name == k).map(|s| s.strength)
    }

    #[test]
    fn who_says_it_sets_the_strength() {
        let vendor = alert(
            json!({"systemAlertId": "x", "alertDisplayName": "Digital currency mining related behavior detected", "productName": "Azure Security Center", "alertType": "VM_DigitalCurrencyMining", "tactics": ["Impact"]}),
        );
        assert_eq!(strength(&own_alerts(&[vendor], &[]), SignalKind::AlertMining), Some(VENDOR));
        let rule = alert(json!({"alertDisplayName": "Possible crypto mining on a VM", "productName": "Azure Sentinel"}));
        assert_eq!(strength(&own_alerts(&[rule], &[]), SignalKind::AlertMining), Some(RULE_NAME));
        let tag = alert(json!({"alertDisplayName": "High CPU on a production VM", "productName": "Azure Sentinel", "techniques": ["T1496"]}));
        assert_eq!(strength(&own_alerts(std::slice::from_ref(&tag), &[]), SignalKind::AlertMining), Some(TAG));
        let miner =
            Entity { kind: "Process".into(), properties: json!({"commandLine": "/tmp/.cache/kswapd0 -o pool.example:443 --tls -k --max-cpu-usage 95"}) };
        let s = own_alerts(&[tag], &[miner]);
        assert_eq!(strength(&s, SignalKind::AlertMining), Some(ARTEFACT));
        assert!(s[0].evidence[0].detail.contains("--max-cpu-usage"), "{:?}", s[0].evidence);
    }

    #[test]
    fn a_benign_command_line_and_hostile_types_say_nothing() {
        let benign = Entity { kind: "Process".into(), properties: json!({"commandLine": "python3 /opt/etl/nightly.py --rows 5000000"}) };
        let hostile = alert(
            json!({"alertDisplayName": 42, "tactics": {"x": 1}, "techniques": [null, 7], "productName": ["a"], "description": "'; drop table x; <script>"}),
        );
        assert!(own_alerts(&[hostile], &[benign]).is_empty());
    }

    #[test]
    fn a_huge_alert_gives_bounded_evidence() {
        let long = "digital currency mining ".repeat(50_000);
        let a = alert(json!({"systemAlertId": long, "alertDisplayName": long, "productName": long, "alertType": long, "tactics": vec![long.clone(); 100]}));
        let s = own_alerts(&[a], &[]);
        assert_eq!(s.len(), 1);
        assert!(s[0].evidence.iter().all(|e| e.detail.chars().count() <= 800 && e.key.chars().count() <= 100), "{}", s[0].evidence[0].detail.len());
    }

    #[test]
    fn techniques_match_their_sub_techniques_and_come_from_any_field() {
        let a = alert(json!({"productName": "Azure Sentinel", "techniques": "T1110.003", "additionalData": {"Techniques": "T1537"}}));
        let s = own_alerts(&[a], &[]);
        assert_eq!(strength(&s, SignalKind::AlertCredentialAccess), Some(TAG));
        assert_eq!(strength(&s, SignalKind::AlertExfiltration), Some(TAG));
    }
}
