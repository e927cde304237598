//! Turning query rows into signals: each signal names what is anomalous, how strongly (0..1), and the rows
//! that support it (table, time, key), so every claim in the comment can cite its sources.
//!
//! Time series (compute): a baseline seasonal by hour of day and robust to outliers. For each hour of the day,
//! the baseline's median is the expected value; the spread is the median absolute deviation (MAD, × 1.4826) of
//! the baseline's residuals. A point in the window scores z = (value − expected) / spread, with the spread
//! floored at 5% of the series' median (and 1.0 absolute) so a flat baseline does not turn noise into alarms.
//! |z| ≥ 4 is anomalous; strength grows with |z| (z = 4 → 0.4, z ≥ 10 → 1).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::time::{format_ticks, TICKS_PER_SEC};
use crate::kql::{Frame, Value};

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
    /// A stable name: `cpu_spike`, `new_location`, `role_assignment`, …
    pub name: String,
    /// compute, sign-in, control plane, related alerts, vendor.
    pub family: &'static str,
    pub summary: String,
    pub strength: f64,
    /// For control-plane signals: the caller did the same kind of thing in the baseline too.
    pub routine: bool,
    pub evidence: Vec<Evidence>,
}

fn col(f: &Frame, name: &str) -> Option<usize> {
    f.column_index(name)
}

fn text(r: &[Value], i: Option<usize>) -> String {
    i.map(|i| r[i].to_text()).unwrap_or_default()
}

fn time_of(r: &[Value], i: Option<usize>) -> Option<i64> {
    match i.map(|i| &r[i]) {
        Some(Value::DateTime(t)) => Some(*t),
        _ => None,
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// What a compute metric means when it jumps.
fn metric_signal(counter: &str) -> Option<(&'static str, bool)> {
    // (signal name, whether a rise is the anomaly; otherwise a fall)
    Some(match counter {
        "% Processor Time" | "Percentage CPU" | "CpuPercentage" => ("cpu_spike", true),
        "Bytes Sent/sec" | "Network Out Total" | "Egress" => ("network_out_spike", true),
        "Bytes Received/sec" | "Network In Total" => ("network_in_spike", true),
        "Available MBytes" => ("memory_pressure", false),
        "Transactions" => ("transactions_spike", true),
        _ => return None,
    })
}

/// Scores hourly series (rows of key, metric, TimeGenerated, Value) against their seasonal baselines.
pub fn compute(frame: &Frame, table: &str, key_col: &str, metric_col: &str, window_start: i64) -> Vec<Signal> {
    let (ki, mi, ti, vi) = (col(frame, key_col), col(frame, metric_col), col(frame, "TimeGenerated"), col(frame, "Value"));
    let (Some(_), Some(_), Some(_), Some(vi)) = (ki, mi, ti, vi) else { return Vec::new() };
    let mut series: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for r in &frame.rows {
        if let (Some(t), Some(v)) = (time_of(r, ti), r[vi].as_f64()) {
            series.entry((text(r, ki), text(r, mi))).or_default().push((t, v));
        }
    }
    let hour = 3600 * TICKS_PER_SEC;
    let mut by_signal: BTreeMap<&'static str, Vec<(f64, Evidence)>> = BTreeMap::new();
    for ((key, metric), points) in series {
        let Some((signal, rise)) = metric_signal(&metric) else { continue };
        let (base, window): (Vec<_>, Vec<_>) = points.iter().partition(|(t, _)| *t < window_start);
        if base.len() < 24 || window.is_empty() {
            continue; // under a day of baseline: no honest expectation to compare with
        }
        let mut by_hour: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for (t, v) in &base {
            by_hour.entry(t.div_euclid(hour).rem_euclid(24)).or_default().push(*v);
        }
        let mut all: Vec<f64> = base.iter().map(|(_, v)| *v).collect();
        let overall = median(&mut all);
        let expected: BTreeMap<i64, f64> =
            by_hour.into_iter().map(|(h, mut v)| (h, if v.len() >= 2 { median(&mut v) } else { overall })).collect();
        let expect = |t: i64| *expected.get(&t.div_euclid(hour).rem_euclid(24)).unwrap_or(&overall);
        let mut residuals: Vec<f64> = base.iter().map(|(t, v)| (v - expect(*t)).abs()).collect();
        let mad = median(&mut residuals) * 1.4826;
        let spread = mad.max(overall.abs() * 0.05).max(1.0);
        let mut best: Option<(f64, i64, f64, f64)> = None;
        for (t, v) in &window {
            let e = expect(*t);
            let z = (v - e) / spread;
            let z = if rise { z } else { -z };
            if best.is_none_or(|b| z > b.0) {
                best = Some((z, *t, *v, e));
            }
        }
        if let Some((z, t, v, e)) = best {
            if z >= 4.0 {
                let detail = format!("{metric} {v:.1} against an expected {e:.1} for that hour (z = {z:.1})");
                by_signal.entry(signal).or_default().push((z, Evidence { table: table.into(), time: format_ticks(t), key: key.clone(), detail }));
            }
        }
    }
    by_signal
        .into_iter()
        .map(|(name, mut ev)| {
            ev.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
            let top = ev[0].0;
            let what = match name {
                "cpu_spike" => "CPU spike",
                "network_out_spike" => "outbound traffic spike",
                "network_in_spike" => "inbound traffic spike",
                "memory_pressure" => "free memory collapse",
                _ => "metric spike",
            };
            let keys: Vec<String> = ev.iter().map(|(_, e)| e.key.clone()).collect::<BTreeSet<_>>().into_iter().collect();
            Signal {
                name: name.into(),
                family: "compute",
                summary: format!("{what} on {} (peak z = {top:.1})", keys.join(", ")),
                strength: (top / 10.0).clamp(0.4, 1.0),
                routine: false,
                evidence: ev.into_iter().map(|(_, e)| e).take(5).collect(),
            }
        })
        .collect()
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().atan2((1.0 - a).sqrt())
}

/// Sign-in anomalies: a country or network not seen in the baseline, impossible travel (> 900 km/h over
/// > 500 km between successful sign-ins), a run of ≥ 5 failures followed by a success within an hour, and
/// > sign-ins Entra ID rated risky.
pub fn signins(frame: &Frame, window_start: i64) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, ui, ipi, ci, lai, loi, ai, ri, rli, rsi) = (
        c("TimeGenerated"), c("UserPrincipalName"), c("IPAddress"), c("Country"), c("Latitude"), c("Longitude"),
        c("Asn"), c("ResultType"), c("RiskLevelDuringSignIn"), c("RiskState"),
    );
    struct S {
        t: i64,
        ip: String,
        country: String,
        asn: String,
        ok: bool,
        lat: Option<f64>,
        lon: Option<f64>,
        risk: String,
        state: String,
    }
    let mut by_user: BTreeMap<String, Vec<S>> = BTreeMap::new();
    for r in &frame.rows {
        let Some(t) = time_of(r, ti) else { continue };
        by_user.entry(text(r, ui).to_lowercase()).or_default().push(S {
            t,
            ip: text(r, ipi),
            country: text(r, ci),
            asn: text(r, ai),
            ok: text(r, ri) == "0",
            lat: lai.and_then(|i| r[i].as_f64()),
            lon: loi.and_then(|i| r[i].as_f64()),
            risk: text(r, rli).to_lowercase(),
            state: text(r, rsi),
        });
    }
    let ev = |user: &str, s: &S, detail: String| Evidence { table: "SigninLogs".into(), time: format_ticks(s.t), key: user.to_string(), detail };
    let mut new_loc: Vec<Evidence> = Vec::new();
    let mut new_loc_strength: f64 = 0.0;
    let mut travel: Vec<Evidence> = Vec::new();
    let mut brute: Vec<Evidence> = Vec::new();
    let mut risky: Vec<Evidence> = Vec::new();
    let mut risky_strength: f64 = 0.0;
    for (user, mut list) in by_user {
        list.sort_by_key(|s| s.t);
        let base: Vec<&S> = list.iter().filter(|s| s.t < window_start && s.ok).collect();
        let countries: BTreeSet<&str> = base.iter().map(|s| s.country.as_str()).filter(|c| !c.is_empty()).collect();
        let asns: BTreeSet<&str> = base.iter().map(|s| s.asn.as_str()).filter(|c| !c.is_empty()).collect();
        let window: Vec<&S> = list.iter().filter(|s| s.t >= window_start).collect();
        let mut flagged = BTreeSet::new();
        for s in window.iter().filter(|s| s.ok) {
            if base.is_empty() {
                continue;
            }
            if !s.country.is_empty() && !countries.contains(s.country.as_str()) && flagged.insert(("c", s.country.clone())) {
                new_loc_strength = new_loc_strength.max(0.7);
                new_loc.push(ev(&user, s, format!("first sign-in from {} ({}, AS{}); baseline: {}", s.country, s.ip, s.asn, countries.iter().copied().collect::<Vec<_>>().join(", "))));
            } else if !s.asn.is_empty() && !asns.contains(s.asn.as_str()) && flagged.insert(("a", s.asn.clone())) {
                new_loc_strength = new_loc_strength.max(0.4);
                new_loc.push(ev(&user, s, format!("first sign-in from network AS{} ({})", s.asn, s.ip)));
            }
        }
        let ok: Vec<&&S> = window.iter().filter(|s| s.ok && s.lat.is_some() && s.lon.is_some()).collect();
        // Travel is checked from the last baseline sign-in too.
        let mut prev: Option<&S> = base.iter().rev().find(|s| s.lat.is_some()).copied();
        for s in ok {
            if let Some(p) = prev {
                let km = haversine_km(p.lat.unwrap_or(0.0), p.lon.unwrap_or(0.0), s.lat.unwrap_or(0.0), s.lon.unwrap_or(0.0));
                let hours = ((s.t - p.t) as f64 / (3600.0 * TICKS_PER_SEC as f64)).max(1.0 / 60.0);
                if km > 500.0 && km / hours > 900.0 {
                    travel.push(ev(&user, s, format!("{km:.0} km from {} in {:.1} h ({:.0} km/h), from {}", p.country, hours, km / hours, s.ip)));
                }
            }
            prev = Some(s);
        }
        let mut failures = 0;
        let mut first_fail: Option<i64> = None;
        for s in &window {
            if !s.ok {
                failures += 1;
                first_fail.get_or_insert(s.t);
            } else {
                if failures >= 5 && first_fail.is_some_and(|f| s.t - f <= 3600 * TICKS_PER_SEC) {
                    brute.push(ev(&user, s, format!("success from {} after {failures} failures", s.ip)));
                }
                failures = 0;
                first_fail = None;
            }
            let level = match (s.risk.as_str(), s.state.as_str()) {
                ("high", _) | (_, "confirmedCompromised") => 0.8,
                ("medium", _) | (_, "atRisk") => 0.5,
                _ => 0.0,
            };
            if level > 0.0 {
                risky_strength = risky_strength.max(level);
                risky.push(ev(&user, s, format!("risk {} ({}) from {}", if s.risk.is_empty() { "-" } else { &s.risk }, s.state, s.ip)));
            }
        }
    }
    let mut out = Vec::new();
    let mut push = |name: &str, summary: String, strength: f64, evidence: Vec<Evidence>| {
        if !evidence.is_empty() {
            out.push(Signal { name: name.into(), family: "sign-in", summary, strength, routine: false, evidence: evidence.into_iter().take(5).collect() });
        }
    };
    let n = new_loc.len();
    push("new_location", format!("{n} sign-in(s) from a country or network not seen in the baseline"), new_loc_strength, new_loc);
    let n = travel.len();
    push("impossible_travel", format!("{n} impossible-travel sign-in(s)"), 0.9, travel);
    let n = brute.len();
    push("failures_then_success", format!("{n} success(es) right after repeated failures"), 0.6, brute);
    let n = risky.len();
    push("risky_signin", format!("{n} sign-in(s) rated risky by Entra ID"), risky_strength, risky);
    out
}

/// The control-plane operations that matter, by the prefix of `OperationNameValue`.
fn category(op: &str) -> Option<(&'static str, &'static str)> {
    let op = op.to_ascii_uppercase();
    Some(if op.starts_with("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE") || op.starts_with("MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE") || op.contains("VIRTUALMACHINESCALESETS/SCALE") {
        ("compute_provisioned", "compute created or scaled")
    } else if op.starts_with("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE") {
        ("role_assignment", "role assignment")
    } else if op.starts_with("MICROSOFT.NETWORK/NETWORKSECURITYGROUPS") || op.starts_with("MICROSOFT.NETWORK/AZUREFIREWALLS") || op.starts_with("MICROSOFT.NETWORK/FIREWALLPOLICIES") {
        ("network_opened", "network security rule or firewall change")
    } else if op.starts_with("MICROSOFT.KEYVAULT/") {
        ("keyvault_access", "Key Vault access or policy change")
    } else if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS") || op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/REGENERATEKEY") {
        ("storage_keys_listed", "storage account keys listed")
    } else if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE") {
        ("storage_config_changed", "storage account (firewall) change")
    } else {
        return None;
    })
}

/// Control-plane changes in the window, each marked routine when the same caller did the same operation
/// (not merely the same kind: scaling a scale set routinely does not make creating a VM routine) in the baseline.
pub fn control_plane(frame: &Frame, window_start: i64) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, ci, ipi, oi, ri) = (c("TimeGenerated"), c("Caller"), c("CallerIpAddress"), c("Operation"), c("_ResourceId"));
    // (caller, operation) pairs: what the baseline shows each caller doing routinely.
    type CallerOp = (String, String);
    type Changes = (&'static str, Vec<(CallerOp, Evidence)>);
    let mut baseline: BTreeSet<CallerOp> = BTreeSet::new();
    let mut window: BTreeMap<&'static str, Changes> = BTreeMap::new();
    for r in &frame.rows {
        let Some(t) = time_of(r, ti) else { continue };
        let op = text(r, oi).to_ascii_uppercase();
        let Some((name, what)) = category(&op) else { continue };
        let caller = text(r, ci).to_lowercase();
        if t < window_start {
            baseline.insert((caller, op));
        } else {
            let resource = text(r, ri);
            let short = resource.rsplit('/').next().unwrap_or_default().to_string();
            let e = Evidence {
                table: "AzureActivity".into(),
                time: format_ticks(t),
                key: text(r, ci),
                detail: format!("{} on {} from {}", text(r, oi), if short.is_empty() { "-".to_string() } else { short }, text(r, ipi)),
            };
            window.entry(name).or_insert((what, Vec::new())).1.push(((caller, op), e));
        }
    }
    window
        .into_iter()
        .map(|(name, (what, items))| {
            let routine = items.iter().all(|(key, _)| baseline.contains(key));
            Signal {
                name: name.into(),
                family: "control plane",
                summary: format!("{} {what} operation(s){}", items.len(), if routine { ", routine for the caller" } else { ", new for the caller" }),
                strength: if routine { 0.3 } else { 0.7 },
                routine,
                evidence: items.into_iter().map(|(_, e)| e).take(5).collect(),
            }
        })
        .collect()
}

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
                    if t.is_empty() { String::new() } else { format!(", {t}") }
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
        name: if identity { "related_identity_alerts".into() } else { "related_alerts".into() },
        family: "related alerts",
        summary: format!("{n} other alert(s) share an entity with this incident"),
        strength: (0.3 + 0.2 * n as f64).min(1.0),
        routine: false,
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
        name: "ai_policy_violations".into(),
        family: "vendor",
        summary: format!("{n} AI-firewall policy violation(s) or high-risk interaction(s){}", if sensitive { ", with sensitive data classes" } else { "" }),
        strength: (0.2 + 0.1 * n as f64 + if sensitive { 0.3 } else { 0.0 }).min(1.0),
        routine: false,
        evidence: ev.into_iter().take(5).collect(),
    }]
}

pub fn vendor_trapeye(frame: &Frame) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, si, ri, ui) = (c("EventTime"), c("source_ip"), c("reverse_lookup"), c("threat_uuid"));
    let ev: Vec<Evidence> = frame
        .rows
        .iter()
        .filter_map(|r| Some(Evidence { table: "TrapEye_Threats_CL".into(), time: format_ticks(time_of(r, ti)?), key: text(r, ui), detail: format!("decoy touched from {} ({})", text(r, si), text(r, ri)) }))
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    vec![Signal { name: "deception_hit".into(), family: "vendor", summary: format!("{} TrapEye decoy interaction(s) from the incident's IPs", ev.len()), strength: 0.8, routine: false, evidence: ev.into_iter().take(5).collect() }]
}

pub fn vendor_apono(frame: &Frame) -> Vec<Signal> {
    let c = |n: &str| col(frame, n);
    let (ti, ei, ri, pi) = (c("EventTime"), c("requester_email"), c("resource_name"), c("permission"));
    let ev: Vec<Evidence> = frame
        .rows
        .iter()
        .filter_map(|r| Some(Evidence { table: "Apono_CL".into(), time: format_ticks(time_of(r, ti)?), key: text(r, ei), detail: format!("granted {} on {}", text(r, pi), text(r, ri)) }))
        .collect();
    if ev.is_empty() {
        return Vec::new();
    }
    vec![Signal { name: "access_grant".into(), family: "vendor", summary: format!("{} just-in-time access grant(s) to the incident's accounts", ev.len()), strength: 0.5, routine: false, evidence: ev.into_iter().take(5).collect() }]
}
