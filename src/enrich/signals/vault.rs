//! Key Vault's data plane (AuditEvent, in AzureDiagnostics or AZKVAuditLogs): who read which secrets, keys and
//! certificates, from where. Two things an analyst looks for:
//! - a burst: a principal reading far more distinct items than it ever did (listing a vault and reading what
//!   it holds), which is the data an intruder came for;
//! - a principal calling a vault it never called, or from a network it never used for it. A principal that by
//!   nature comes from a fresh address every time (a release pipeline's hosted agents) is not "new" when the
//!   address is of the networks it always came from, at its usual hours.

use std::collections::{BTreeMap, BTreeSet};

use super::{Evidence, Signal, SignalKind};
use crate::enrich::rows::VaultAccess;
use crate::model::text::printable;
use crate::model::time::format_ticks;

/// Distinct items read from one address in the window, at least, and as a multiple of the most the principal
/// ever read from the vault from one address in its baseline, for a burst. Per address, because the query
/// counts distinct items per address: a pipeline reading its five secrets from a fresh address at each run
/// reads five each time, never sixty.
pub const BURST_ITEMS: f64 = 10.0;
pub const BURST_FACTOR: f64 = 3.0;
/// A principal that used this many addresses for a vault in its baseline roams by nature (hosted agents).
pub const ROAMING_ADDRESSES: usize = 8;

/// The window's calls of one principal to one vault: the most items read from one address, the last call,
/// the addresses, the table they were read in.
#[derive(Default)]
struct Window<'a> {
    items: f64,
    last: Option<i64>,
    ips: Vec<&'a str>,
    table: &'a str,
}

#[derive(Default)]
struct History<'a> {
    ips: BTreeSet<&'a str>,
    networks: BTreeSet<String>,
    hours: BTreeSet<i64>,
    /// The most distinct items read from one address.
    items: f64,
}

/// The /16 of an IPv4 address (the provider's block, as far as the log can tell), or the /48 of an IPv6 one.
fn network(ip: &str) -> String {
    if let Ok(std::net::IpAddr::V4(v4)) = ip.parse() {
        let o = v4.octets();
        return format!("{}.{}", o[0], o[1]);
    }
    ip.split(':').take(3).collect::<Vec<_>>().join(":")
}

/// "`caller` called the vault from `ip`, `what`": a call new to the vault or to its principal, cited by its row.
fn called_from(r: &VaultAccess, what: &str) -> Evidence {
    Evidence {
        table: printable(&r.table, 40),
        time: r.last.map(format_ticks).unwrap_or_default(),
        key: vault_name(&r.vault),
        detail: format!("{} called the vault from {}, {what}", printable(&r.caller, 120), printable(&r.ip, 64)),
    }
}

/// A vault's name, the last segment of its ARM id: the key an analyst recognises.
fn vault_name(id: &str) -> String {
    printable(id.rsplit('/').next().unwrap_or_default(), 100)
}

fn hours(field: &str) -> BTreeSet<i64> {
    serde_json::from_str::<Vec<f64>>(field).map(|v| v.into_iter().map(|h| h as i64).collect()).unwrap_or_default()
}

pub fn vault_access(rows: &[VaultAccess]) -> Vec<Signal> {
    let mut history: BTreeMap<(&str, &str), History> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.during) {
        let h = history.entry((r.caller.as_str(), r.vault.as_str())).or_default();
        h.ips.insert(r.ip.as_str());
        h.networks.insert(network(&r.ip));
        h.hours.extend(hours(&r.hours));
        h.items = h.items.max(r.items.unwrap_or(0.0));
    }
    // How many principals each vault served in the baseline: a vault with a history of its own callers.
    let mut principals: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, vault) in history.keys() {
        *principals.entry(vault).or_default() += 1;
    }
    // The window's reads per principal and vault, and its calls from addresses new for the pair.
    let mut window: BTreeMap<(&str, &str), Window> = BTreeMap::new();
    let mut new_network = Vec::new();
    let mut first_calls = BTreeSet::new();
    for r in rows.iter().filter(|r| r.during && !r.caller.is_empty()) {
        let w = window.entry((r.caller.as_str(), r.vault.as_str())).or_default();
        w.items = w.items.max(r.items.unwrap_or(0.0));
        w.last = w.last.max(r.last);
        w.ips.push(r.ip.as_str());
        w.table = r.table.as_str();
        let Some(h) = history.get(&(r.caller.as_str(), r.vault.as_str())) else {
            // A principal the vault never served, while it served others all month.
            let known = principals.get(r.vault.as_str()).copied().unwrap_or(0);
            if known > 0 && first_calls.insert((r.caller.as_str(), r.vault.as_str())) {
                let what =
                    format!("its first call to it in the baseline (which saw {})", crate::model::text::count(known, "other principal", "other principals"));
                new_network.push(called_from(r, &what));
            }
            continue;
        };
        if h.ips.contains(r.ip.as_str()) || r.ip.is_empty() {
            continue;
        }
        let roams = h.ips.len() >= ROAMING_ADDRESSES;
        let usual = h.networks.contains(&network(&r.ip)) && hours(&r.hours).iter().all(|x| h.hours.contains(x));
        if roams && usual {
            continue;
        }
        let what = format!("an address it never used for it ({} known{})", h.ips.len(), if roams { ", but not of its usual networks and hours" } else { "" });
        new_network.push(called_from(r, &what));
    }
    let mut out = Vec::new();
    let mut bursts = Vec::new();
    let mut burst_strength: f64 = 0.0;
    for ((caller, vault), Window { items, last, ips, table }) in &window {
        let known = history.get(&(*caller, *vault));
        let before = known.map_or(0.0, |h| h.items);
        if *items < BURST_ITEMS || *items <= BURST_FACTOR * before {
            continue;
        }
        let from_new = ips.iter().any(|ip| known.is_none_or(|h| !h.ips.contains(ip)));
        burst_strength = burst_strength.max(if from_new { 0.9 } else { 0.7 });
        bursts.push(Evidence {
            table: printable(table, 40),
            time: last.map(format_ticks).unwrap_or_default(),
            key: vault_name(vault),
            detail: format!(
                "{} read {items:.0} distinct secrets, keys or certificates from one address in the window, against at most {before:.0} before{}",
                printable(caller, 120),
                if from_new { ", from an address it never used for the vault" } else { "" }
            ),
        });
    }
    if !bursts.is_empty() {
        out.push(Signal {
            name: SignalKind::VaultSecretBurst,
            family: "key vault",
            summary: format!("secrets read in bulk from {}", crate::model::text::count(bursts.len(), "vault", "vaults")),
            strength: burst_strength,
            routine: false,
            thin_baseline_days: None,
            evidence: bursts.into_iter().take(5).collect(),
        });
    }
    if !new_network.is_empty() {
        out.push(Signal {
            name: SignalKind::VaultNewNetwork,
            family: "key vault",
            summary: "a principal new to a vault, or calling it from a network it never used".into(),
            strength: 0.8,
            routine: false,
            thin_baseline_days: None,
            evidence: new_network.into_iter().take(5).collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(caller: &str, ip: &str, during: bool, items: f64, hours: &str) -> VaultAccess {
        VaultAccess {
            caller: caller.into(),
            vault: "/subscriptions/s/resourcegroups/prod/providers/microsoft.keyvault/vaults/kv-prod".into(),
            ip: ip.into(),
            during,
            calls: Some(items),
            items: Some(items),
            hours: hours.into(),
            last: Some(0),
            table: "AzureDiagnostics".into(),
        }
    }

    #[test]
    fn a_principal_reading_the_vault_from_a_new_network_is_a_burst_and_a_new_network() {
        let rows = [row("alice@contoso.com", "203.0.113.10", false, 2.0, "[9]"), row("alice@contoso.com", "198.51.100.23", true, 70.0, "[3]")];
        let s = vault_access(&rows);
        let names: Vec<_> = s.iter().map(|s| (s.name, s.strength)).collect();
        assert_eq!(names, [(SignalKind::VaultSecretBurst, 0.9), (SignalKind::VaultNewNetwork, 0.8)]);
        assert!(s[0].evidence[0].detail.contains("70 distinct"), "{:?}", s[0].evidence);
        assert_eq!((s[0].evidence[0].table.as_str(), s[0].evidence[0].key.as_str()), ("AzureDiagnostics", "kv-prod"));
    }

    #[test]
    fn a_pipeline_from_fresh_addresses_of_its_networks_at_its_hours_is_not_new() {
        let mut rows: Vec<VaultAccess> = (0..20).map(|k| row("app-pipeline", &format!("13.107.6.{k}"), false, 5.0, "[0,6,12,18]")).collect();
        // Twelve runs in the window, each from a fresh address of its networks: five secrets each, never sixty.
        rows.extend((0..12).map(|k| row("app-pipeline", &format!("13.107.9.{}", 200 + k), true, 5.0, "[12]")));
        assert!(vault_access(&rows).is_empty());
        // The same pipeline from another provider's block at 03:00 is new.
        rows.push(row("app-pipeline", "45.9.20.1", true, 5.0, "[3]"));
        assert_eq!(vault_access(&rows).iter().map(|s| s.name).collect::<Vec<_>>(), [SignalKind::VaultNewNetwork]);
    }

    #[test]
    fn a_principal_the_vault_never_served_is_new_to_it() {
        let rows = [row("mi-web", "10.0.1.4", false, 3.0, "[1]"), row("mallory@contoso.com", "10.0.1.9", true, 2.0, "[4]")];
        let s = vault_access(&rows);
        assert_eq!(s.iter().map(|s| s.name).collect::<Vec<_>>(), [SignalKind::VaultNewNetwork]);
        assert!(s[0].evidence[0].detail.contains("its first call to it"), "{:?}", s[0].evidence);
        // A vault with no history at all (its logs just switched on) says nothing of who is new.
        assert!(vault_access(&rows[1..]).is_empty());
    }

    #[test]
    fn an_app_reading_its_few_secrets_as_always_is_nothing() {
        let rows = [row("mi-web", "10.0.1.4", false, 3.0, "[1,2,3]"), row("mi-web", "10.0.1.4", true, 3.0, "[4]")];
        assert!(vault_access(&rows).is_empty());
    }
}
