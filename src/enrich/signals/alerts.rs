//! Signals from other alerts that name the incident's entities, and from the vendors' own tables (Noxys,
//! TrapEye, Apono).

use super::{Evidence, Signal, SignalKind};
use crate::enrich::rows::{AponoGrant, NoxysEvent, RelatedAlert, TrapEyeThreat};
use crate::model::text::count;
use crate::model::time::format_ticks;

pub fn related_alerts(rows: &[RelatedAlert]) -> Vec<Signal> {
    let ev: Vec<Evidence> = rows
        .iter()
        .filter_map(|r| {
            Some(Evidence {
                table: "SecurityAlert".into(),
                time: format_ticks(r.time?),
                key: r.id.clone(),
                detail: format!("{} ({}, {}{})", r.name, r.severity, r.product, if r.tactics.is_empty() { String::new() } else { format!(", {}", r.tactics) }),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    let identity = rows.iter().any(|r| {
        let p = r.product.to_lowercase();
        let t = r.tactics.to_lowercase();
        p.contains("identity") || t.contains("credentialaccess") || t.contains("initialaccess")
    });
    let n = ev.len();
    vec![Signal {
        name: if identity { SignalKind::RelatedIdentityAlerts } else { SignalKind::RelatedAlerts },
        family: "related alerts",
        summary: if n == 1 {
            "1 other alert shares an entity with this incident".to_string()
        } else {
            format!("{n} other alerts share an entity with this incident")
        },
        strength: (0.3 + 0.2 * n as f64).min(1.0),
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_noxys(rows: &[NoxysEvent]) -> Vec<Signal> {
    let mut sensitive = false;
    let ev: Vec<Evidence> = rows
        .iter()
        .filter_map(|r| {
            let classes = r.classifications.to_uppercase();
            if ["IBAN", "CREDIT_CARD", "API_KEY", "SECRET", "PASSWORD", "SOURCE_CODE"].iter().any(|k| classes.contains(k)) {
                sensitive = true;
            }
            Some(Evidence {
                table: "NoxysEvents_CL".into(),
                time: format_ticks(r.time?),
                key: r.id.clone(),
                detail: format!("{} by {} on {} (risk {})", r.event_type, r.user, r.platform, r.risk_score),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    let n = ev.len();
    vec![Signal {
        name: SignalKind::AiPolicyViolations,
        family: "vendor",
        summary: format!(
            "{}{}",
            count(n, "AI-firewall policy violation or high-risk interaction", "AI-firewall policy violations or high-risk interactions"),
            if sensitive { ", with sensitive data classes" } else { "" }
        ),
        strength: (0.2 + 0.1 * n as f64 + if sensitive { 0.3 } else { 0.0 }).min(1.0),
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_trapeye(rows: &[TrapEyeThreat]) -> Vec<Signal> {
    let ev: Vec<Evidence> = rows
        .iter()
        .filter_map(|r| {
            Some(Evidence {
                table: "TrapEye_Threats_CL".into(),
                time: format_ticks(r.time?),
                key: r.id.clone(),
                detail: format!("decoy touched from {} ({})", r.source_ip, r.reverse_lookup),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::DeceptionHit,
        family: "vendor",
        summary: format!("{} from the incident's IPs", count(ev.len(), "TrapEye decoy interaction", "TrapEye decoy interactions")),
        strength: 0.8,
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_apono(rows: &[AponoGrant]) -> Vec<Signal> {
    let ev: Vec<Evidence> = rows
        .iter()
        .filter_map(|r| {
            Some(Evidence {
                table: "Apono_CL".into(),
                time: format_ticks(r.time?),
                key: r.requester.clone(),
                detail: format!("granted {} on {}", r.permission, r.resource),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::AccessGrant,
        family: "vendor",
        summary: format!("{} to the incident's accounts", count(ev.len(), "just-in-time access grant", "just-in-time access grants")),
        strength: 0.5,
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}
