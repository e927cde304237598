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

/// The operations that matter, by the prefix of `OperationNameValue`.
fn category(op: &str) -> Option<(SignalKind, &'static str)> {
    Some(if op.starts_with("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE") || answers_load(op) {
        (SignalKind::ComputeProvisioned, "compute created or scaled")
    } else if op.starts_with("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE") {
        (SignalKind::RoleAssignment, "role assignment")
    } else if op.starts_with("MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/WRITE") {
        (SignalKind::ResourceGroupCreated, "resource group created")
    } else if op.starts_with("MICROSOFT.NETWORK/NETWORKSECURITYGROUPS")
        || op.starts_with("MICROSOFT.NETWORK/AZUREFIREWALLS")
        || op.starts_with("MICROSOFT.NETWORK/FIREWALLPOLICIES")
    {
        (SignalKind::NetworkOpened, "network security rule or firewall change")
    } else if op.starts_with("MICROSOFT.KEYVAULT/") {
        (SignalKind::KeyvaultAccess, "Key Vault access or policy change")
    } else if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS") || op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/REGENERATEKEY") {
        (SignalKind::StorageKeysListed, "storage account keys listed")
    } else if op.starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE") {
        (SignalKind::StorageConfigChanged, "storage account (firewall) change")
    } else {
        return None;
    })
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

/// GPU families of Azure VM sizes (N-series: NC, ND, NG, NV): what miners ask for.
fn is_gpu(size: &str) -> bool {
    let s = size.to_ascii_uppercase();
    ["STANDARD_NC", "STANDARD_ND", "STANDARD_NG", "STANDARD_NV"].iter().any(|p| s.starts_with(p))
}

pub fn control_plane(operations: &[OperationRow], window_start: i64, known: &KnownIps) -> Vec<Signal> {
    type CallerOp = (String, String);
    let mut baseline: BTreeSet<CallerOp> = BTreeSet::new();
    let mut caller_ips: BTreeMap<String, BTreeSet<String>> = known.0.clone();
    type Changes = (&'static str, Vec<(CallerOp, Evidence)>);
    let mut window: BTreeMap<SignalKind, Changes> = BTreeMap::new();
    let mut new_ip: Vec<Evidence> = Vec::new();
    let mut gpu: Vec<Evidence> = Vec::new();
    let mut rows: Vec<(i64, String, String, String, String, String)> = operations
        .iter()
        .filter_map(|r| {
            Some((r.time?, r.caller.to_lowercase(), r.caller_ip.clone(), r.operation.to_ascii_uppercase(), r.resource_id.clone(), r.vm_size.clone()))
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    for (_, caller, ip, op, _, _) in rows.iter().filter(|r| r.0 < window_start) {
        caller_ips.entry(caller.clone()).or_default().insert(ip.clone());
        if category(op).is_some() {
            baseline.insert((caller.clone(), op.clone()));
        }
    }
    let mut flagged = BTreeSet::new();
    for (t, caller, ip, op, resource, size) in rows.iter().filter(|r| r.0 >= window_start) {
        let Some((name, what)) = category(op) else { continue };
        let short = resource.rsplit('/').next().unwrap_or_default().to_string();
        let e = Evidence {
            table: "AzureActivity".into(),
            time: format_ticks(*t),
            key: caller.clone(),
            detail: format!(
                "{op} on {} from {ip}{}",
                if short.is_empty() { "-".to_string() } else { short },
                if size.is_empty() { String::new() } else { format!(" ({size})") }
            ),
        };
        let from_new_ip = caller_ips.get(caller).is_some_and(|ips| !ips.is_empty() && !ips.contains(ip));
        // Scaling for load from where its caller always works is routine whatever the baseline saw of it.
        if answers_load(op) && !is_gpu(size) && !from_new_ip {
            baseline.insert((caller.clone(), op.clone()));
        }
        if from_new_ip && flagged.insert((caller.clone(), ip.clone())) {
            new_ip.push(Evidence { detail: format!("{caller} acted from {ip}, an IP it never used before: {op}"), ..e.clone() });
        }
        if name == SignalKind::ComputeProvisioned && is_gpu(size) {
            gpu.push(e.clone());
        }
        window.entry(name).or_insert((what, Vec::new())).1.push(((caller.clone(), op.clone()), e));
    }
    let mut out: Vec<Signal> = window
        .into_iter()
        .map(|(name, (what, items))| {
            let routine = items.iter().all(|(key, _)| baseline.contains(key));
            Signal {
                name,
                family: "control plane",
                summary: format!(
                    "{}{}",
                    count(items.len(), &format!("{what} operation"), &format!("{what} operations")),
                    if routine { ", routine for the caller" } else { ", new for the caller" }
                ),
                strength: if routine { 0.3 } else { 0.7 },
                routine,
                thin_baseline_days: None,
                evidence: items.into_iter().map(|(_, e)| e).take(5).collect(),
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
