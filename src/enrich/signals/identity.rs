//! Sign-ins of users (interactive and not) and of service principals, judged against each identity's own
//! history and the organisation's.
//!
//! - **Familiar network**: an IP or ASN the identity succeeded from in its baseline, or one three or more of the
//!   organisation's users did (a VPN or proxy egress). A new country through a familiar network is not new.
//! - **new_location**: a success from a country (0.7) or, in a known country, a network (0.4) the identity
//!   never used, through an unfamiliar network. With a thin baseline, 0.3 and marked thin.
//! - **impossible_travel**: > 500 km at > 900 km/h between successes, unless both places are in the user's
//!   baseline (a commute between home and a proxy abroad is routine) or the new one came through a familiar
//!   network.
//! - **mfa_fatigue**: five or more MFA interruptions (500121, 50074, 50076) from one IP, then a success from
//!   it, within six hours; from a familiar IP it is a user fumbling a prompt, not an attack.
//! - **brute_force**: five or more password failures from one unfamiliar IP, then a success from it (0.6;
//!   0.8 from ten failures). A success from the user's usual IP after failures is not the signal.
//! - **password_spray**: a success from an IP that failed against five or more of the organisation's users in
//!   the window (0.9); such an IP failing against ours without a success is `spray_attempt` (context, 0.15).
//! - **risky_signin**: Entra ID rated the sign-in high (0.8) or medium (0.5) risk.
//! - **sp_new_network**: a service principal succeeding from an IP it never used: 0.75 from a new country,
//!   0.5 otherwise.

use std::collections::{BTreeMap, BTreeSet};

use super::{Evidence, Signal, SignalKind, THIN_BASELINE_DAYS};
use crate::enrich::rows::{OrgSource, SignIn, SpSignIn};
use crate::model::text::count;
use crate::model::time::{format_ticks, TICKS_PER_SEC};

const HOUR: i64 = 3600 * TICKS_PER_SEC;
const DAY: f64 = 86_400.0 * TICKS_PER_SEC as f64;
const MFA_INTERRUPTED: [&str; 3] = ["500121", "50074", "50076"];
const PASSWORD_FAILED: [&str; 5] = ["50126", "50053", "50055", "50056", "50064"];

/// The organisation's view of the networks the incident's accounts used (`signin_sources.kql`).
#[derive(Debug, Default, Clone)]
pub struct OrgSources {
    pub shared_ips: BTreeSet<String>,
    pub shared_asns: BTreeSet<String>,
    /// IPs that failed against five or more users in the window, with how many.
    pub spray_ips: BTreeMap<String, i64>,
}

/// Users that make a network shared egress, and that make an IP's failures a spray.
const SHARED_BY: i64 = 3;
const SPRAYED_USERS: i64 = 5;

pub fn org_sources(sources: &[OrgSource]) -> OrgSources {
    let mut o = OrgSources::default();
    for r in sources {
        let (kind, value) = (r.kind.as_str(), r.value.clone());
        let (baseline_users, failed_users) = (r.baseline_users.unwrap_or(0.0) as i64, r.window_failed_users.unwrap_or(0.0) as i64);
        if value.is_empty() {
            continue;
        }
        if baseline_users >= SHARED_BY {
            if kind == "ip" {
                o.shared_ips.insert(value.clone())
            } else {
                o.shared_asns.insert(value.clone())
            };
        }
        if kind == "ip" && failed_users >= SPRAYED_USERS {
            o.spray_ips.insert(value, failed_users);
        }
    }
    o
}

struct S {
    t: i64,
    ip: String,
    country: String,
    asn: String,
    ok: bool,
    result: String,
    lat: Option<f64>,
    lon: Option<f64>,
    risk: String,
    state: String,
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().atan2((1.0 - a).sqrt())
}

/// What identity signals need to know later: the IPs each identity used in its baseline (for the control
/// plane's "acting from an IP it never used").
#[derive(Debug, Default, Clone)]
pub struct KnownIps(pub BTreeMap<String, BTreeSet<String>>);

#[derive(Default)]
struct Found {
    evidence: Vec<Evidence>,
    strength: f64,
    thin: Option<f64>,
    all_thin: bool,
}

impl Found {
    fn add(&mut self, strength: f64, thin: Option<f64>, e: Evidence) {
        if self.evidence.is_empty() {
            self.all_thin = true;
        }
        self.strength = self.strength.max(strength);
        self.all_thin &= thin.is_some();
        self.thin = match (self.thin, thin) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (None, t) => t,
            (a, None) => a,
        };
        self.evidence.push(e);
    }
}

fn emit(out: &mut Vec<Signal>, name: SignalKind, family: &'static str, summary: String, f: Found, routine: bool) {
    if f.evidence.is_empty() {
        return;
    }
    out.push(Signal {
        name,
        family,
        summary,
        strength: f.strength,
        routine,
        thin_baseline_days: if f.all_thin { f.thin } else { None },
        evidence: f.evidence.into_iter().take(5).collect(),
    });
}

/// User sign-ins (`signins.kql`), with the organisation's sources.
pub fn signins(rows: &[SignIn], window_start: i64, org: &OrgSources, known: &mut KnownIps) -> Vec<Signal> {
    let mut by_user: BTreeMap<String, Vec<S>> = BTreeMap::new();
    for r in rows {
        let Some(t) = r.time else { continue };
        by_user.entry(r.user.to_lowercase()).or_default().push(S {
            t,
            ip: r.ip.clone(),
            country: r.country.clone(),
            asn: r.asn.clone(),
            ok: r.result == "0",
            result: r.result.clone(),
            lat: r.latitude,
            lon: r.longitude,
            risk: r.risk_level.to_lowercase(),
            state: r.risk_state.clone(),
        });
    }
    let ev = |user: &str, s: &S, detail: String| Evidence { table: "SigninLogs".into(), time: format_ticks(s.t), key: user.to_string(), detail };
    let (mut new_loc, mut travel, mut mfa, mut brute, mut spray, mut spray_try, mut risky) =
        (Found::default(), Found::default(), Found::default(), Found::default(), Found::default(), Found::default(), Found::default());
    for (user, mut list) in by_user {
        list.sort_by_key(|s| s.t);
        let base: Vec<&S> = list.iter().filter(|s| s.t < window_start && s.ok).collect();
        let window: Vec<&S> = list.iter().filter(|s| s.t >= window_start).collect();
        let first = list.iter().map(|s| s.t).min().unwrap_or(window_start);
        let span = (window_start - first) as f64 / DAY;
        let thin = (span < THIN_BASELINE_DAYS).then_some((span * 10.0).round() / 10.0);
        let countries: BTreeSet<&str> = base.iter().map(|s| s.country.as_str()).filter(|c| !c.is_empty()).collect();
        let asns: BTreeSet<&str> = base.iter().map(|s| s.asn.as_str()).filter(|c| !c.is_empty()).collect();
        let ips: BTreeSet<&str> = base.iter().map(|s| s.ip.as_str()).collect();
        known.0.entry(user.clone()).or_default().extend(ips.iter().map(|s| s.to_string()));
        let familiar =
            |s: &S| ips.contains(s.ip.as_str()) || asns.contains(s.asn.as_str()) || org.shared_ips.contains(&s.ip) || org.shared_asns.contains(&s.asn);
        let mut flagged = BTreeSet::new();
        for s in window.iter().filter(|s| s.ok) {
            if base.is_empty() || familiar(s) {
                continue;
            }
            let (strength, what) = if !s.country.is_empty() && !countries.contains(s.country.as_str()) {
                (
                    0.7,
                    format!("first sign-in from {} ({}, AS{}); baseline: {}", s.country, s.ip, s.asn, countries.iter().copied().collect::<Vec<_>>().join(", ")),
                )
            } else {
                (0.4, format!("first sign-in from network AS{} ({})", s.asn, s.ip))
            };
            if flagged.insert(s.ip.clone()) {
                new_loc.add(if thin.is_some() { 0.3 } else { strength }, thin, ev(&user, s, what));
            }
        }
        // Travel, from the last baseline success on.
        let mut prev: Option<&S> = base.iter().rev().find(|s| s.lat.is_some()).copied();
        for s in window.iter().filter(|s| s.ok && s.lat.is_some() && s.lon.is_some()) {
            if let Some(p) = prev {
                let km = haversine_km(p.lat.unwrap_or(0.0), p.lon.unwrap_or(0.0), s.lat.unwrap_or(0.0), s.lon.unwrap_or(0.0));
                let hours = ((s.t - p.t) as f64 / HOUR as f64).max(1.0 / 60.0);
                let commute = countries.contains(p.country.as_str()) && countries.contains(s.country.as_str());
                if km > 500.0 && km / hours > 900.0 && !commute && !familiar(s) {
                    travel.add(0.9, thin, ev(&user, s, format!("{km:.0} km from {} in {:.1} h ({:.0} km/h), from {}", p.country, hours, km / hours, s.ip)));
                }
            }
            prev = Some(*s);
        }
        // Runs of MFA interruptions and password failures, per source IP, and what followed them.
        let mut by_ip: BTreeMap<&str, Vec<&S>> = BTreeMap::new();
        for s in &window {
            by_ip.entry(s.ip.as_str()).or_default().push(s);
        }
        for (ip, items) in by_ip {
            let ip_familiar = items.first().is_some_and(|s| familiar(s));
            let first_fail = |codes: &[&str]| items.iter().find(|s| codes.contains(&s.result.as_str())).map(|s| s.t);
            let fails = |codes: &[&str]| items.iter().filter(|s| codes.contains(&s.result.as_str())).count();
            let success_after = |from: i64| items.iter().find(|s| s.ok && s.t > from && s.t - from <= 6 * HOUR).copied();
            let n_mfa = fails(&MFA_INTERRUPTED);
            if let (true, Some(f)) = (n_mfa >= 5 && !ip_familiar, first_fail(&MFA_INTERRUPTED)) {
                if let Some(s) = success_after(f) {
                    mfa.add(0.85, None, ev(&user, s, format!("approved from {ip} after {n_mfa} interrupted MFA prompts from it")));
                }
            }
            let n_pw = fails(&PASSWORD_FAILED);
            if let (true, Some(f)) = (n_pw >= 5 && !ip_familiar, first_fail(&PASSWORD_FAILED)) {
                if let Some(s) = success_after(f) {
                    brute.add(if n_pw >= 10 { 0.8 } else { 0.6 }, None, ev(&user, s, format!("success from {ip} after {n_pw} password failures from it")));
                }
            }
            if let Some(users) = org.spray_ips.get(ip) {
                match items.iter().find(|s| s.ok) {
                    Some(s) => spray.add(0.9, None, ev(&user, s, format!("success from {ip}, which failed against {users} users in the window"))),
                    None => {
                        if let Some(s) = items.first() {
                            spray_try.add(0.15, None, ev(&user, s, format!("{ip} failed against {users} users, ours included, without a success")));
                        }
                    }
                }
            }
        }
        for s in &window {
            let level = match (s.risk.as_str(), s.state.as_str()) {
                ("high", _) | (_, "confirmedCompromised") => 0.8,
                ("medium", _) | (_, "atRisk") => 0.5,
                _ => 0.0,
            };
            if level > 0.0 {
                risky.add(level, None, ev(&user, s, format!("risk {} ({}) from {}", if s.risk.is_empty() { "-" } else { &s.risk }, s.state, s.ip)));
            }
        }
    }
    let mut out = Vec::new();
    let n = new_loc.evidence.len();
    emit(
        &mut out,
        SignalKind::NewLocation,
        "sign-in",
        format!("{} from a country or network neither the user nor the organisation used before", count(n, "sign-in", "sign-ins")),
        new_loc,
        false,
    );
    let n = travel.evidence.len();
    emit(&mut out, SignalKind::ImpossibleTravel, "sign-in", count(n, "impossible-travel sign-in", "impossible-travel sign-ins"), travel, false);
    let n = mfa.evidence.len();
    emit(
        &mut out,
        SignalKind::MfaFatigue,
        "sign-in",
        format!("{} after a run of interrupted MFA prompts from an unfamiliar IP", count(n, "approval", "approvals")),
        mfa,
        false,
    );
    let n = brute.evidence.len();
    emit(
        &mut out,
        SignalKind::BruteForce,
        "sign-in",
        format!("{} from an unfamiliar IP right after its password failures", count(n, "success", "successes")),
        brute,
        false,
    );
    let n = spray.evidence.len();
    emit(&mut out, SignalKind::PasswordSpray, "sign-in", format!("{} from an IP spraying the organisation", count(n, "success", "successes")), spray, false);
    emit(&mut out, SignalKind::SprayAttempt, "sign-in", "a password spray failed against the account".into(), spray_try, false);
    let n = risky.evidence.len();
    emit(&mut out, SignalKind::RiskySignin, "sign-in", format!("{} rated risky by Entra ID", count(n, "sign-in", "sign-ins")), risky, false);
    out
}

/// Service principal sign-ins (`sp_signins.kql`).
pub fn service_principals(signins: &[SpSignIn], window_start: i64, known: &mut KnownIps) -> Vec<Signal> {
    // (time, IP, country, succeeded, name)
    type SpSignIn = (i64, String, String, bool, String);
    let mut by_app: BTreeMap<String, Vec<SpSignIn>> = BTreeMap::new();
    for r in signins {
        let Some(t) = r.time else { continue };
        by_app.entry(r.app_id.to_lowercase()).or_default().push((t, r.ip.clone(), r.country.clone(), r.result == "0", r.name.clone()));
    }
    let mut found = Found::default();
    for (app, list) in by_app {
        let base: Vec<_> = list.iter().filter(|x| x.0 < window_start && x.3).collect();
        let first = list.iter().map(|x| x.0).min().unwrap_or(window_start);
        let span = (window_start - first) as f64 / DAY;
        let thin = (span < THIN_BASELINE_DAYS).then_some((span * 10.0).round() / 10.0);
        let ips: BTreeSet<&str> = base.iter().map(|x| x.1.as_str()).collect();
        let countries: BTreeSet<&str> = base.iter().map(|x| x.2.as_str()).collect();
        known.0.entry(app.clone()).or_default().extend(ips.iter().map(|s| s.to_string()));
        let mut seen = BTreeSet::new();
        for (t, ip, country, ok, name) in list.iter().filter(|x| x.0 >= window_start) {
            if !ok || base.is_empty() || ips.contains(ip.as_str()) || !seen.insert(ip.clone()) {
                continue;
            }
            let strength = if thin.is_some() {
                0.3
            } else if !countries.contains(country.as_str()) {
                0.75
            } else {
                0.5
            };
            let detail = format!("{name} signed in from {ip} ({country}), an IP it never used; before: {}", ips.iter().copied().collect::<Vec<_>>().join(", "));
            found.add(strength, thin, Evidence { table: "AADServicePrincipalSignInLogs".into(), time: format_ticks(*t), key: app.clone(), detail });
        }
    }
    let mut out = Vec::new();
    let n = found.evidence.len();
    emit(
        &mut out,
        SignalKind::SpNewNetwork,
        "service principal",
        format!("{} from an IP it never used", count(n, "service principal sign-in", "service principal sign-ins")),
        found,
        false,
    );
    out
}
