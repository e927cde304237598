//! Signals from other alerts that name the incident's entities, and from the vendors' own tables (Noxys,
//! TrapEye, Apono).

use super::{col, text, time_of, Evidence, Signal, SignalKind};
use crate::model::frame::Frame;
use crate::model::time::format_ticks;

pub fn related_alerts(frame: &Frame) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, ii, di, si, pi, tai) = (c("TimeGenerated"), c("SystemAlertId"), c("DisplayName"), c("AlertSeverity"), c("ProductName"), c("Tactics"));
    let ev: Vec<Evidence> = frame
        .rows
        .iter()
        .filter_map(|r| {
            Some(Evidence {
                table: "SecurityAlert".into(),
                time: format_ticks(time_of(r, ti)?),
                key: text(r, ii),
                detail: format!("{} ({}, {}{})", text(r, di), text(r, si), text(r, pi), {
                    let t = text(r, tai);
                    if t.is_empty() {
                        String::new()
                    } else {
                        format!(", {t}")
                    }
                }),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    let identity = frame.rows.iter().any(|r| {
        let p = text(r, pi).to_lowercase();
        let t = text(r, tai).to_lowercase();
        p.contains("identity") || t.contains("credentialaccess") || t.contains("initialaccess")
    });
    let n = ev.len();
    vec![Signal {
        name: if identity { SignalKind::RelatedIdentityAlerts } else { SignalKind::RelatedAlerts },
        family: "related alerts",
        summary: format!("{n} other alert(s) share an entity with this incident"),
        strength: (0.3 + 0.2 * n as f64).min(1.0),
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_noxys(frame: &Frame) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, ui, ei, pi, ri, ci, idi) = (c("EventTime"), c("UserId"), c("EventType"), c("PlatformId"), c("RiskScore"), c("Classifications"), c("EventId"));
    let mut sensitive = false;
    let ev: Vec<Evidence> = frame
        .rows
        .iter()
        .filter_map(|r| {
            let classes = text(r, ci).to_uppercase();
            if ["IBAN", "CREDIT_CARD", "API_KEY", "SECRET", "PASSWORD", "SOURCE_CODE"].iter().any(|k| classes.contains(k)) {
                sensitive = true;
            }
            Some(Evidence {
                table: "NoxysEvents_CL".into(),
                time: format_ticks(time_of(r, ti)?),
                key: text(r, idi),
                detail: format!("{} by {} on {} (risk {})", text(r, ei), text(r, ui), text(r, pi), text(r, ri)),
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
        summary: format!("{n} AI-firewall policy violation(s) or high-risk interaction(s){}", if sensitive { ", with sensitive data classes" } else { "" }),
        strength: (0.2 + 0.1 * n as f64 + if sensitive { 0.3 } else { 0.0 }).min(1.0),
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_trapeye(frame: &Frame) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, si, ri, ui) = (c("EventTime"), c("source_ip"), c("reverse_lookup"), c("threat_uuid"));
    let ev: Vec<Evidence> = frame
        .rows
        .iter()
        .filter_map(|r| {
            Some(Evidence {
                table: "TrapEye_Threats_CL".into(),
                time: format_ticks(time_of(r, ti)?),
                key: text(r, ui),
                detail: format!("decoy touched from {} ({})", text(r, si), text(r, ri)),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::DeceptionHit,
        family: "vendor",
        summary: format!("{} TrapEye decoy interaction(s) from the incident's IPs", ev.len()),
        strength: 0.8,
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_apono(frame: &Frame) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, ei, ri, pi) = (c("EventTime"), c("requester_email"), c("resource_name"), c("permission"));
    let ev: Vec<Evidence> = frame
        .rows
        .iter()
        .filter_map(|r| {
            Some(Evidence {
                table: "Apono_CL".into(),
                time: format_ticks(time_of(r, ti)?),
                key: text(r, ei),
                detail: format!("granted {} on {}", text(r, pi), text(r, ri)),
            })
        })
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::AccessGrant,
        family: "vendor",
        summary: format!("{} just-in-time access grant(s) to the incident's accounts", ev.len()),
        strength: 0.5,
        routine: false,
        thin_baseline_days: None,
        evidence: ev.into_iter().take(5).collect(),
    }]
}
