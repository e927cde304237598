//! What publishing did, as types: the comment's outcome, each `act` mode action, and incident severities.
//! Each is written as the result and the audit trail have always shown it (`created`, `applied: severity
//! Medium → High`, …), so the playbook's JSON keeps its shape; nothing downstream parses those sentences.

use serde::Serialize;

/// How the comment went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    Created,
    Replaced,
    /// `observe` mode writes the tables only.
    SkippedObserveMode,
    Failed(String),
}

impl std::fmt::Display for CommentOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommentOutcome::Created => f.write_str("created"),
            CommentOutcome::Replaced => f.write_str("replaced"),
            CommentOutcome::SkippedObserveMode => f.write_str("skipped (observe mode)"),
            CommentOutcome::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// An incident severity, lowest first: `act` mode only ever raises one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

impl Severity {
    /// Sentinel's `properties.severity` values (IncidentSeverity in the REST API); none for anything else.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "Informational" => Severity::Informational,
            "Low" => Severity::Low,
            "Medium" => Severity::Medium,
            "High" => Severity::High,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing `act` mode did, or why it did nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    /// The leading finding is not confident enough to act on.
    UnderThreshold {
        confidence: f64,
        threshold: f64,
    },
    /// The label and severity were already there.
    NoChange,
    Labelled(String),
    /// `from` as Sentinel had it (any text it held), `to` the severity set.
    SeverityRaised {
        from: String,
        to: Severity,
    },
    /// The severity is deliberately not raised, and why (the asset is a sandbox).
    SeverityKept(String),
    Failed(String),
}

impl ActionOutcome {
    pub fn applied(&self) -> bool {
        matches!(self, ActionOutcome::Labelled(_) | ActionOutcome::SeverityRaised { .. })
    }
}

impl std::fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionOutcome::UnderThreshold { confidence, threshold } => {
                write!(f, "no action: leading confidence {confidence:.2} is under the threshold {threshold:.2}")
            }
            ActionOutcome::NoChange => f.write_str("no change needed"),
            ActionOutcome::Labelled(label) => write!(f, "applied: label {label}"),
            ActionOutcome::SeverityRaised { from, to } => write!(f, "applied: severity {from} → {to}"),
            ActionOutcome::SeverityKept(why) => write!(f, "severity not raised: {why}"),
            ActionOutcome::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

macro_rules! serialise_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialise_as_text!(CommentOutcome, ActionOutcome);

#[cfg(test)]
mod tests {
    use super::*;

    /// The playbook and the tables read these as text: the text is the contract.
    #[test]
    fn outcomes_serialise_as_they_always_read() {
        let j = |v: &dyn erased::Ser| v.json();
        assert_eq!(j(&CommentOutcome::SkippedObserveMode), "\"skipped (observe mode)\"");
        assert_eq!(j(&CommentOutcome::Failed("403".into())), "\"failed: 403\"");
        assert_eq!(j(&ActionOutcome::SeverityRaised { from: "Medium".into(), to: Severity::High }), "\"applied: severity Medium → High\"");
        assert_eq!(j(&ActionOutcome::Labelled("sentinel-bridge:cryptojacking".into())), "\"applied: label sentinel-bridge:cryptojacking\"");
        assert_eq!(j(&ActionOutcome::UnderThreshold { confidence: 0.5, threshold: 0.8 }), "\"no action: leading confidence 0.50 is under the threshold 0.80\"");
        assert!(Severity::parse("High") > Severity::parse("Medium") && Severity::parse("Critical").is_none());
    }

    mod erased {
        pub trait Ser {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Ser for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }
}
