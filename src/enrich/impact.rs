//! Business impact: what the incident's assets are worth, which sets the incident's priority ("an alert on a
//! developer sandbox VM is deprioritized, while the same alert on a business-critical AKS cluster running
//! payment processing is escalated"). Read from three places, all at once:
//!
//! - the Microsoft Sentinel watchlist `HighValueAssets` (Microsoft's template), through the Log Analytics
//!   Query API (`high_value_assets.kql`): an asset listed there is business-critical;
//! - the resources' tags, through Azure Resource Graph: a criticality or classification tag makes an asset
//!   critical, an environment tag of dev, test or sandbox makes it a sandbox ([`tag_verdict`]);
//! - each resource's current availability, through Azure Resource Health: an impact already under way.
//!
//! Critical wins over sandbox (a watchlist entry is someone's deliberate word; a forgotten `env=dev` tag must
//! never hide it), and the incident is a sandbox's only when every asset known is one. A read that fails is
//! said (in the notes and the comment), and the asset stays unknown: never critical or sandbox by default.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;

use super::entities::{Names, Subjects};
use super::queries::{preamble, HIGH_VALUE_ASSETS};
use super::rows::{self, HighValueAsset};
use super::{Enricher, QueryRun, RunStatus, Window};
use crate::azure::resources::{Availability, ResourceId};

/// The watchlist read (the alias of Microsoft's "High Value Assets" template).
pub const WATCHLIST_ALIAS: &str = "HighValueAssets";
/// Resources asked about at most (Resource Graph takes them in one query; Resource Health one call each).
pub const MAX_RESOURCES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Nothing says what it is worth.
    Unknown,
    /// A developer sandbox, test or lab asset: not escalated.
    Sandbox,
    /// Business-critical: a threat on it is escalated.
    Critical,
}

/// One of the incident's assets, and why it is rated as it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    /// Its name as the comment shows it (a resource's own name, a host's, an IP).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub criticality: Criticality,
    /// Each source that rated it: "listed in the HighValueAssets watchlist (Azure resource)", "tag
    /// criticality=high".
    pub reasons: Vec<String>,
    /// Resource Health's state when it is not `Available`, with its summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// What business impact found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Impact {
    pub assets: Vec<Asset>,
    /// The reads: the watchlist query, Resource Graph, Resource Health.
    #[serde(skip)]
    pub runs: Vec<QueryRun>,
    /// What could not be read, for the comment and the notes.
    pub gaps: Vec<String>,
}

impl Impact {
    /// The incident's rating: critical when any asset is, a sandbox's when every asset known is one.
    pub fn overall(&self) -> Criticality {
        if self.assets.iter().any(|a| a.criticality == Criticality::Critical) {
            Criticality::Critical
        } else if !self.assets.is_empty() && self.assets.iter().all(|a| a.criticality == Criticality::Sandbox) {
            Criticality::Sandbox
        } else {
            Criticality::Unknown
        }
    }

    /// The assets that make the rating, with their reasons: "vm-pay-01 (listed in …; tag criticality=high)".
    pub fn which(&self) -> String {
        let rating = self.overall();
        let named: Vec<String> = self
            .assets
            .iter()
            .filter(|a| rating == Criticality::Unknown || a.criticality == rating)
            .take(3)
            .map(|a| if a.reasons.is_empty() { a.name.clone() } else { format!("{} ({})", a.name, a.reasons.join("; ")) })
            .collect();
        named.join(", ")
    }

    /// The comment's line (plain text; the renderer escapes it).
    pub fn line(&self) -> String {
        let mut s = match self.overall() {
            Criticality::Critical => format!("business-critical: {}. A threat here is escalated.", self.which()),
            Criticality::Sandbox => format!("a sandbox: {}. Not escalated on that account.", self.which()),
            Criticality::Unknown if self.assets.is_empty() => "unknown: the incident names no host, resource or IP address to rate.".to_string(),
            Criticality::Unknown => {
                let names: Vec<&str> = self.assets.iter().take(3).map(|a| a.name.as_str()).collect();
                format!("unknown: no High Value Assets entry, criticality or environment tag for {}.", names.join(", "))
            }
        };
        let unwell: Vec<String> = self.assets.iter().filter_map(|a| a.health.as_ref().map(|h| format!("{} is {h}", a.name))).collect();
        if !unwell.is_empty() {
            s.push_str(&format!(" Resource Health: {}.", unwell.join("; ")));
        }
        if !self.gaps.is_empty() {
            s.push_str(&format!(" Not read: {}.", self.gaps.join("; ")));
        }
        s
    }
}

fn norm(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// What a resource's tags say of it, and the tag that says so. Keys and values are compared without case or
/// punctuation (`Business-Criticality: Mission Critical` is `businesscriticality=missioncritical`).
pub fn tag_verdict(tags: &BTreeMap<String, String>) -> Option<(Criticality, String)> {
    const CRITICALITY_KEYS: &[&str] = &["criticality", "businesscriticality", "businessimpact", "impact", "tier", "servicetier", "assetcriticality"];
    const CRITICAL_VALUES: &[&str] =
        &["high", "critical", "missioncritical", "businesscritical", "tier0", "tier1", "0", "1", "p0", "p1", "crown", "crownjewel"];
    const LOW_VALUES: &[&str] = &["low", "none", "sandbox", "nonproduction", "nonprod"];
    const CLASSIFICATION_KEYS: &[&str] = &["dataclassification", "classification", "confidentiality", "datasensitivity", "sensitivity"];
    const SENSITIVE_VALUES: &[&str] = &["confidential", "highlyconfidential", "restricted", "secret", "pci", "phi", "pii"];
    const COMPLIANCE_KEYS: &[&str] = &["pci", "pcidss", "compliance", "regulatory"];
    const IN_SCOPE: &[&str] = &["true", "yes", "inscope", "pci", "pcidss", "sox", "hipaa"];
    const ENVIRONMENT_KEYS: &[&str] = &["environment", "env", "stage", "environmenttype", "lifecycle"];
    const SANDBOX_VALUES: &[&str] =
        &["dev", "development", "test", "testing", "sandbox", "sbx", "lab", "demo", "poc", "experiment", "playground", "qa", "nonprod"];
    let mut sandbox = None;
    for (k, v) in tags {
        let (key, value) = (norm(k), norm(v));
        let said = format!("tag {}={}", crate::model::text::printable(k, 40), crate::model::text::printable(v, 40));
        let critical = (CRITICALITY_KEYS.contains(&key.as_str()) && CRITICAL_VALUES.contains(&value.as_str()))
            || (CLASSIFICATION_KEYS.contains(&key.as_str()) && SENSITIVE_VALUES.contains(&value.as_str()))
            || (COMPLIANCE_KEYS.contains(&key.as_str()) && IN_SCOPE.contains(&value.as_str()));
        if critical {
            return Some((Criticality::Critical, said));
        }
        let low = (ENVIRONMENT_KEYS.contains(&key.as_str()) && SANDBOX_VALUES.contains(&value.as_str()))
            || (CRITICALITY_KEYS.contains(&key.as_str()) && LOW_VALUES.contains(&value.as_str()));
        if low && sandbox.is_none() {
            sandbox = Some((Criticality::Sandbox, said));
        }
    }
    sandbox
}

/// Reads the three sources for the incident's assets.
pub async fn assess(e: &Enricher, names: &Names, subjects: &Subjects, w: &Window) -> Impact {
    // Resources: the incident's own and those its hosts resolved to, checked to be ARM ids.
    let mut ids: BTreeSet<ResourceId> = BTreeSet::new();
    let mut refused = 0;
    for r in subjects.resources.iter().chain(names.resources.iter()) {
        match ResourceId::parse(r) {
            Some(id) => {
                ids.insert(id.lowercase());
            }
            None => refused += 1,
        }
    }
    let ids: Vec<ResourceId> = ids.into_iter().take(MAX_RESOURCES).collect();
    let query = format!("{}{}", preamble(names, &[], w), HIGH_VALUE_ASSETS.text);
    let skip = (HIGH_VALUE_ASSETS.skip)(names, subjects);
    let (listed, graph) = futures::future::join(super::correlate::run_query(e, &HIGH_VALUE_ASSETS, query, skip), read_resources(e, &ids)).await;
    let (mut watchlist_run, frame) = listed;
    let entries: Vec<HighValueAsset> = match frame.as_ref().map(rows::read::<HighValueAsset>) {
        Some(Ok(rows)) => rows,
        Some(Err(why)) => {
            watchlist_run.status = RunStatus::Failed(format!("unreadable rows: {why}"));
            Vec::new()
        }
        None => Vec::new(),
    };
    // A workspace where no watchlist was ever created has no Watchlist table at all: the query is refused
    // (400). That is "nothing listed", not a failure to read: said as a skip, and the result is not degraded.
    if watchlist_run.failed() {
        let probe = e.query.query("Watchlist | take 0", None, e.settings.query_timeout).await;
        if let Err(crate::azure::logs_query::QueryError::Refused { status: 400, .. }) = probe {
            watchlist_run.status = RunStatus::Skipped("the workspace has no Watchlist table: no watchlist was ever created".into());
        }
    }
    let mut impact = Impact { runs: vec![watchlist_run], ..Impact::default() };
    if impact.runs[0].failed() {
        impact.gaps.push(format!("the {WATCHLIST_ALIAS} watchlist ({})", impact.runs[0].status));
    }
    let (tags, health, runs, gaps) = graph;
    impact.runs.extend(runs);
    impact.gaps.extend(gaps);
    if refused > 0 {
        impact.gaps.push(format!("{refused} resource {} that are not ARM resource ids", if refused == 1 { "name" } else { "names" }));
    }
    // Each resource, then each host and IP the resources do not already stand for.
    for id in &ids {
        let key = id.as_str().to_ascii_lowercase();
        let mut asset =
            Asset { name: id.name().to_string(), resource_id: Some(id.to_string()), criticality: Criticality::Unknown, reasons: Vec::new(), health: None };
        let host = id.name().to_ascii_lowercase();
        let mut said: Vec<(Criticality, String)> = entries
            .iter()
            .filter(|x| x.asset_id == key || x.search_key.eq_ignore_ascii_case(&key) || names_host(x, &host))
            .map(|x| (Criticality::Critical, listed_reason(x)))
            .collect();
        said.extend(tags.get(&key).and_then(tag_verdict));
        // The highest rating stands, with the sources that gave it (a dev tag is no reason for "critical").
        asset.criticality = said.iter().map(|(c, _)| *c).max().unwrap_or(Criticality::Unknown);
        asset.reasons = said.into_iter().filter(|(c, _)| *c == asset.criticality).map(|(_, why)| why).collect();
        asset.health = health.get(&key).and_then(unwell);
        impact.assets.push(asset);
    }
    let covered: BTreeSet<String> = ids.iter().map(|i| i.name().to_ascii_lowercase()).collect();
    for host in &subjects.hosts {
        let h = host.to_ascii_lowercase();
        let short = h.split('.').next().unwrap_or_default().to_string();
        if covered.contains(&short) || covered.contains(&h) {
            continue;
        }
        let mut asset = Asset { name: host.clone(), resource_id: None, criticality: Criticality::Unknown, reasons: Vec::new(), health: None };
        for entry in entries.iter().filter(|x| names_host(x, &h) || names_host(x, &short)) {
            asset.criticality = Criticality::Critical;
            asset.reasons.push(listed_reason(entry));
        }
        impact.assets.push(asset);
    }
    for ip in &subjects.ips {
        if let Some(entry) = entries.iter().find(|x| !x.ip.is_empty() && x.ip == *ip || x.search_key == *ip) {
            impact.assets.push(Asset {
                name: ip.clone(),
                resource_id: None,
                criticality: Criticality::Critical,
                reasons: vec![listed_reason(entry)],
                health: None,
            });
        }
    }
    for a in &mut impact.assets {
        a.reasons.dedup();
    }
    impact
}

fn names_host(x: &HighValueAsset, host: &str) -> bool {
    !host.is_empty() && (x.asset_name == host || x.fqdn == host || x.fqdn.split('.').next() == Some(host) || x.search_key.eq_ignore_ascii_case(host))
}

fn listed_reason(x: &HighValueAsset) -> String {
    let kind = if x.asset_type.trim().is_empty() { String::new() } else { format!(" as {}", crate::model::text::printable(x.asset_type.trim(), 40)) };
    format!("listed in the {WATCHLIST_ALIAS} watchlist{kind}")
}

/// A state worth saying: anything but `Available`.
fn unwell(a: &Availability) -> Option<String> {
    let state = a.availability_state.as_deref().unwrap_or("an availability-impacting event");
    if state.eq_ignore_ascii_case("Available") {
        return None;
    }
    Some(match &a.summary {
        Some(s) if !s.trim().is_empty() => format!("{state} ({})", crate::model::text::printable(s.trim(), 160)),
        _ => state.to_string(),
    })
}

type ResourceReads = (BTreeMap<String, BTreeMap<String, String>>, BTreeMap<String, Availability>, Vec<QueryRun>, Vec<String>);

/// Tags through Resource Graph and availability through Resource Health, each recorded as a run.
async fn read_resources(e: &Enricher, ids: &[ResourceId]) -> ResourceReads {
    let mut runs = Vec::new();
    let mut gaps = Vec::new();
    if ids.is_empty() {
        for name in ["resource_graph", "resource_health"] {
            runs.push(QueryRun { name: name.into(), status: RunStatus::Skipped("no resources".into()), rows: 0, duration_ms: 0.0, text: String::new() });
        }
        return (BTreeMap::new(), BTreeMap::new(), runs, gaps);
    }
    let t = Instant::now();
    let health_reads = futures::future::join_all(ids.iter().map(|id| e.resources.availability(id)));
    let (tags, health) = futures::future::join(e.resources.tags(ids), health_reads).await;
    let text = ids.iter().map(ResourceId::as_str).collect::<Vec<_>>().join("\n");
    let tags = match tags {
        Ok(found) => {
            runs.push(QueryRun { name: "resource_graph".into(), status: RunStatus::Ok, rows: found.len(), duration_ms: super::ms(t), text: text.clone() });
            found
        }
        Err(err) => {
            gaps.push(format!("tags from Azure Resource Graph ({err})"));
            runs.push(QueryRun {
                name: "resource_graph".into(),
                status: RunStatus::Failed(err.to_string()),
                rows: 0,
                duration_ms: super::ms(t),
                text: text.clone(),
            });
            BTreeMap::new()
        }
    };
    let mut states = BTreeMap::new();
    let mut failed = Vec::new();
    for (id, r) in ids.iter().zip(health) {
        match r {
            Ok(Some(a)) => {
                states.insert(id.as_str().to_ascii_lowercase(), a);
            }
            Ok(None) => {}
            Err(err) => failed.push(err.to_string()),
        }
    }
    let status = match failed.first() {
        None => RunStatus::Ok,
        Some(first) => {
            gaps.push(format!("Azure Resource Health for {} of {} resources ({first})", failed.len(), ids.len()));
            RunStatus::Failed(first.clone())
        }
    };
    runs.push(QueryRun { name: "resource_health".into(), status, rows: states.len(), duration_ms: super::ms(t), text });
    (tags, states, runs, gaps)
}
