//! Settings, read once at start-up from the environment (app settings under the Functions host) and checked
//! before anything starts: a bad value stops start-up with an error naming the setting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::ingest::MAX_CALL_BYTES;
use crate::token::MONITOR_SCOPE;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {setting}: {message}")]
pub struct SettingError {
    pub setting: String,
    pub message: String,
}

fn bad(setting: &str, message: impl Into<String>) -> SettingError {
    SettingError { setting: setting.into(), message: message.into() }
}

/// Where rows go: Azure, or the embedded local workspace when no endpoint is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Azure { endpoint: String, dcr_immutable_id: String, scope: String },
    Local,
}

/// Where queries go: the Log Analytics Query API, or the local workspace when no workspace id is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryBackend {
    Azure { endpoint: String, workspace_id: String },
    Local,
}

/// Enrichment settings, plus where Sentinel is.
#[derive(Debug, Clone)]
pub struct EnrichConfig {
    pub settings: crate::enrich::EnrichSettings,
    /// `/subscriptions/…/resourceGroups/…/providers/Microsoft.OperationalInsights/workspaces/…`
    pub workspace_resource_id: Option<String>,
    pub arm_endpoint: String,
    /// Azure OpenAI endpoint, deployment and api-version, when the narrative is on.
    pub openai: Option<(String, String, String)>,
}

fn https_or_loopback(setting: &str, value: &str) -> Result<String, SettingError> {
    let url = reqwest::Url::parse(value).map_err(|e| bad(setting, format!("not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(bad(setting, "must be https (http only on loopback, for stand-ins)"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// Where accepted events wait when a destination cannot take them in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpillSetting {
    Off,
    Dir(PathBuf),
    AzureQueue { storage: StorageSetting, queue: String, container: String },
}

/// How the `azure-queue` spill reaches the function's storage account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSetting {
    /// `AzureWebJobsStorage` as a connection string with a key (Azurite, local development).
    ConnectionString(String),
    /// Identity-based: the queue and blob service URIs, reached with the managed identity.
    Identity { queue_url: String, blob_url: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub port: Option<u16>,
    pub backend: Backend,
    pub query: QueryBackend,
    pub enrich: EnrichConfig,
    pub spill: SpillSetting,
    /// `SEKOIA_INTAKE_URL`, when set (else the EU intake, or the local workspace's stand-in locally).
    pub sekoia_url: Option<String>,
    pub sekoia_key: Option<String>,
    pub sekoia_max_call_bytes: usize,
    /// `SOURCE_<NAME>_DESTINATIONS` and `SOURCE_<NAME>_SEKOIA_KEY` values by setting name.
    pub source_settings: BTreeMap<String, String>,
    pub data_dir: PathBuf,
    pub sources_files: Vec<PathBuf>,
    /// `SOURCE_<NAME>_SECRETS` values by the setting's name.
    pub source_secrets: BTreeMap<String, String>,
    pub max_body_bytes: usize,
    pub deadline: Duration,
    pub linger: Duration,
    pub max_in_flight: usize,
    pub max_call_bytes: usize,
    pub log_format: LogFormat,
    pub under_functions_host: bool,
}

/// The setting that holds a source's secrets: `SOURCE_<NAME>_SECRETS`, the name upper-cased with `-` as `_`.
pub fn secrets_setting(source: &str) -> String {
    source_setting(source, "SECRETS")
}

/// `SOURCE_<NAME>_<WHAT>`.
pub fn source_setting(source: &str, what: &str) -> String {
    format!("SOURCE_{}_{what}", source.to_ascii_uppercase().replace('-', "_"))
}

impl Settings {
    pub fn from_env() -> Result<Settings, SettingError> {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Settings, SettingError> {
        let vars: BTreeMap<String, String> = vars.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        let get = |k: &str| vars.get(k).map(|v| v.trim().to_string());
        let number = |k: &str, default: u64, min: u64, max: u64| -> Result<u64, SettingError> {
            match get(k) {
                None => Ok(default),
                Some(v) => {
                    let n: u64 = v.parse().map_err(|_| bad(k, format!("'{v}' is not a whole number")))?;
                    if n < min || n > max {
                        return Err(bad(k, format!("{n} is outside {min}..={max}")));
                    }
                    Ok(n)
                }
            }
        };
        let port = match get("FUNCTIONS_CUSTOMHANDLER_PORT") {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("FUNCTIONS_CUSTOMHANDLER_PORT", format!("'{p}' is not a port")))?),
        };
        let backend = match get("LOGS_INGESTION_ENDPOINT") {
            None => {
                if get("DCR_IMMUTABLE_ID").is_some() {
                    return Err(bad("LOGS_INGESTION_ENDPOINT", "DCR_IMMUTABLE_ID is set but the endpoint is not"));
                }
                Backend::Local
            }
            Some(endpoint) => {
                let url = reqwest::Url::parse(&endpoint).map_err(|e| bad("LOGS_INGESTION_ENDPOINT", format!("not a URL: {e}")))?;
                let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                    return Err(bad("LOGS_INGESTION_ENDPOINT", "must be https (http only on loopback, for stand-ins)"));
                }
                let dcr = get("DCR_IMMUTABLE_ID").ok_or_else(|| bad("DCR_IMMUTABLE_ID", "required with LOGS_INGESTION_ENDPOINT"))?;
                if !dcr.starts_with("dcr-") || dcr.len() < 5 || !dcr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad("DCR_IMMUTABLE_ID", format!("'{dcr}' is not a DCR immutable id (dcr-…)")));
                }
                let scope = get("LOGS_INGESTION_SCOPE").unwrap_or_else(|| MONITOR_SCOPE.into());
                if !scope.ends_with("/.default") {
                    return Err(bad("LOGS_INGESTION_SCOPE", "must end in /.default"));
                }
                Backend::Azure { endpoint: endpoint.trim_end_matches('/').to_string(), dcr_immutable_id: dcr, scope }
            }
        };
        let query = match get("LOG_ANALYTICS_WORKSPACE_ID") {
            None => QueryBackend::Local,
            Some(id) => {
                uuid::Uuid::parse_str(&id).map_err(|_| bad("LOG_ANALYTICS_WORKSPACE_ID", format!("'{id}' is not a workspace GUID")))?;
                let endpoint = get("LOG_ANALYTICS_ENDPOINT").unwrap_or_else(|| crate::query::DEFAULT_ENDPOINT.into());
                let url = reqwest::Url::parse(&endpoint).map_err(|e| bad("LOG_ANALYTICS_ENDPOINT", format!("not a URL: {e}")))?;
                let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                    return Err(bad("LOG_ANALYTICS_ENDPOINT", "must be https (http only on loopback, for stand-ins)"));
                }
                QueryBackend::Azure { endpoint: endpoint.trim_end_matches('/').to_string(), workspace_id: id }
            }
        };
        let workspace_resource_id = match get("SENTINEL_WORKSPACE_RESOURCE_ID") {
            None => None,
            Some(id) => {
                let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
                let ok = parts.len() == 8
                    && parts[0].eq_ignore_ascii_case("subscriptions")
                    && parts[2].eq_ignore_ascii_case("resourceGroups")
                    && parts[4].eq_ignore_ascii_case("providers")
                    && parts[5].eq_ignore_ascii_case("Microsoft.OperationalInsights")
                    && parts[6].eq_ignore_ascii_case("workspaces")
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || "/-_.()".contains(c));
                if !ok {
                    return Err(bad("SENTINEL_WORKSPACE_RESOURCE_ID", "must be /subscriptions/…/resourceGroups/…/providers/Microsoft.OperationalInsights/workspaces/…"));
                }
                Some(format!("/{}", id.trim_matches('/')))
            }
        };
        let mode = match get("ENRICH_MODE") {
            None => crate::enrich::Mode::Comment,
            Some(m) => crate::enrich::Mode::parse(&m).ok_or_else(|| bad("ENRICH_MODE", format!("'{m}' is not observe, comment or act")))?,
        };
        let threshold = match get("ENRICH_ACT_THRESHOLD") {
            None => 0.8,
            Some(t) => t.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| bad("ENRICH_ACT_THRESHOLD", format!("'{t}' is not a number in 0..1")))?,
        };
        let openai = match (get("AZURE_OPENAI_ENDPOINT"), get("AZURE_OPENAI_DEPLOYMENT")) {
            (None, None) => None,
            (Some(e), Some(d)) => Some((https_or_loopback("AZURE_OPENAI_ENDPOINT", &e)?, d, get("AZURE_OPENAI_API_VERSION").unwrap_or_else(|| "2024-10-21".into()))),
            (Some(_), None) => return Err(bad("AZURE_OPENAI_DEPLOYMENT", "required with AZURE_OPENAI_ENDPOINT")),
            (None, Some(_)) => return Err(bad("AZURE_OPENAI_ENDPOINT", "required with AZURE_OPENAI_DEPLOYMENT")),
        };
        let enrich = EnrichConfig {
            settings: crate::enrich::EnrichSettings {
                mode,
                lookaround: Duration::from_secs(number("ENRICH_LOOKAROUND_HOURS", 72, 1, 720)? * 3600),
                baseline_days: number("ENRICH_BASELINE_DAYS", 14, 14, 30)? as i64,
                query_timeout: Duration::from_secs(number("ENRICH_QUERY_TIMEOUT_SECS", 30, 1, 600)?),
                comment_budget: number("ENRICH_COMMENT_MAX_CHARS", 3000, 500, 30_000)? as usize,
                act_threshold: threshold,
            },
            workspace_resource_id,
            arm_endpoint: https_or_loopback("ARM_ENDPOINT", &get("ARM_ENDPOINT").unwrap_or_else(|| crate::sentinel::DEFAULT_ARM_ENDPOINT.into()))?,
            openai,
        };
        let sources_files = get("WEBHOOK_SOURCES_FILE")
            .map(|v| v.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect())
            .unwrap_or_default();
        let source_secrets = vars
            .iter()
            .filter(|(k, _)| k.starts_with("SOURCE_") && k.ends_with("_SECRETS"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let under_functions_host = port.is_some() || get("FUNCTIONS_WORKER_RUNTIME").is_some();
        let data_dir = PathBuf::from(get("SENTINEL_BRIDGE_DATA_DIR").unwrap_or_else(|| ".sentinel-bridge".into()));
        // The function's storage account, as the Functions host itself is told about it.
        let storage = match (get("AzureWebJobsStorage"), get("AzureWebJobsStorage__queueServiceUri"), get("AzureWebJobsStorage__accountName")) {
            (Some(cs), _, _) => Some(StorageSetting::ConnectionString(cs)),
            (None, Some(q), _) => {
                let q = https_or_loopback("AzureWebJobsStorage__queueServiceUri", &q)?;
                let b = match get("AzureWebJobsStorage__blobServiceUri") {
                    Some(b) => https_or_loopback("AzureWebJobsStorage__blobServiceUri", &b)?,
                    None => return Err(bad("AzureWebJobsStorage__blobServiceUri", "required with AzureWebJobsStorage__queueServiceUri")),
                };
                Some(StorageSetting::Identity { queue_url: q, blob_url: b })
            }
            (None, None, Some(name)) => Some(StorageSetting::Identity {
                queue_url: format!("https://{name}.queue.core.windows.net"),
                blob_url: format!("https://{name}.blob.core.windows.net"),
            }),
            _ => None,
        };
        let queue = get("SPILL_QUEUE").unwrap_or_else(|| "sentinel-bridge-spill".into());
        let container = get("SPILL_CONTAINER").unwrap_or_else(|| "sentinel-bridge-spill".into());
        let name_ok = |n: &str| n.len() >= 3 && n.len() <= 63 && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok(&queue) {
            return Err(bad("SPILL_QUEUE", "3-63 lowercase letters, digits or '-'"));
        }
        if !name_ok(&container) {
            return Err(bad("SPILL_CONTAINER", "3-63 lowercase letters, digits or '-'"));
        }
        let azure_queue = |storage: Option<StorageSetting>| -> Result<SpillSetting, SettingError> {
            let storage = storage.ok_or_else(|| bad("SPILL", "azure-queue needs AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__queueServiceUri / __accountName"))?;
            Ok(SpillSetting::AzureQueue { storage, queue: queue.clone(), container: container.clone() })
        };
        let spill = match get("SPILL").as_deref() {
            // A Functions instance's disk does not outlive it: under the host, the function's storage queue.
            None if under_functions_host => match storage {
                Some(_) => azure_queue(storage)?,
                None => SpillSetting::Off,
            },
            None => SpillSetting::Dir(data_dir.join("spill")),
            Some("off") => SpillSetting::Off,
            Some(v) if v.starts_with("dir:") && v.len() > 4 => SpillSetting::Dir(PathBuf::from(&v[4..])),
            Some("azure-queue") => azure_queue(storage)?,
            Some(v) => return Err(bad("SPILL", format!("'{v}' is not azure-queue, dir:<path> or off"))),
        };
        let sekoia_url = match get("SEKOIA_INTAKE_URL") {
            None => None,
            Some(u) => Some(https_or_loopback("SEKOIA_INTAKE_URL", &u)?),
        };
        let source_settings = vars
            .iter()
            .filter(|(k, _)| k.starts_with("SOURCE_") && (k.ends_with("_DESTINATIONS") || k.ends_with("_SEKOIA_KEY")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let log_format = match get("LOG_FORMAT").as_deref() {
            None if under_functions_host => LogFormat::Json,
            None => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => return Err(bad("LOG_FORMAT", format!("'{other}' is not json or pretty"))),
        };
        Ok(Settings {
            port,
            backend,
            query,
            enrich,
            data_dir,
            spill,
            sekoia_url,
            sekoia_key: get("SEKOIA_INTAKE_KEY"),
            sekoia_max_call_bytes: number("SEKOIA_MAX_CALL_BYTES", 524_288, 1024, 10 * 1_048_576)? as usize,
            source_settings,
            sources_files,
            source_secrets,
            max_body_bytes: number("WEBHOOK_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576)? as usize,
            // Functions answers an HTTP trigger within 230 s at most; vendors usually give up far sooner.
            deadline: Duration::from_secs(number("INGEST_DEADLINE_SECS", 20, 1, 200)?),
            linger: Duration::from_millis(number("BATCH_LINGER_MS", 50, 0, 5_000)?),
            max_in_flight: number("INGEST_MAX_IN_FLIGHT", 4, 1, 64)? as usize,
            max_call_bytes: number("INGEST_MAX_CALL_BYTES", MAX_CALL_BYTES as u64, 1024, MAX_CALL_BYTES as u64)? as usize,
            log_format,
            under_functions_host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        Settings::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_to_the_local_workspace() {
        let s = from(&[]).unwrap();
        assert_eq!(s.backend, Backend::Local);
        assert_eq!(s.max_body_bytes, 1_048_576);
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert_eq!(s.spill, SpillSetting::Dir(PathBuf::from(".sentinel-bridge/spill")));
        let host = from(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "1234")]).unwrap();
        assert_eq!(host.spill, SpillSetting::Off);
        let host = from(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "1234"), ("AzureWebJobsStorage__accountName", "sbst")]).unwrap();
        assert!(matches!(host.spill, SpillSetting::AzureQueue { storage: StorageSetting::Identity { ref queue_url, .. }, .. } if queue_url == "https://sbst.queue.core.windows.net"));
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("LOGS_INGESTION_ENDPOINT", "https://x.ingest.monitor.azure.com")], "DCR_IMMUTABLE_ID"),
            (&[("LOGS_INGESTION_ENDPOINT", "http://example.com"), ("DCR_IMMUTABLE_ID", "dcr-1")], "LOGS_INGESTION_ENDPOINT"),
            (&[("LOGS_INGESTION_ENDPOINT", "https://x"), ("DCR_IMMUTABLE_ID", "abc")], "DCR_IMMUTABLE_ID"),
            (&[("DCR_IMMUTABLE_ID", "dcr-1")], "LOGS_INGESTION_ENDPOINT"),
            (&[("WEBHOOK_MAX_BODY_BYTES", "lots")], "WEBHOOK_MAX_BODY_BYTES"),
            (&[("INGEST_DEADLINE_SECS", "900")], "INGEST_DEADLINE_SECS"),
            (&[("FUNCTIONS_CUSTOMHANDLER_PORT", "70000")], "FUNCTIONS_CUSTOMHANDLER_PORT"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("LOG_ANALYTICS_WORKSPACE_ID", "my-workspace")], "LOG_ANALYTICS_WORKSPACE_ID"),
            (&[("ENRICH_MODE", "destroy")], "ENRICH_MODE"),
            (&[("ENRICH_BASELINE_DAYS", "7")], "ENRICH_BASELINE_DAYS"),
            (&[("ENRICH_ACT_THRESHOLD", "1.5")], "ENRICH_ACT_THRESHOLD"),
            (&[("SENTINEL_WORKSPACE_RESOURCE_ID", "/subscriptions/x/workspaces/y")], "SENTINEL_WORKSPACE_RESOURCE_ID"),
            (&[("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com")], "AZURE_OPENAI_DEPLOYMENT"),
            (&[("ARM_ENDPOINT", "http://management.example.com")], "ARM_ENDPOINT"),
            (&[("SPILL", "tape")], "SPILL"),
            (&[("SPILL", "azure-queue")], "SPILL"),
            (&[("SPILL_QUEUE", "Bad_Name")], "SPILL_QUEUE"),
            (&[("AzureWebJobsStorage__queueServiceUri", "https://a.queue.core.windows.net")], "AzureWebJobsStorage__blobServiceUri"),
            (&[("SEKOIA_INTAKE_URL", "http://intake.example.com")], "SEKOIA_INTAKE_URL"),
            (&[("LOG_ANALYTICS_WORKSPACE_ID", "63613592-b6f7-4c3d-a390-22ba13102111"), ("LOG_ANALYTICS_ENDPOINT", "http://example.com")], "LOG_ANALYTICS_ENDPOINT"),
        ];
        for (vars, setting) in cases {
            assert_eq!(from(vars).unwrap_err().setting, *setting, "{vars:?}");
        }
    }

    #[test]
    fn azure_backend_and_secrets() {
        let s = from(&[
            ("LOGS_INGESTION_ENDPOINT", "https://dce.westeurope-1.ingest.monitor.azure.com/"),
            ("DCR_IMMUTABLE_ID", "dcr-0123abcd"),
            ("SOURCE_NOXYS_SECRETS", "a,b"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "40123"),
        ])
        .unwrap();
        assert!(matches!(s.backend, Backend::Azure { ref endpoint, .. } if endpoint == "https://dce.westeurope-1.ingest.monitor.azure.com"));
        assert_eq!(s.source_secrets["SOURCE_NOXYS_SECRETS"], "a,b");
        assert_eq!((s.port, s.log_format), (Some(40123), LogFormat::Json));
        assert_eq!(secrets_setting("my-vendor"), "SOURCE_MY_VENDOR_SECRETS");
    }
}
