//! Where the hosts connect (VM Insights' VMConnection): a miner must reach its pool, so a destination the host
//! never talked to before, named like a public pool, spoken to on a pool's port, or classed as mining by VM
//! Insights' threat intelligence, is what a miner leaves on the network whatever it calls its process. A
//! destination the host already used in its baseline is its own routine, whatever its port. And data leaves
//! through a process: one sending far more per interval than it ever did (or a process never seen sending)
//! is an outbound spike, named by its process, where Perf only sees the host's total.

use std::collections::{BTreeMap, BTreeSet};

use super::{triggering, Evidence, Signal, SignalKind};
use crate::enrich::rows::HostConnection;
use crate::model::text::{count, printable};
use crate::model::time::format_ticks;

/// Ports public pools serve stratum on (xmrig's and the pools' own documentation: 3333, 4444, 5555, 7777,
/// 9999, 14433/14444 TLS, 10128/20128 and 45560/45700 of the large Monero pools).
pub const POOL_PORTS: [u16; 12] = [3333, 4444, 5555, 6666, 7777, 9999, 10128, 14433, 14444, 20128, 45560, 45700];

/// Names that only a pool has, beyond the mining vocabulary's public pools: a stratum endpoint.
fn pool_name(lower: &str) -> Option<&'static str> {
    triggering::mining_artefact(lower).or_else(|| lower.contains("stratum").then_some("stratum"))
}

pub fn host_connections(rows: &[HostConnection]) -> Vec<Signal> {
    // What each host knew before the window: its destinations (address and port) and the names it resolved.
    let mut known_dest: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut known_names: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.before.unwrap_or(0.0) > 0.0) {
        known_dest.insert((r.host.as_str(), r.remote_ip.as_str()));
        known_names.entry(r.host.as_str()).or_default().extend(names(&r.names));
    }
    let mut evidence = Vec::new();
    let mut strength: f64 = 0.0;
    for r in rows.iter().filter(|r| r.during.unwrap_or(0.0) > 0.0) {
        if known_dest.contains(&(r.host.as_str(), r.remote_ip.as_str())) {
            continue;
        }
        let resolved = names(&r.names);
        let host_names = known_names.get(r.host.as_str());
        if !resolved.is_empty() && resolved.iter().all(|n| host_names.is_some_and(|k| k.contains(n))) {
            continue;
        }
        let port = r.port.unwrap_or(0.0) as u16;
        let threat = r.threat.to_ascii_lowercase();
        let named = resolved.iter().find_map(|n| pool_name(n).map(|p| (n.clone(), p)));
        let (s, why) = if let Some((name, p)) = &named {
            (0.95, format!("resolved from {} (a mining pool's name: {p})", printable(name, 120)))
        } else if threat.contains("min") || threat.contains("coin") {
            (0.9, format!("classed '{}' by VM Insights' threat intelligence", printable(&r.threat, 60)))
        } else if POOL_PORTS.contains(&port) {
            (0.7, format!("on port {port}, a mining pool's stratum port"))
        } else {
            continue;
        };
        strength = strength.max(s);
        evidence.push((
            s,
            Evidence {
                table: "VMConnection".into(),
                time: r.last.map(format_ticks).unwrap_or_default(),
                key: r.host.clone(),
                detail: format!(
                    "{} connected to {}:{port}, a destination new for the host, {why}; {} sent",
                    if r.process.is_empty() { "a process".to_string() } else { format!("'{}'", printable(&r.process, 60)) },
                    printable(&r.remote_ip, 64),
                    bytes(r.sent.unwrap_or(0.0))
                ),
            },
        ));
    }
    let mut out = outbound_by_process(rows);
    if evidence.is_empty() {
        return out;
    }
    evidence.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.insert(
        0,
        Signal {
            name: SignalKind::MiningPool,
            family: "network",
            summary: format!("connections to a mining pool: {}", count(evidence.len(), "new destination", "new destinations")),
            strength,
            routine: false,
            thin_baseline_days: None,
            evidence: evidence.into_iter().map(|(_, e)| e).take(5).collect(),
        },
    );
    out
}

/// Bytes a process sent in the window, at least, to count as a bulk transfer (50 MB), and as a multiple of what
/// it sent per interval before.
pub const BULK_SENT: f64 = 50e6;
pub const SENT_FACTOR: f64 = 10.0;

/// What one process on one host sent: before the window and in it, in bytes and reported intervals.
#[derive(Default)]
struct Volume<'a> {
    sent_before: f64,
    intervals_before: f64,
    sent: f64,
    intervals: f64,
    last: Option<i64>,
    /// The destination it sent the most to in the window, and how much.
    top: (&'a str, f64),
}

/// Outbound volume by process: per host and process, bytes per reported interval in the window against before.
fn outbound_by_process(rows: &[HostConnection]) -> Vec<Signal> {
    let mut by_process: BTreeMap<(&str, &str), Volume> = BTreeMap::new();
    for r in rows {
        let v = by_process.entry((r.host.as_str(), r.process.as_str())).or_default();
        v.sent_before += r.sent_before.unwrap_or(0.0);
        v.intervals_before += r.before.unwrap_or(0.0);
        let sent = r.sent.unwrap_or(0.0);
        v.sent += sent;
        v.intervals += r.during.unwrap_or(0.0);
        v.last = v.last.max(r.last);
        if sent > v.top.1 {
            v.top = (r.remote_ip.as_str(), sent);
        }
    }
    let mut evidence = Vec::new();
    let mut strength: f64 = 0.0;
    for ((host, process), Volume { sent_before, intervals_before, sent: during, intervals, last, top: (top, _) }) in by_process {
        if during < BULK_SENT || intervals <= 0.0 {
            continue;
        }
        let rate = during / intervals;
        let usual = if intervals_before > 0.0 { sent_before / intervals_before } else { 0.0 };
        if usual > 0.0 && rate < SENT_FACTOR * usual {
            continue;
        }
        strength = strength.max(if usual > 0.0 { 0.8 } else { 0.7 });
        evidence.push(Evidence {
            table: "VMConnection".into(),
            time: last.map(format_ticks).unwrap_or_default(),
            key: host.to_string(),
            detail: format!(
                "{} sent {} in the window, most to {}; {}",
                if process.is_empty() { "a process".to_string() } else { format!("'{}'", printable(process, 60)) },
                bytes(during),
                printable(top, 64),
                if usual > 0.0 { format!("{:.0}× its usual per interval", rate / usual) } else { "a process never seen sending before".to_string() }
            ),
        });
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::NetworkOutSpike,
        family: "network",
        summary: format!("outbound volume by process: {}", count(evidence.len(), "process", "processes")),
        strength,
        routine: false,
        thin_baseline_days: None,
        evidence: evidence.into_iter().take(5).collect(),
    }]
}

/// The names in VMConnection's `RemoteDnsQuestions`: a JSON array written as text, or a bare name.
fn names(field: &str) -> Vec<String> {
    let field = field.trim();
    if field.is_empty() {
        return Vec::new();
    }
    match serde_json::from_str::<Vec<String>>(field) {
        Ok(v) => v.into_iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).filter(|n| !n.is_empty()).collect(),
        Err(_) => vec![field.trim_end_matches('.').to_ascii_lowercase()],
    }
}

fn bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(ip: &str, port: f64, before: f64, during: f64, names: &str) -> HostConnection {
        HostConnection {
            host: "web-01".into(),
            remote_ip: ip.into(),
            port: Some(port),
            before: Some(before),
            during: Some(during),
            sent: Some(20_000.0),
            sent_before: Some(before * 20_000.0),
            links: Some(1.0),
            last: Some(0),
            names: names.into(),
            threat: String::new(),
            process: "kswapd0".into(),
        }
    }

    #[test]
    fn a_new_destination_named_like_a_pool_or_on_a_pool_port_is_a_miner_s() {
        let s = host_connections(&[conn("198.51.100.4", 443.0, 0.0, 12.0, "[\"pool.supportxmr.com\"]")]);
        assert_eq!((s.len(), s[0].strength), (1, 0.95));
        assert!(s[0].evidence[0].detail.contains("supportxmr"), "{:?}", s[0].evidence);
        let s = host_connections(&[conn("198.51.100.4", 14444.0, 0.0, 12.0, "")]);
        assert_eq!(s[0].strength, 0.7);
    }

    #[test]
    fn the_host_s_own_destinations_and_ordinary_ports_are_not() {
        // The host's metrics agent has always spoken to an internal collector on 3333.
        assert!(host_connections(&[conn("10.0.3.8", 3333.0, 800.0, 12.0, "")]).is_empty());
        // A new CDN address over HTTPS, resolved from a name it never resolved: new, but nothing of a pool.
        assert!(host_connections(&[conn("203.0.113.80", 443.0, 0.0, 4.0, "[\"packages.microsoft.com\"]")]).is_empty());
        // A new address of a name the host always resolved.
        let rows = [conn("10.0.9.9", 5555.0, 30.0, 0.0, "[\"collector.contoso.local\"]"), conn("10.0.9.10", 5555.0, 0.0, 3.0, "[\"collector.contoso.local\"]")];
        assert!(host_connections(&rows).is_empty());
    }

    #[test]
    fn a_process_sending_far_more_than_it_ever_did_is_an_outbound_spike() {
        let mut upload = conn("203.0.113.200", 443.0, 0.0, 30.0, "[\"files.example\"]");
        upload.process = "rclone".into();
        upload.sent = Some(3e9);
        let mut db = conn("10.0.2.4", 5432.0, 800.0, 30.0, "");
        db.process = "dotnet".into();
        let s = host_connections(&[db.clone(), upload]);
        let spike = s.iter().find(|s| s.name == SignalKind::NetworkOutSpike).unwrap();
        assert!(spike.evidence[0].detail.contains("'rclone' sent 3000.0 MB"), "{:?}", spike.evidence);
        // The app's own steady traffic, however large in total, is not.
        db.sent = Some(30.0 * 20_000.0);
        db.sent_before = Some(800.0 * 20_000.0);
        assert!(host_connections(&[db]).is_empty());
    }

    #[test]
    fn hostile_names_stay_data() {
        let s = host_connections(&[conn("198.51.100.4", 3333.0, 0.0, 1.0, "[\"x\\u001b[31m.pool.nanopool.org\"]")]);
        assert!(!s[0].evidence[0].detail.contains('\u{1b}'));
    }
}
