//! One record per correlation query: its name, its `.kql` text (shipped in `queries/`), when it runs, and the
//! reader that turns its typed rows ([`super::rows`]) into signals. Adding a query is adding a record here.
//!
//! Every query is bound to the entities' names through `let` statements ([`preamble`]): values are JSON-escaped
//! literals, never spliced into the text. [`RESOLVE`] runs first and widens the names; the [`QUERIES`] then
//! run concurrently, and their readers run in [`Phase`] order, since what identities did in their baseline tells
//! the control plane what is new.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entities::{Names, Subjects};
use super::rows::{self, AponoGrant, MetricHour, NoxysEvent, OperationRow, OrgSource, RelatedAlert, SignIn, SpSignIn, TrapEyeThreat};
use super::signals::{self, identity, Signal};
use super::Window;
use crate::model::frame::Frame;
use crate::model::time::format_ticks;

/// The queries, by name (serialised as the `.kql` file's stem, as the results and the audit trail name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryName {
    ResolveEntities,
    ComputePerf,
    ComputeMetrics,
    Signins,
    SigninSources,
    SpSignins,
    ControlPlane,
    RelatedAlerts,
    VendorNoxys,
    VendorTrapeye,
    VendorApono,
    HostProcesses,
    HostLogons,
    HostConnections,
    VaultAccess,
    StorageReads,
    AppRequests,
    HighValueAssets,
}

impl QueryName {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryName::ResolveEntities => "resolve_entities",
            QueryName::ComputePerf => "compute_perf",
            QueryName::ComputeMetrics => "compute_metrics",
            QueryName::Signins => "signins",
            QueryName::SigninSources => "signin_sources",
            QueryName::SpSignins => "sp_signins",
            QueryName::ControlPlane => "control_plane",
            QueryName::RelatedAlerts => "related_alerts",
            QueryName::VendorNoxys => "vendor_noxys",
            QueryName::VendorTrapeye => "vendor_trapeye",
            QueryName::VendorApono => "vendor_apono",
            QueryName::HostProcesses => "host_processes",
            QueryName::HostLogons => "host_logons",
            QueryName::HostConnections => "host_connections",
            QueryName::VaultAccess => "vault_access",
            QueryName::StorageReads => "storage_reads",
            QueryName::AppRequests => "app_requests",
            QueryName::HighValueAssets => "high_value_assets",
        }
    }
}

impl std::fmt::Display for QueryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a reader runs among the others: what earlier phases learnt, later ones use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The organisation's shared networks, which sign-ins need.
    Organisation,
    /// Identities' sign-ins: the IPs each used in its baseline.
    Identities,
    /// Everything else, the control plane with the identities' known IPs.
    Rest,
}

/// What the readers build up, in phase order.
#[derive(Default)]
pub struct Reading {
    pub window_start: i64,
    pub org: identity::OrgSources,
    pub known: identity::KnownIps,
    pub signals: Vec<Signal>,
    /// What limits the findings (entities whose history is too short to score).
    pub notes: Vec<String>,
}

/// One correlation query.
pub struct CorrelationQuery {
    pub name: QueryName,
    /// The `.kql` text, after the preamble.
    pub text: &'static str,
    /// Why it does not run for these names, when it does not.
    pub skip: fn(&Names, &Subjects) -> Option<&'static str>,
    pub phase: Phase,
    /// The columns its reader reads: its row type's fields.
    pub columns: fn() -> Vec<&'static str>,
    /// Reads its rows into signals; a row that does not fit its type is an error naming the column.
    pub read: fn(&Frame, &mut Reading) -> Result<(), String>,
}

fn typed<T: DeserializeOwned>(f: &Frame) -> Result<Vec<T>, String> {
    rows::read(f)
}

fn no_accounts(n: &Names) -> bool {
    n.accounts.is_empty() && n.account_ids.is_empty()
}

/// No host to read on: no name, short name or ARM id (the host tables match `_ResourceId` too).
fn no_hosts(n: &Names) -> bool {
    n.host_names.is_empty() && n.host_shorts.is_empty() && n.resources.is_empty()
}

/// Resolution: every name each entity goes by in the telemetry (run first; read by `entities::resolve`).
pub static RESOLVE: CorrelationQuery = CorrelationQuery {
    name: QueryName::ResolveEntities,
    text: include_str!("../../queries/resolve_entities.kql"),
    skip: |_, s| s.is_empty().then_some("no entities"),
    phase: Phase::Organisation,
    columns: rows::columns_of::<rows::ResolvedName>,
    read: |_, _| Ok(()),
};

/// The business-impact read: the incident's assets in the High Value Assets watchlist (read by
/// `impact::assess`, not into signals).
pub static HIGH_VALUE_ASSETS: CorrelationQuery = CorrelationQuery {
    name: QueryName::HighValueAssets,
    text: include_str!("../../queries/high_value_assets.kql"),
    skip: |n, _| (no_hosts(n) && n.ips.is_empty()).then_some("no hosts, resources or IP addresses"),
    phase: Phase::Rest,
    columns: rows::columns_of::<rows::HighValueAsset>,
    read: |_, _| Ok(()),
};

/// The correlation queries, in the order the results list them.
pub static QUERIES: [CorrelationQuery; 16] = [
    CorrelationQuery {
        name: QueryName::ComputePerf,
        text: include_str!("../../queries/compute_perf.kql"),
        skip: |n, _| (n.computers.is_empty() && n.resources.is_empty()).then_some("no hosts"),
        phase: Phase::Rest,
        columns: rows::columns_of::<MetricHour>,
        read: |f, r| {
            let scored = signals::compute::compute(&typed::<MetricHour>(f)?, "Perf", r.window_start);
            r.signals.extend(scored.signals);
            r.notes.extend(scored.notes);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::ComputeMetrics,
        text: include_str!("../../queries/compute_metrics.kql"),
        skip: |n, _| n.resources.is_empty().then_some("no resources"),
        phase: Phase::Rest,
        columns: rows::columns_of::<MetricHour>,
        read: |f, r| {
            let scored = signals::compute::compute(&typed::<MetricHour>(f)?, "AzureMetrics", r.window_start);
            r.signals.extend(scored.signals);
            r.notes.extend(scored.notes);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::Signins,
        text: include_str!("../../queries/signins.kql"),
        skip: |n, _| no_accounts(n).then_some("no accounts"),
        phase: Phase::Identities,
        columns: rows::columns_of::<SignIn>,
        read: |f, r| {
            let found = identity::signins(&typed::<SignIn>(f)?, r.window_start, &r.org, &mut r.known);
            r.signals.extend(found);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::SigninSources,
        text: include_str!("../../queries/signin_sources.kql"),
        skip: |n, _| no_accounts(n).then_some("no accounts"),
        phase: Phase::Organisation,
        columns: rows::columns_of::<OrgSource>,
        read: |f, r| {
            r.org = identity::org_sources(&typed::<OrgSource>(f)?);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::SpSignins,
        text: include_str!("../../queries/sp_signins.kql"),
        skip: |n, _| n.account_ids.is_empty().then_some("no object or app ids"),
        phase: Phase::Identities,
        columns: rows::columns_of::<SpSignIn>,
        read: |f, r| {
            let found = identity::service_principals(&typed::<SpSignIn>(f)?, r.window_start, &mut r.known);
            r.signals.extend(found);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::ControlPlane,
        text: include_str!("../../queries/control_plane.kql"),
        skip: |n, _| (no_accounts(n) && n.resources.is_empty()).then_some("no accounts or resources"),
        phase: Phase::Rest,
        columns: rows::columns_of::<OperationRow>,
        read: |f, r| {
            let found = signals::control_plane::control_plane(&typed::<OperationRow>(f)?, r.window_start, &r.known);
            r.signals.extend(found);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::RelatedAlerts,
        text: include_str!("../../queries/related_alerts.kql"),
        skip: |_, s| s.is_empty().then_some("no entities"),
        phase: Phase::Rest,
        columns: rows::columns_of::<RelatedAlert>,
        read: |f, r| {
            r.signals.extend(signals::related_alerts(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::VendorNoxys,
        text: include_str!("../../queries/vendor_noxys.kql"),
        skip: |n, _| no_accounts(n).then_some("no accounts"),
        phase: Phase::Rest,
        columns: rows::columns_of::<NoxysEvent>,
        read: |f, r| {
            r.signals.extend(signals::vendor_noxys(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::VendorTrapeye,
        text: include_str!("../../queries/vendor_trapeye.kql"),
        skip: |n, _| n.ips.is_empty().then_some("no IP addresses"),
        phase: Phase::Rest,
        columns: rows::columns_of::<TrapEyeThreat>,
        read: |f, r| {
            r.signals.extend(signals::vendor_trapeye(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::HostProcesses,
        text: include_str!("../../queries/host_processes.kql"),
        skip: |n, _| no_hosts(n).then_some("no hosts"),
        phase: Phase::Rest,
        columns: rows::columns_of::<rows::HostProcess>,
        read: |f, r| {
            r.signals.extend(signals::host::host_processes(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::HostLogons,
        text: include_str!("../../queries/host_logons.kql"),
        skip: |n, _| no_hosts(n).then_some("no hosts"),
        phase: Phase::Rest,
        columns: rows::columns_of::<rows::HostLogons>,
        read: |f, r| {
            r.signals.extend(signals::host::host_logons(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::HostConnections,
        text: include_str!("../../queries/host_connections.kql"),
        skip: |n, _| (no_hosts(n) && n.ips.is_empty()).then_some("no hosts or IP addresses"),
        phase: Phase::Rest,
        columns: rows::columns_of::<rows::HostConnection>,
        read: |f, r| {
            r.signals.extend(signals::network::host_connections(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::VaultAccess,
        text: include_str!("../../queries/vault_access.kql"),
        skip: |n, _| (no_accounts(n) && n.resources.is_empty() && n.ips.is_empty()).then_some("no accounts, resources or IP addresses"),
        phase: Phase::Rest,
        columns: rows::columns_of::<rows::VaultAccess>,
        read: |f, r| {
            r.signals.extend(signals::vault::vault_access(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::StorageReads,
        text: include_str!("../../queries/storage_reads.kql"),
        skip: |n, _| (n.resources.is_empty() && n.ips.is_empty()).then_some("no resources or IP addresses"),
        phase: Phase::Rest,
        columns: rows::columns_of::<rows::StorageReads>,
        read: |f, r| {
            r.signals.extend(signals::storage::storage_reads(&typed(f)?));
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::AppRequests,
        text: include_str!("../../queries/app_requests.kql"),
        skip: |n, _| (n.resources.is_empty() && n.host_shorts.is_empty()).then_some("no resources or hosts"),
        phase: Phase::Rest,
        columns: rows::columns_of::<MetricHour>,
        read: |f, r| {
            let scored = signals::compute::compute(&typed::<MetricHour>(f)?, "AppRequests, AppExceptions", r.window_start);
            r.signals.extend(scored.signals);
            r.notes.extend(scored.notes);
            Ok(())
        },
    },
    CorrelationQuery {
        name: QueryName::VendorApono,
        text: include_str!("../../queries/vendor_apono.kql"),
        skip: |n, _| no_accounts(n).then_some("no accounts"),
        phase: Phase::Rest,
        columns: rows::columns_of::<AponoGrant>,
        read: |f, r| {
            r.signals.extend(signals::vendor_apono(&typed(f)?));
            Ok(())
        },
    },
];

/// A KQL `dynamic([...])` literal of strings: values are JSON-escaped, never spliced as KQL.
pub fn kql_strings(values: &[String]) -> String {
    format!("dynamic({})", serde_json::to_string(values).expect("strings serialise"))
}

pub fn kql_datetime(ticks: i64) -> String {
    format!("datetime({})", format_ticks(ticks))
}

/// The `let` statements that bind a query's parameters. Every value is lower-cased, JSON-escaped and bound as
/// data: never spliced into the query's text.
pub fn preamble(n: &Names, own_alert_ids: &[String], w: &Window) -> String {
    let v = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
    // Each resource's own name (the last segment of its ARM id): an App Service's cloud role in App Insights.
    let resource_names: Vec<String> =
        n.resources.iter().filter_map(|r| r.rsplit('/').next()).filter(|s| !s.is_empty()).map(str::to_string).collect::<BTreeSet<_>>().into_iter().collect();
    let mut values: BTreeSet<String> = BTreeSet::new();
    for set in [&n.accounts, &n.account_ids, &n.host_names, &n.host_shorts, &n.computers, &n.resources, &n.ips] {
        values.extend(set.iter().cloned());
    }
    format!(
        "let Accounts = {};\nlet GuestKeys = {};\nlet AccountIds = {};\nlet HostNames = {};\nlet HostShorts = {};\nlet Computers = {};\nlet Resources = {};\nlet ResourceNames = {};\nlet Ips = {};\nlet EntityValues = {};\nlet OwnAlertIds = {};\nlet WindowStart = {};\nlet WindowEnd = {};\nlet BaselineStart = {};\n",
        kql_strings(&v(&n.accounts)),
        kql_strings(&v(&n.guest_keys)),
        kql_strings(&v(&n.account_ids)),
        kql_strings(&v(&n.host_names)),
        kql_strings(&v(&n.host_shorts)),
        kql_strings(&v(&n.computers)),
        kql_strings(&v(&n.resources)),
        kql_strings(&resource_names),
        kql_strings(&v(&n.ips)),
        kql_strings(&v(&values)),
        kql_strings(own_alert_ids),
        kql_datetime(w.start),
        kql_datetime(w.end),
        kql_datetime(w.baseline_start),
    )
}
