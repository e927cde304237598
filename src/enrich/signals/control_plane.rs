//! Control-plane operations (AzureActivity) in the window, by category, each routine when the same caller did
//! the same operation (not merely the same kind: scaling a scale set routinely does not make creating a VM
//! routine) in the baseline. A caller may be a user (UPN) or a service principal (its app id): both are
//! identities, and one acting from an IP it never used (in its operations or its sign-ins) is `caller_new_ip`.

use std::collections::{BTreeMap, BTreeSet};

use super::identity::KnownIps;
use super::{Evidence, Signal, SignalKind};
use crate::enrich::rows::OperationRow;
use crate::model::text::count;
use crate::model::time::format_ticks;

/// The operations that matter, by the prefix of `OperationNameValue`, and by what the request asked for where
/// the operation alone says nothing: a blob service or backup vault change is destructive only when it turns
/// soft delete off, a storage account or vault write opens the network only when its firewall's default action
/// becomes Allow ([`exposure`] says which).
fn category(op: &str, exposes: bool) -> Option<(SignalKind, &'static str)> {
    let recovery_switch =
        op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/WRITE") || op.starts_with("MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPCONFIG/WRITE");
    let firewall = op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE") || op.starts_with("MICROSOFT.KEYVAULT/VAULTS/WRITE");
    Some(if destroys(op) || (recovery_switch && exposes) {
        (SignalKind::DestructiveChange, "recovery removed or data destroyed")
    } else if recovery_switch {
        return None;
    } else if firewall && exposes {
        (SignalKind::NetworkOpened, "network security rule or firewall change")
    } else if op.starts_with("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE") || answers_load(op) {
        (SignalKind::ComputeProvisioned, "compute created or scaled")
    } else if runs_code(op) {
        (SignalKind::CodeOnHost, "Run Command or extension install")
    } else if op.starts_with("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE") {
        (SignalKind::RoleAssignment, "role assignment")
    } else if op.starts_with("MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/WRITE") {
        (SignalKind::ResourceGroupCreated, "resource group created")
    } else if op.starts_with("MICROSOFT.NETWORK/NETWORKSECURITYGROUPS")
        || op.starts_with("MICROSOFT.NETWORK/AZUREFIREWALLS")
        || op.starts_with("MICROSOFT.NETWORK/FIREWALLPOLICIES")
    {
        (SignalKind::NetworkOpened, "network security rule or firewall change")
    } else if op.starts_with("MICROSOFT.SQL/SERVERS/DATABASES/TRANSPARENTDATAENCRYPTION/WRITE") {
        if !exposes {
            return None;
        }
        (SignalKind::ProtectionDisabled, "encryption at rest turned off")
    } else if op.starts_with("MICROSOFT.KEYVAULT/") {
        (SignalKind::KeyvaultAccess, "Key Vault access or policy change")
    } else if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS") || op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/REGENERATEKEY") {
        (SignalKind::StorageKeysListed, "storage account keys listed")
    } else if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE") {
        (SignalKind::StorageConfigChanged, "storage account (firewall) change")
    } else if app_service_secrets(op) {
        (SignalKind::AppServiceConfig, "App Service settings or publish profile read or changed")
    } else {
        return None;
    })
}

/// An App Service's settings written or listed (its connection strings and keys live there), or its publish
/// profile (deployment credentials) downloaded: what a stolen deploy identity does first.
fn app_service_secrets(op: &str) -> bool {
    op.starts_with("MICROSOFT.WEB/SITES/")
        && (op.contains("/CONFIG/WRITE") || op.contains("/CONFIG/LIST/ACTION") || op.contains("/PUBLISHXML/ACTION") || op.contains("/CONFIG/APPSETTINGS/"))
}

/// What an intruder deletes before (or instead of) encrypting: the ways back (backup items, policies and vaults,
/// snapshots, immutability policies, Key Vault vaults and keys) and the data itself (databases, disks, storage
/// accounts, containers). A blob service or backup vault change turning soft delete off is read from its
/// request ([`exposure`]).
fn destroys(op: &str) -> bool {
    let recovery = (op.starts_with("MICROSOFT.RECOVERYSERVICES/VAULTS") || op.starts_with("MICROSOFT.DATAPROTECTION/BACKUPVAULTS")) && op.ends_with("/DELETE");
    let deleted = [
        "MICROSOFT.COMPUTE/SNAPSHOTS/DELETE",
        "MICROSOFT.COMPUTE/DISKS/DELETE",
        "MICROSOFT.COMPUTE/RESTOREPOINTCOLLECTIONS/DELETE",
        "MICROSOFT.SQL/SERVERS/DATABASES/DELETE",
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE",
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/CONTAINERS/DELETE",
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/CONTAINERS/IMMUTABILITYPOLICIES/DELETE",
        "MICROSOFT.KEYVAULT/VAULTS/DELETE",
        "MICROSOFT.KEYVAULT/VAULTS/KEYS/DELETE",
    ];
    recovery || deleted.iter().any(|d| op.starts_with(d))
}

/// A scale set scaled (by its pipeline or by autoscale: `Microsoft.Insights/AutoscaleSettings/Scaleup/Action`,
/// written by the autoscale service): the platform answering load with more of the compute it already runs,
/// which an analyst reads as the load being real, not as new compute. Who scaled it from where is still
/// checked (`caller_new_ip`), and GPU sizes still count as `gpu_compute`.
fn answers_load(op: &str) -> bool {
    op.starts_with("MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE")
        || op.contains("VIRTUALMACHINESCALESETS/SCALE")
        || op.starts_with("MICROSOFT.INSIGHTS/AUTOSCALESETTINGS/SCALEUP/ACTION")
        || op.starts_with("MICROSOFT.INSIGHTS/AUTOSCALESETTINGS/SCALEDOWN/ACTION")
}

/// Code run inside a machine by its control plane, with no sign-in to the machine: Run Command (action or
/// managed), and extension installs (the Custom Script extension is how a miner is dropped at scale), on VMs,
/// scale-set instances and Arc machines.
fn runs_code(op: &str) -> bool {
    (op.starts_with("MICROSOFT.COMPUTE/VIRTUALMACHINE") || op.starts_with("MICROSOFT.HYBRIDCOMPUTE/MACHINES"))
        && (op.contains("/RUNCOMMAND") || op.contains("/EXTENSIONS/WRITE"))
}

/// Sources that mean "anyone" in a security rule.
const ANYWHERE: [&str; 5] = ["*", "0.0.0.0/0", "internet", "any", "::/0"];
/// Ports an intruder wants reachable: SSH, RDP, WinRM, Telnet, SMB, and the common database engines.
const MANAGEMENT_PORTS: [u16; 9] = [22, 3389, 5985, 5986, 23, 445, 1433, 3306, 5432];

/// What a change opens to the internet, read from the request Azure recorded: a security rule from anywhere to
/// a management port (or to every port), or a storage firewall whose default action becomes Allow.
fn exposure(op: &str, r: &OperationRow) -> Option<String> {
    if op.starts_with("MICROSOFT.NETWORK/NETWORKSECURITYGROUPS") && ANYWHERE.contains(&r.source_prefix.to_ascii_lowercase().as_str()) {
        let port = r.destination_port.trim();
        let opens = port == "*"
            || MANAGEMENT_PORTS.iter().any(|p| match port.split_once('-') {
                Some((lo, hi)) => lo.parse::<u16>().is_ok_and(|lo| lo <= *p) && hi.parse::<u16>().is_ok_and(|hi| *p <= hi),
                None => port.parse::<u16>() == Ok(*p),
            });
        if opens {
            return Some(format!("opens port {port} to {} (source '{}')", "the internet", r.source_prefix));
        }
    }
    if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE") && r.default_action.eq_ignore_ascii_case("allow") {
        return Some("sets the storage firewall's default action to Allow (reachable from every network)".to_string());
    }
    if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/WRITE") && r.soft_delete.eq_ignore_ascii_case("false") {
        return Some("turns blob soft delete off (what is deleted next cannot be recovered)".to_string());
    }
    if op.starts_with("MICROSOFT.KEYVAULT/VAULTS/WRITE") && r.default_action.eq_ignore_ascii_case("allow") {
        return Some("sets the vault's firewall default action to Allow (reachable from every network)".to_string());
    }
    if op.starts_with("MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPCONFIG/WRITE") && r.feature_off.eq_ignore_ascii_case("softDeleteFeatureState") {
        return Some("turns the backup vault's soft delete off (deleted backups are gone at once)".to_string());
    }
    if op.starts_with("MICROSOFT.SQL/SERVERS/DATABASES/TRANSPARENTDATAENCRYPTION/WRITE") && r.feature_off.eq_ignore_ascii_case("state") {
        return Some("turns transparent data encryption off".to_string());
    }
    None
}

/// GPU families of Azure VM sizes (N-series: NC, ND, NG, NV): what miners ask for.
fn is_gpu(size: &str) -> bool {
    let s = size.to_ascii_uppercase();
    ["STANDARD_NC", "STANDARD_ND", "STANDARD_NG", "STANDARD_NV"].iter().any(|p| s.starts_with(p))
}

pub fn control_plane(operations: &[OperationRow], window_start: i64, known: &KnownIps) -> Vec<Signal> {
    type CallerOp = (String, String);
    let mut baseline: BTreeSet<CallerOp> = BTreeSet::new();
    let mut caller_ips: BTreeMap<String, BTreeSet<String>> = known.0.clone();
    // Each change: who did what, its evidence, and whether it opens something to the internet.
    type Changes = (&'static str, Vec<(CallerOp, Evidence, bool)>);
    let mut window: BTreeMap<SignalKind, Changes> = BTreeMap::new();
    let mut new_ip: Vec<Evidence> = Vec::new();
    let mut gpu: Vec<Evidence> = Vec::new();
    // One operation writes a row per status (Start, Accept, Success) under one CorrelationId: it counts once.
    let mut seen_operations = BTreeSet::new();
    // (time, caller, IP, operation, resource, VM size, what it opens to the internet)
    type Row = (i64, String, String, String, String, String, Option<String>);
    let mut rows: Vec<Row> = operations
        .iter()
        .filter(|r| r.correlation_id.is_empty() || seen_operations.insert((r.correlation_id.to_ascii_lowercase(), r.operation.to_ascii_uppercase())))
        .filter_map(|r| {
            let op = r.operation.to_ascii_uppercase();
            let exposure = exposure(&op, r);
            Some((r.time?, r.caller.to_lowercase(), r.caller_ip.clone(), op, r.resource_id.clone(), r.vm_size.clone(), exposure))
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    for (_, caller, ip, op, _, _, exposes) in rows.iter().filter(|r| r.0 < window_start) {
        caller_ips.entry(caller.clone()).or_default().insert(ip.clone());
        if category(op, exposes.is_some()).is_some() {
            baseline.insert((caller.clone(), op.clone()));
        }
    }
    let mut flagged = BTreeSet::new();
    // The platform scaling for load (autoscale, the pipeline) during the window: the load is expected and met.
    let mut load_answers: BTreeSet<CallerOp> = BTreeSet::new();
    for (t, caller, ip, op, resource, size, exposes) in rows.iter().filter(|r| r.0 >= window_start) {
        let Some((name, what)) = category(op, exposes.is_some()) else { continue };
        let short = resource.rsplit('/').next().unwrap_or_default().to_string();
        let e = Evidence {
            table: "AzureActivity".into(),
            time: format_ticks(*t),
            key: caller.clone(),
            detail: format!(
                "{op} on {} from {ip}{}",
                if short.is_empty() { "-".to_string() } else { short },
                match (size.is_empty(), exposes) {
                    (_, Some(what)) => format!(": {what}"),
                    (false, None) => format!(" ({size})"),
                    (true, None) => String::new(),
                }
            ),
        };
        let from_new_ip = caller_ips.get(caller).is_some_and(|ips| !ips.is_empty() && !ips.contains(ip));
        // Scaling for load from where its caller always works is routine whatever the baseline saw of it.
        if answers_load(op) && !is_gpu(size) && !from_new_ip {
            baseline.insert((caller.clone(), op.clone()));
            load_answers.insert((caller.clone(), op.clone()));
        }
        if from_new_ip && flagged.insert((caller.clone(), ip.clone())) {
            new_ip.push(Evidence { detail: format!("{caller} acted from {ip}, an IP it never used before: {op}"), ..e.clone() });
        }
        if name == SignalKind::ComputeProvisioned && is_gpu(size) {
            gpu.push(e.clone());
        }
        window.entry(name).or_insert((what, Vec::new())).1.push(((caller.clone(), op.clone()), e, exposes.is_some()));
    }
    let mut out: Vec<Signal> = window
        .into_iter()
        .map(|(name, (what, items))| {
            // Opening a management port or a storage account to the internet, or turning soft delete off, is never
            // routine, whoever does it.
            let opens = items.iter().any(|(_, _, opens)| *opens);
            let routine = !opens && items.iter().all(|(key, _, _)| baseline.contains(key));
            // Scaling that answers the load is the strongest routine there is: the platform expected it.
            let answers = routine && items.iter().all(|(key, _, _)| load_answers.contains(key));
            Signal {
                name,
                family: "control plane",
                summary: format!(
                    "{}{}",
                    count(items.len(), &format!("{what} operation"), &format!("{what} operations")),
                    if routine { ", routine for the caller" } else { ", new for the caller" }
                ),
                strength: if opens {
                    0.95
                } else if answers {
                    0.6
                } else if routine {
                    0.3
                } else {
                    0.7
                },
                routine,
                thin_baseline_days: None,
                evidence: items.into_iter().map(|(_, e, _)| e).take(5).collect(),
            }
        })
        .collect();
    if !gpu.is_empty() {
        out.push(Signal {
            name: SignalKind::GpuCompute,
            family: "control plane",
            summary: format!("{} created", count(gpu.len(), "GPU virtual machine", "GPU virtual machines")),
            strength: 0.8,
            routine: false,
            thin_baseline_days: None,
            evidence: gpu.into_iter().take(5).collect(),
        });
    }
    if !new_ip.is_empty() {
        out.push(Signal {
            name: SignalKind::CallerNewIp,
            family: "control plane",
            summary: if new_ip.len() == 1 {
                "1 control-plane caller acting from an IP it never used".to_string()
            } else {
                format!("{} control-plane callers acting from an IP they never used", new_ip.len())
            },
            strength: 0.6,
            routine: false,
            thin_baseline_days: None,
            evidence: new_ip.into_iter().take(5).collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_datetime_ticks;

    fn op(time: &str, operation: &str, correlation: &str, source: &str, port: &str) -> OperationRow {
        OperationRow {
            time: parse_datetime_ticks(time),
            caller: "tf@contoso.com".into(),
            caller_ip: "203.0.113.10".into(),
            operation: operation.into(),
            resource_id: "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/networksecuritygroups/nsg/securityrules/r".into(),
            vm_size: String::new(),
            correlation_id: correlation.into(),
            source_prefix: source.into(),
            destination_port: port.into(),
            default_action: String::new(),
            soft_delete: String::new(),
            feature_off: String::new(),
        }
    }

    const RULE: &str = "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE";

    fn window_start() -> i64 {
        parse_datetime_ticks("2026-11-20T00:00:00Z").unwrap()
    }

    #[test]
    fn one_operations_start_accept_and_success_count_once() {
        let rows: Vec<OperationRow> =
            ["00:00:01", "00:00:02", "00:00:09"].iter().map(|t| op(&format!("2026-11-20T{t}Z"), RULE, "c0ffee", "10.0.0.0/8", "443")).collect();
        let s = control_plane(&rows, window_start(), &KnownIps::default());
        let opened = s.iter().find(|s| s.name == SignalKind::NetworkOpened).unwrap();
        assert_eq!(opened.evidence.len(), 1, "{opened:?}");
        assert!(opened.summary.starts_with("1 network security rule"), "{}", opened.summary);
    }

    #[test]
    fn a_rule_opening_a_management_port_to_anyone_is_never_routine() {
        // The same caller re-applies a rule every week: routine, until one opens RDP to the internet.
        let mut rows: Vec<OperationRow> =
            (1..4).map(|w| op(&format!("2026-11-{:02}T10:00:00Z", 20 - 7 * w), RULE, &format!("c{w}"), "10.0.0.0/8", "443")).collect();
        rows.push(op("2026-11-20T10:00:00Z", RULE, "c9", "10.0.0.0/8", "443"));
        let routine = control_plane(&rows, window_start(), &KnownIps::default());
        assert!(routine.iter().find(|s| s.name == SignalKind::NetworkOpened).unwrap().routine);
        for (source, port) in [("*", "3389"), ("Internet", "20-25"), ("0.0.0.0/0", "*")] {
            rows.last_mut().unwrap().source_prefix = source.into();
            rows.last_mut().unwrap().destination_port = port.into();
            let s = control_plane(&rows, window_start(), &KnownIps::default());
            let opened = s.iter().find(|s| s.name == SignalKind::NetworkOpened).unwrap();
            assert!(!opened.routine && opened.strength > 0.9, "{source} {port}: {opened:?}");
            assert!(opened.evidence[0].detail.contains(&format!("opens port {port} to the internet")), "{:?}", opened.evidence);
        }
        // A service tag or a web port is not a management port opened to anyone.
        rows.last_mut().unwrap().source_prefix = "AzureFrontDoor.Backend".into();
        rows.last_mut().unwrap().destination_port = "3389".into();
        assert!(control_plane(&rows, window_start(), &KnownIps::default()).iter().find(|s| s.name == SignalKind::NetworkOpened).unwrap().routine);
    }

    #[test]
    fn run_command_and_extensions_are_code_on_the_host() {
        for o in [
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION",
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/EXTENSIONS/WRITE",
            "MICROSOFT.HYBRIDCOMPUTE/MACHINES/RUNCOMMANDS/WRITE",
        ] {
            assert_eq!(category(o, false).map(|c| c.0), Some(SignalKind::CodeOnHost), "{o}");
        }
        assert_eq!(category("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", false).map(|c| c.0), Some(SignalKind::ComputeProvisioned));
    }

    #[test]
    fn deleting_the_ways_back_is_destructive_and_turning_soft_delete_off_is_never_routine() {
        for o in [
            "MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPFABRICS/PROTECTIONCONTAINERS/PROTECTEDITEMS/DELETE",
            "MICROSOFT.COMPUTE/SNAPSHOTS/DELETE",
            "MICROSOFT.SQL/SERVERS/DATABASES/DELETE",
            "MICROSOFT.KEYVAULT/VAULTS/KEYS/DELETE",
        ] {
            assert_eq!(category(o, false).map(|c| c.0), Some(SignalKind::DestructiveChange), "{o}");
        }
        assert_eq!(category("MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPPOLICIES/WRITE", false).map(|c| c.0), None);
        let blob = "MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/WRITE";
        let mut rows: Vec<OperationRow> = (1..4).map(|w| op(&format!("2026-11-{:02}T10:00:00Z", 20 - 7 * w), blob, &format!("c{w}"), "", "")).collect();
        rows.push(op("2026-11-20T10:00:00Z", blob, "c9", "", ""));
        assert!(control_plane(&rows, window_start(), &KnownIps::default()).iter().all(|s| s.name != SignalKind::DestructiveChange), "soft delete left on");
        rows.last_mut().unwrap().soft_delete = "false".into();
        let s = control_plane(&rows, window_start(), &KnownIps::default());
        let d = s.iter().find(|s| s.name == SignalKind::DestructiveChange).unwrap();
        assert!(!d.routine && d.strength > 0.9 && d.evidence[0].detail.contains("soft delete off"), "{d:?}");
    }

    #[test]
    fn what_a_request_turns_off_or_opens_is_read_from_it() {
        let one = |operation: &str, set: &dyn Fn(&mut OperationRow)| {
            let mut r = op("2026-11-20T10:00:00Z", operation, "c1", "", "");
            set(&mut r);
            control_plane(&[r], window_start(), &KnownIps::default())
        };
        let vault = one("MICROSOFT.KEYVAULT/VAULTS/WRITE", &|r| r.default_action = "Allow".into());
        assert!(
            vault.iter().any(|s| s.name == SignalKind::NetworkOpened && s.strength > 0.9 && s.evidence[0].detail.contains("vault's firewall")),
            "{vault:?}"
        );
        let backup = one("MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPCONFIG/WRITE", &|r| r.feature_off = "softDeleteFeatureState".into());
        assert!(backup.iter().any(|s| s.name == SignalKind::DestructiveChange), "{backup:?}");
        assert!(one("MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPCONFIG/WRITE", &|_| {}).iter().all(|s| s.name != SignalKind::DestructiveChange));
        let tde = one("MICROSOFT.SQL/SERVERS/DATABASES/TRANSPARENTDATAENCRYPTION/WRITE", &|r| r.feature_off = "state".into());
        assert!(tde.iter().any(|s| s.name == SignalKind::ProtectionDisabled), "{tde:?}");
        assert!(one("MICROSOFT.SQL/SERVERS/DATABASES/TRANSPARENTDATAENCRYPTION/WRITE", &|_| {}).iter().all(|s| s.name != SignalKind::ProtectionDisabled));
        for o in ["MICROSOFT.WEB/SITES/CONFIG/WRITE", "MICROSOFT.WEB/SITES/PUBLISHXML/ACTION", "MICROSOFT.WEB/SITES/CONFIG/LIST/ACTION"] {
            assert!(one(o, &|_| {}).iter().any(|s| s.name == SignalKind::AppServiceConfig), "{o}");
        }
    }
}
