//! The signals' vocabulary, written once: every signal the readers can emit, its family, and what the model
//! makes of it ([`Role`]). A new signal is a new variant here; the compiler then names every place that must
//! say what it means, and a test holds that each one either feeds a hypothesis or says why it does not.

use serde::{Deserialize, Serialize};

/// A signal's name. Serialised as before (`cpu_spike`, `new_location`, …), so the tables and the playbook's
/// JSON keep their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    // Sign-ins (user and service principal).
    NewLocation,
    ImpossibleTravel,
    RiskySignin,
    MfaFatigue,
    PasswordSpray,
    BruteForce,
    SprayAttempt,
    SpNewNetwork,
    // The control plane.
    CallerNewIp,
    ComputeProvisioned,
    RoleAssignment,
    ResourceGroupCreated,
    NetworkOpened,
    KeyvaultAccess,
    StorageKeysListed,
    StorageConfigChanged,
    GpuCompute,
    CodeOnHost,
    /// Recovery taken away or data destroyed: backups, snapshots, databases, vaults deleted; soft delete off.
    DestructiveChange,
    /// Encryption at rest turned off (a database's TDE).
    ProtectionDisabled,
    /// An App Service's settings read or written, or its publish profile downloaded.
    AppServiceConfig,
    // Compute telemetry.
    CpuSpike,
    CpuSustained,
    LoadRoutine,
    NetworkOutSpike,
    NetworkInSpike,
    MemoryPressure,
    /// A database's transaction-log writes far above its hour (SQL `log_write_percent`).
    DbWriteSurge,
    /// A storage account's ingress (bytes written) far above its hour.
    StorageWriteSurge,
    /// A service's errors, latency or load far above its own hours: SQL CPU, DTU, deadlocks; App Service 5xx
    /// and response time; Application Insights failed requests, duration, exceptions.
    ServiceDegraded,
    // What ran on the host (SecurityEvent).
    /// Shadow copies or backups deleted, or recovery turned off, from the host's command line.
    ShadowCopyDeleted,
    /// Many failed logons to the host from one address, then a success from it (RDP, SMB, SSH).
    HostBruteForce,
    // Where the hosts connect (VMConnection).
    /// A new destination named like a mining pool, on a pool's port, or classed as mining.
    MiningPool,
    // Key Vault's data plane (AuditEvent).
    /// A principal reading far more distinct secrets, keys or certificates than it ever did.
    VaultSecretBurst,
    /// A principal calling a vault from a network it never used for it (and not one it roams within).
    VaultNewNetwork,
    // A storage account's data plane (StorageBlobLogs).
    /// Blobs read in bulk by an address the account never served.
    BlobReadsNewNetwork,
    // Other alerts and the vendors' tables.
    RelatedAlerts,
    RelatedIdentityAlerts,
    DeceptionHit,
    AiPolicyViolations,
    AccessGrant,
    // The incident's own alerts: what the detection says and what its entities carry.
    AlertMining,
    AlertCredentialAccess,
    AlertExfiltration,
    AlertDrift,
    AlertDestruction,
}

/// What the model makes of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its strength is a feature as it is.
    Feature,
    /// A control-plane change: one feature when it is new for its caller, another when it is routine.
    Change,
    /// Shown to the analyst with its evidence, but weighed by no hypothesis, for the reason given.
    ContextOnly(&'static str),
}

/// No story of the labelled suite produces it, so a fit has nothing to learn its weight from; it stays out of
/// the model until one does (extend `lab::world`, refit, re-measure).
const NO_STORY: &str = "no story of the labelled suite produces it, so no weight could be fitted";

impl SignalKind {
    pub const ALL: [SignalKind; 46] = [
        SignalKind::NewLocation,
        SignalKind::ImpossibleTravel,
        SignalKind::RiskySignin,
        SignalKind::MfaFatigue,
        SignalKind::PasswordSpray,
        SignalKind::BruteForce,
        SignalKind::SprayAttempt,
        SignalKind::SpNewNetwork,
        SignalKind::CallerNewIp,
        SignalKind::ComputeProvisioned,
        SignalKind::RoleAssignment,
        SignalKind::ResourceGroupCreated,
        SignalKind::NetworkOpened,
        SignalKind::KeyvaultAccess,
        SignalKind::StorageKeysListed,
        SignalKind::StorageConfigChanged,
        SignalKind::GpuCompute,
        SignalKind::CodeOnHost,
        SignalKind::DestructiveChange,
        SignalKind::ProtectionDisabled,
        SignalKind::AppServiceConfig,
        SignalKind::CpuSpike,
        SignalKind::CpuSustained,
        SignalKind::LoadRoutine,
        SignalKind::NetworkOutSpike,
        SignalKind::NetworkInSpike,
        SignalKind::MemoryPressure,
        SignalKind::DbWriteSurge,
        SignalKind::StorageWriteSurge,
        SignalKind::ServiceDegraded,
        SignalKind::ShadowCopyDeleted,
        SignalKind::HostBruteForce,
        SignalKind::MiningPool,
        SignalKind::VaultSecretBurst,
        SignalKind::VaultNewNetwork,
        SignalKind::BlobReadsNewNetwork,
        SignalKind::RelatedAlerts,
        SignalKind::RelatedIdentityAlerts,
        SignalKind::DeceptionHit,
        SignalKind::AiPolicyViolations,
        SignalKind::AccessGrant,
        SignalKind::AlertMining,
        SignalKind::AlertCredentialAccess,
        SignalKind::AlertExfiltration,
        SignalKind::AlertDrift,
        SignalKind::AlertDestruction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::NewLocation => "new_location",
            SignalKind::ImpossibleTravel => "impossible_travel",
            SignalKind::RiskySignin => "risky_signin",
            SignalKind::MfaFatigue => "mfa_fatigue",
            SignalKind::PasswordSpray => "password_spray",
            SignalKind::BruteForce => "brute_force",
            SignalKind::SprayAttempt => "spray_attempt",
            SignalKind::SpNewNetwork => "sp_new_network",
            SignalKind::CallerNewIp => "caller_new_ip",
            SignalKind::ComputeProvisioned => "compute_provisioned",
            SignalKind::RoleAssignment => "role_assignment",
            SignalKind::ResourceGroupCreated => "resource_group_created",
            SignalKind::NetworkOpened => "network_opened",
            SignalKind::KeyvaultAccess => "keyvault_access",
            SignalKind::StorageKeysListed => "storage_keys_listed",
            SignalKind::StorageConfigChanged => "storage_config_changed",
            SignalKind::GpuCompute => "gpu_compute",
            SignalKind::CodeOnHost => "code_on_host",
            SignalKind::DestructiveChange => "destructive_change",
            SignalKind::ProtectionDisabled => "protection_disabled",
            SignalKind::AppServiceConfig => "app_service_config",
            SignalKind::CpuSpike => "cpu_spike",
            SignalKind::CpuSustained => "cpu_sustained",
            SignalKind::LoadRoutine => "load_routine",
            SignalKind::NetworkOutSpike => "network_out_spike",
            SignalKind::NetworkInSpike => "network_in_spike",
            SignalKind::MemoryPressure => "memory_pressure",
            SignalKind::DbWriteSurge => "db_write_surge",
            SignalKind::StorageWriteSurge => "storage_write_surge",
            SignalKind::ServiceDegraded => "service_degraded",
            SignalKind::ShadowCopyDeleted => "shadow_copy_deleted",
            SignalKind::HostBruteForce => "host_brute_force",
            SignalKind::MiningPool => "mining_pool",
            SignalKind::VaultSecretBurst => "vault_secret_burst",
            SignalKind::VaultNewNetwork => "vault_new_network",
            SignalKind::BlobReadsNewNetwork => "blob_reads_new_network",
            SignalKind::RelatedAlerts => "related_alerts",
            SignalKind::RelatedIdentityAlerts => "related_identity_alerts",
            SignalKind::DeceptionHit => "deception_hit",
            SignalKind::AiPolicyViolations => "ai_policy_violations",
            SignalKind::AccessGrant => "access_grant",
            SignalKind::AlertMining => "alert_mining",
            SignalKind::AlertCredentialAccess => "alert_credential_access",
            SignalKind::AlertExfiltration => "alert_exfiltration",
            SignalKind::AlertDrift => "alert_drift",
            SignalKind::AlertDestruction => "alert_destruction",
        }
    }

    pub fn role(self) -> Role {
        match self {
            SignalKind::ComputeProvisioned
            | SignalKind::RoleAssignment
            | SignalKind::ResourceGroupCreated
            | SignalKind::NetworkOpened
            | SignalKind::StorageKeysListed
            | SignalKind::CodeOnHost
            | SignalKind::DestructiveChange => Role::Change,
            SignalKind::KeyvaultAccess
            | SignalKind::StorageConfigChanged
            | SignalKind::AccessGrant
            | SignalKind::ProtectionDisabled
            | SignalKind::AppServiceConfig => Role::ContextOnly(NO_STORY),
            // A drop in free memory comes with mining, with batch jobs and with nothing at all: no defensible
            // direction for any hypothesis, so it is shown, never weighed.
            SignalKind::MemoryPressure => Role::ContextOnly("no defensible direction: a memory drop neither supports nor rules out any hypothesis"),
            // A bad release, load and tampering all make a service fail or slow down: what it coincides with (a
            // settings change, a new caller) is what is weighed; the comment shows it beside them.
            SignalKind::ServiceDegraded => Role::ContextOnly("no defensible direction on its own: a bad release, load and tampering all degrade a service"),
            SignalKind::RelatedAlerts | SignalKind::RelatedIdentityAlerts => {
                Role::ContextOnly("the fit on the labelled suite gave it no weight: it separates no hypothesis there")
            }
            _ => Role::Feature,
        }
    }

    /// For the incident's own alert's signals, the threat the alert names.
    pub fn alert_claim(self) -> Option<&'static str> {
        Some(match self {
            SignalKind::AlertMining => "crypto mining",
            SignalKind::AlertCredentialAccess => "a credential attack",
            SignalKind::AlertExfiltration => "data exfiltration",
            SignalKind::AlertDrift => "configuration tampering",
            SignalKind::AlertDestruction => "destructive impact",
            _ => return None,
        })
    }

    /// An anomaly of how an identity signed in: the strongest of them is one more feature.
    pub fn is_identity_anomaly(self) -> bool {
        matches!(
            self,
            SignalKind::NewLocation
                | SignalKind::ImpossibleTravel
                | SignalKind::RiskySignin
                | SignalKind::MfaFatigue
                | SignalKind::PasswordSpray
                | SignalKind::BruteForce
                | SignalKind::SpNewNetwork
        )
    }
}

impl std::fmt::Display for SignalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// The signal's strength; for a control-plane change, only when it is new for its caller.
    Signal(SignalKind),
    /// A control-plane change's strength when it is routine for its caller.
    Routine(SignalKind),
    /// The strongest identity anomaly.
    Identity,
}

impl Feature {
    /// The signals it reads.
    pub fn signals(self) -> Vec<SignalKind> {
        match self {
            Feature::Signal(k) | Feature::Routine(k) => vec![k],
            Feature::Identity => SignalKind::ALL.into_iter().filter(|k| k.is_identity_anomaly()).collect(),
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feature::Signal(k) => write!(f, "{k}"),
            Feature::Routine(k) => write!(f, "{k}:routine"),
            Feature::Identity => f.write_str("identity"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once_and_names_serialise_as_written() {
        let mut seen = std::collections::BTreeSet::new();
        for k in SignalKind::ALL {
            assert!(seen.insert(k), "{k} twice");
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
            assert_eq!(serde_json::from_value::<SignalKind>(serde_json::json!(k.as_str())).unwrap(), k);
        }
    }
}
