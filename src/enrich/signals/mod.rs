//! Turning query rows into signals: each signal names what is anomalous, how strongly (0..1), and the rows
//! that support it (table, time, key), so every claim in the comment can cite its sources. One room per kind
//! of telemetry: [`compute`] (time series of Perf and AzureMetrics against the entity's own seasonal
//! baseline), [`identity`] (user and service principal sign-ins, with the organisation's shared egress and
//! spray sources), [`control_plane`] (AzureActivity, routine or new for its caller), [`host`] (what ran on the
//! hosts: SecurityEvent), [`network`] (where the hosts connect: VMConnection), [`vault`] (Key Vault's data
//! plane: AuditEvent), [`storage`] (a storage account's data plane: StorageBlobLogs), [`alerts`] (other alerts
//! and the vendors' tables), [`triggering`] (the incident's own alerts and entities).

pub mod alerts;
pub mod compute;
pub mod control_plane;
pub mod host;
pub mod identity;
pub mod kind;
pub mod network;
pub mod storage;
pub mod triggering;
pub mod vault;

use serde::Serialize;

pub use alerts::{related_alerts, vendor_apono, vendor_noxys, vendor_trapeye};
pub use kind::{Feature, Role, SignalKind};

/// One source row a claim rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub table: String,
    pub time: String,
    pub key: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    /// What it is: `cpu_spike`, `new_location`, `role_assignment`, … ([`SignalKind`]).
    pub name: SignalKind,
    /// compute, sign-in, service principal, control plane, related alerts, vendor.
    pub family: &'static str,
    pub summary: String,
    pub strength: f64,
    /// The entity does this routinely: the same caller and operation in the baseline, or load its own
    /// history expects at that hour. Routine signals support "benign", never a threat.
    pub routine: bool,
    /// Set when the entity's baseline is shorter than [`THIN_BASELINE_DAYS`]: its days.
    #[serde(rename = "thinBaselineDays", skip_serializing_if = "Option::is_none")]
    pub thin_baseline_days: Option<f64>,
    pub evidence: Vec<Evidence>,
}

/// Under a week of history, "new" and "unusual" mean little: what the entity does on other weekdays, at other
/// hours, from its other places is not yet known. Signals resting on less are marked, and the hypotheses they
/// support are capped below the act threshold.
pub const THIN_BASELINE_DAYS: f64 = 7.0;

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One signal per name: Perf and AzureMetrics can both report a CPU spike, two users a new location. The
/// stronger leads, with both sets of evidence; a signal is thin only when every source of it is.
pub fn merge(signals: Vec<Signal>) -> Vec<Signal> {
    let mut merged: Vec<Signal> = Vec::new();
    for s in signals {
        match merged.iter_mut().find(|m| m.name == s.name) {
            Some(m) => {
                if s.strength > m.strength {
                    m.strength = s.strength;
                    m.summary = s.summary.clone();
                }
                m.thin_baseline_days = match (m.thin_baseline_days, s.thin_baseline_days) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                m.routine &= s.routine;
                m.evidence.extend(s.evidence);
                m.evidence.truncate(6);
            }
            None => merged.push(s),
        }
    }
    merged.sort_by(|a, b| b.strength.total_cmp(&a.strength).then_with(|| a.name.cmp(&b.name)));
    merged
}
