//! The incident's entities and every name they go by: gathered from Sentinel's entities and alerts, normalised
//! (lower case; a UPN's guest form `name_domain#EXT#@tenant` and its home form; a host's short name and FQDN;
//! GUIDs as object or app ids), then resolved against the telemetry by `queries/resolve_entities.kql` (Perf's
//! FQDN and `_ResourceId`, the VM's resource id in AzureMetrics and AzureActivity, the UPN as the sign-in logs
//! spell it, a service principal's app id). The correlation queries then match those names exactly; the
//! comment says which names matched, and which entities matched nothing.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::azure::sentinel::{Alert, Entity};
use crate::enrich::rows::ResolvedName;

/// What the incident is about, as Sentinel names it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Subjects {
    pub accounts: Vec<String>,
    pub hosts: Vec<String>,
    pub ips: Vec<String>,
    pub resources: Vec<String>,
    /// Object ids and app ids an entity carries (`aadUserId`, `objectGuid`, a GUID as a name).
    #[serde(rename = "accountIds", skip_serializing_if = "Vec::is_empty")]
    pub account_ids: Vec<String>,
    #[serde(skip)]
    pub own_alert_ids: Vec<String>,
    /// Names past [`MAX_PER_KIND`] of a kind, by kind: not correlated, and the notes say so.
    #[serde(rename = "leftOut", skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub left_out: std::collections::BTreeMap<&'static str, usize>,
}

/// Names of one kind an enrichment correlates at most: an incident with thousands of entities (a spray's
/// IPs) still makes queries of bounded size and cost.
pub const MAX_PER_KIND: usize = 100;

/// Distinct names of one kind (compared case-insensitively, in linear time), the first [`MAX_PER_KIND`] kept.
#[derive(Default)]
struct Collect {
    seen: std::collections::HashSet<String>,
    items: Vec<String>,
    left_out: usize,
}

impl Collect {
    fn push(&mut self, s: Option<String>) {
        let Some(s) = s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s.len() <= 512) else { return };
        if self.seen.insert(s.to_lowercase()) {
            if self.items.len() < MAX_PER_KIND {
                self.items.push(s);
            } else {
                self.left_out += 1;
            }
        }
    }
}

impl Subjects {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.hosts.is_empty() && self.ips.is_empty() && self.resources.is_empty() && self.account_ids.is_empty()
    }
}

pub fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

pub fn subjects_of(entities: &[Entity], alerts: &[Alert]) -> Subjects {
    let (mut accounts, mut account_ids, mut hosts, mut resources, mut ips, mut alert_ids) =
        (Collect::default(), Collect::default(), Collect::default(), Collect::default(), Collect::default(), Collect::default());
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    for e in entities {
        let p = &e.properties;
        match e.kind.as_str() {
            "Account" => {
                let upn = match (str_of(p, "accountName"), str_of(p, "upnSuffix")) {
                    (Some(n), Some(sfx)) => Some(format!("{n}@{sfx}")),
                    _ => str_of(p, "userPrincipalName").or_else(|| str_of(p, "accountName")).or_else(|| str_of(p, "friendlyName")),
                };
                match upn {
                    Some(u) if is_guid(&u) => account_ids.push(Some(u)),
                    u => accounts.push(u),
                }
                for k in ["aadUserId", "objectGuid", "appId"] {
                    account_ids.push(str_of(p, k).filter(|v| is_guid(v)));
                }
            }
            "Host" => {
                let host = str_of(p, "hostName").or_else(|| str_of(p, "netBiosName")).or_else(|| str_of(p, "friendlyName"));
                let fqdn = str_of(p, "fqdn").or_else(|| match (&host, str_of(p, "dnsDomain")) {
                    (Some(h), Some(d)) if !h.contains('.') => Some(format!("{h}.{d}")),
                    _ => None,
                });
                hosts.push(host);
                hosts.push(fqdn);
                resources.push(str_of(p, "azureID"));
            }
            "Ip" => ips.push(str_of(p, "address")),
            "AzureResource" => resources.push(str_of(p, "resourceId")),
            _ => {}
        }
    }
    for a in alerts {
        alert_ids.push(a.properties.get("systemAlertId").and_then(Value::as_str).map(String::from).or(Some(a.name.clone())));
    }
    let mut left_out = std::collections::BTreeMap::new();
    for (kind, c) in [("accounts", &accounts), ("accountIds", &account_ids), ("hosts", &hosts), ("resources", &resources), ("ips", &ips)] {
        if c.left_out > 0 {
            left_out.insert(kind, c.left_out);
        }
    }
    Subjects {
        accounts: accounts.items,
        hosts: hosts.items,
        ips: ips.items,
        resources: resources.items,
        account_ids: account_ids.items,
        own_alert_ids: alert_ids.items,
        left_out,
    }
}

/// The lower-cased names the correlation queries match, before and after resolution.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Names {
    /// UPNs (every spelling found), bare account names and service principal names.
    pub accounts: BTreeSet<String>,
    /// `name_domain`: the prefix a guest's UPN has in the host tenant.
    pub guest_keys: BTreeSet<String>,
    pub account_ids: BTreeSet<String>,
    /// Short names and FQDNs as given.
    pub host_names: BTreeSet<String>,
    pub host_shorts: BTreeSet<String>,
    /// Perf's `Computer` names the hosts resolved to.
    pub computers: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    pub ips: BTreeSet<String>,
}

impl Names {
    pub fn of(s: &Subjects) -> Names {
        let mut n = Names::default();
        for a in &s.accounts {
            let a = a.to_lowercase();
            if let Some((local, domain)) = a.split_once("#ext#@").and_then(|(home, _)| home.rsplit_once('_')).map(|(l, d)| (l.to_string(), d.to_string())) {
                // A guest named by its host-tenant UPN: its home UPN too.
                n.accounts.insert(format!("{local}@{domain}"));
                n.guest_keys.insert(format!("{local}_{domain}"));
            } else if let Some((local, domain)) = a.split_once('@') {
                n.guest_keys.insert(format!("{local}_{domain}"));
            }
            n.accounts.insert(a);
        }
        n.account_ids.extend(s.account_ids.iter().map(|i| i.to_lowercase()));
        for h in &s.hosts {
            let h = h.to_lowercase();
            n.host_shorts.insert(h.split('.').next().unwrap_or(&h).to_string());
            n.host_names.insert(h);
        }
        n.computers.extend(n.host_names.iter().cloned());
        n.resources.extend(s.resources.iter().map(|r| r.to_lowercase()));
        n.ips.extend(s.ips.iter().map(|i| i.to_lowercase()));
        n
    }
}

/// One name an entity was found under, and where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Match {
    pub kind: String,
    pub name: String,
    pub source: String,
    pub rows: i64,
}

/// What resolution found, and the entities it did not find anywhere.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolution {
    pub matches: Vec<Match>,
    pub unmatched: Vec<String>,
}

/// Adds what `resolve_entities.kql` found to the names, and says which entities nothing matched.
pub fn resolve(s: &Subjects, names: &mut Names, found: Option<&[ResolvedName]>) -> Resolution {
    let mut r = Resolution::default();
    if let Some(found) = found {
        for row in found {
            let (kind, name, id, source) = (row.kind.clone(), row.name.to_lowercase(), row.id.to_lowercase(), row.source.clone());
            let rows = row.rows.unwrap_or(0.0) as i64;
            match kind.as_str() {
                "host" => {
                    names.computers.insert(name.clone());
                    if !id.is_empty() {
                        names.resources.insert(id.clone());
                    }
                }
                "resource" => {
                    names.resources.insert(name.clone());
                }
                "account" | "service principal" => {
                    names.accounts.insert(name.clone());
                    if !id.is_empty() {
                        names.account_ids.insert(id.clone());
                    }
                }
                _ => {}
            }
            if !name.is_empty() {
                r.matches.push(Match { kind, name, source, rows });
            }
        }
    }
    r.matches.sort();
    r.matches.dedup();
    // An entity is matched when some name of it was found.
    let found = |n: &str| r.matches.iter().any(|m| m.name == n || m.name.split('.').next() == Some(n) || m.name.ends_with(&format!("/{n}")));
    for a in &s.accounts {
        let a_l = a.to_lowercase();
        let guest = a_l.split_once('@').map(|(l, d)| format!("{l}_{d}#ext#@"));
        let ok = found(&a_l) || guest.is_some_and(|g| r.matches.iter().any(|m| m.name.starts_with(&g)));
        if !ok {
            r.unmatched.push(a.clone());
        }
    }
    for h in &s.hosts {
        let short = h.to_lowercase();
        let short = short.split('.').next().unwrap_or_default().to_string();
        if !found(&h.to_lowercase()) && !found(&short) {
            r.unmatched.push(h.clone());
        }
    }
    for x in s.resources.iter().chain(&s.account_ids) {
        if !found(&x.to_lowercase()) && !r.matches.iter().any(|m| m.name == x.to_lowercase()) {
            r.unmatched.push(x.clone());
        }
    }
    r
}

/// "ann.lee@fabrikam.com → ann.lee_fabrikam.com#ext#@contoso.onmicrosoft.com (SigninLogs)": the names that
/// differ from what the incident said, for the comment.
pub fn describe(r: &Resolution, s: &Subjects) -> Vec<String> {
    let given: BTreeSet<String> = s.accounts.iter().chain(&s.hosts).chain(&s.resources).chain(&s.account_ids).map(|x| x.to_lowercase()).collect();
    // One line per name, with every table it was found in: "acme-web-02 (Heartbeat, Perf)".
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for m in &r.matches {
        if m.kind == "caller" && given.contains(&m.name) {
            continue;
        }
        match out.iter_mut().find(|(name, _)| *name == m.name) {
            Some((_, sources)) if !sources.contains(&m.source) => sources.push(m.source.clone()),
            Some(_) => {}
            None => out.push((m.name.clone(), vec![m.source.clone()])),
        }
    }
    out.into_iter().map(|(name, sources)| format!("{name} ({})", sources.join(", "))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An incident naming thousands of entities correlates a bounded number of each kind, says how many it left
    /// out, and tells names apart in linear time, case-insensitively.
    #[test]
    fn entities_are_bounded_per_kind_and_deduplicated() {
        let entity = |kind: &str, props: serde_json::Value| serde_json::from_value::<Entity>(serde_json::json!({"kind": kind, "properties": props})).unwrap();
        let mut all: Vec<Entity> = (0..150)
            .flat_map(|i| {
                let a = format!("10.0.{}.{}", i / 256, i % 256);
                [entity("Ip", serde_json::json!({"address": a})), entity("Ip", serde_json::json!({"address": a}))]
            })
            .collect();
        all.extend([
            entity("Account", serde_json::json!({"userPrincipalName": "Ann@Contoso.com"})),
            entity("Account", serde_json::json!({"userPrincipalName": "ann@contoso.com"})),
        ]);
        let s = subjects_of(&all, &[]);
        assert_eq!(s.ips.len(), MAX_PER_KIND);
        assert_eq!(s.left_out.get("ips"), Some(&50));
        assert_eq!(s.accounts, ["Ann@Contoso.com"]);
        assert!(!s.left_out.contains_key("accounts"));
    }
}
