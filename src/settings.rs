//! Settings, read once at start-up from the environment (app settings under the Functions host) and checked
//! before anything starts: a bad value stops start-up with an error naming the setting.
//!
//! Every setting is declared once, in [`REGISTRY`]: its name, default, doc line and kind (for numbers, the
//! range). [`Settings::from_vars`] reads only declared settings, the README's settings table is
//! [`markdown_table`], and a test checks `local.settings.json.example` against the registry. A setting with
//! one of our prefixes that the registry does not know stops start-up, naming the nearest known one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::azure::identity::IdentitySetting;
use crate::azure::identity::MONITOR_SCOPE;
use crate::azure::logs_ingestion::MAX_CALL_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {setting}: {message}")]
pub struct SettingError {
    pub setting: String,
    pub message: String,
}

fn bad(setting: &str, message: impl Into<String>) -> SettingError {
    SettingError { setting: setting.into(), message: message.into() }
}

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text, a URL, an id or a choice; its reader checks it.
    Text,
    /// A whole number within a range, with a default.
    Number { default: u64, min: u64, max: u64 },
    /// A family of settings, one per source: `SOURCE_<NAME>_<suffix>`.
    PerSource { suffix: &'static str },
}

/// Who sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    /// The operator (app settings, `local.settings.json`).
    Operator,
    /// The Functions host or the platform, never people.
    Platform,
}

/// One setting, declared once.
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    pub name: &'static str,
    /// The default as people read it (`unset`, a value, or what happens without it).
    pub default: &'static str,
    pub doc: &'static str,
    pub kind: Kind,
    pub set_by: SetBy,
}

const fn text(name: &'static str, default: &'static str, doc: &'static str) -> SettingDef {
    SettingDef { name, default, doc, kind: Kind::Text, set_by: SetBy::Operator }
}

const fn number(name: &'static str, default: u64, min: u64, max: u64, doc: &'static str) -> SettingDef {
    SettingDef { name, default: "", doc, kind: Kind::Number { default, min, max }, set_by: SetBy::Operator }
}

const fn platform(name: &'static str, doc: &'static str) -> SettingDef {
    SettingDef { name, default: "set by the host", doc, kind: Kind::Text, set_by: SetBy::Platform }
}

const fn per_source(suffix: &'static str, name: &'static str, default: &'static str, doc: &'static str) -> SettingDef {
    SettingDef { name, default, doc, kind: Kind::PerSource { suffix }, set_by: SetBy::Operator }
}

/// Every setting the bridge reads, in the order the README lists them.
pub const REGISTRY: &[SettingDef] = &[
    text("LOGS_INGESTION_ENDPOINT", "unset: local workspace (under the Functions host or beside a managed identity: refused, say `local`)", "the DCR's logs-ingestion endpoint or a DCE URL (https; http only on loopback), or `local` for the local workspace"),
    text("DCR_IMMUTABLE_ID", "required with the endpoint", "the DCR's immutable id, `dcr-…`"),
    text("DCR_RESOURCE_ID", "unset", "the rules' ARM ids (`/subscriptions/…/dataCollectionRules/…`), comma-separated, so `doctor` checks each rule's streams, data flows, destination and endpoint binding; infra/ sets every rule's"),
    text("DCR_STREAM_RULES", "unset: every stream in `DCR_IMMUTABLE_ID`", "streams carried by other rules of the same endpoint (a DCR holds 10 streams): `Custom-A_CL=dcr-…,Custom-B_CL=dcr-…`; infra/ sets it"),
    text("LOGS_INGESTION_SCOPE", "`https://monitor.azure.com/.default`", "token scope (`https://monitor.azure.us/.default` for US Gov, `.cn` for China)"),
    text("AZURE_CLIENT_ID", "system-assigned", "user-assigned managed identity's client id"),
    text("AZURE_TENANT_ID", "unset", "with `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` and no managed identity: a client-secret credential"),
    text("AZURE_CLIENT_SECRET", "unset", "the client secret of that credential"),
    platform("IDENTITY_ENDPOINT", "the managed identity endpoint (with `IDENTITY_HEADER`); its presence selects the managed identity"),
    platform("IDENTITY_HEADER", "the managed identity endpoint's header secret"),
    platform("MSI_ENDPOINT", "the older name of `IDENTITY_ENDPOINT`"),
    per_source("SECRETS", "SOURCE_<NAME>_SECRETS", "unset: the source refuses every request", "a source's secrets, comma-separated (rotation), each at least 16 bytes; Key Vault references in Azure"),
    text("WEBHOOK_SOURCES_FILE", "none", "extra mapping files, comma-separated"),
    per_source("DESTINATIONS", "SOURCE_<NAME>_DESTINATIONS", "the mapping's (`sentinel`)", "a source's destinations, overriding its mapping: `sentinel`, `sekoia` or both"),
    text("SEKOIA_INTAKE_URL", "`https://intake.sekoia.io` (EU); locally the workspace's stand-in", "Sekoia's intake (https; http only on loopback)"),
    text("SEKOIA_INTAKE_KEY", "required when a source routes to Sekoia in Azure", "Sekoia intake key; `SOURCE_<NAME>_SEKOIA_KEY` overrides it per source"),
    per_source("SEKOIA_KEY", "SOURCE_<NAME>_SEKOIA_KEY", "`SEKOIA_INTAKE_KEY`", "a source's own Sekoia intake key"),
    number("SEKOIA_MAX_CALL_BYTES", 524_288, 1024, 10 * 1_048_576, "largest Sekoia call (its limit is not documented)"),
    text("SPILL", "`azure-queue` under the Functions host (when its storage is set), else `dir:<data dir>/spill`", "where accepted events wait when a destination is down: `azure-queue`, `dir:<path>` or `off`"),
    text("SPILL_QUEUE", "`sentinel-bridge-spill`", "the spill queue, 3-56 characters (its poison queue is `<name>-poison`; `functions/*/function.json` read this setting)"),
    number("SPILL_RETRY_BASE_SECS", 30, 1, 3600, "`azure-queue`: a failed redelivery is put back, visible again after this, doubling per attempt"),
    number("SPILL_RETRY_MAX_SECS", 900, 1, 86_400, "`azure-queue`: the longest wait between redelivery attempts"),
    number("SPILL_MAX_ATTEMPTS", 30, 1, 10_000, "`dir:` spill: failed redeliveries of one batch before it moves to the dead-letter store, so the batches behind it drain"),
    number("SPILL_MAX_BYTES", 1 << 30, 1 << 20, 1 << 40, "`dir:` spill: bytes it may hold, dead letters included; past it the webhook answers 503"),
    text("SPILL_CONTAINER", "`sentinel-bridge-spill`", "the blob container for spilled batches over 48 KiB"),
    text("SPILL_SIGNING_KEY", "required with `azure-queue`", "`azure-queue`: the key (at least 32 bytes; two, comma-separated, while rotating) that seals every spill message and dead letter, so one the function did not write is refused; a Key Vault reference in Azure"),
    text("AzureWebJobsStorage", "unset", "the host's storage as a connection string with a key (Azurite, `UseDevelopmentStorage=true`)"),
    text("AzureWebJobsStorage__accountName", "unset", "identity-based host storage; the spill derives the queue and blob URIs from it"),
    text("AzureWebJobsStorage__queueServiceUri", "unset", "identity-based host storage: the queue service URI"),
    text("AzureWebJobsStorage__blobServiceUri", "unset", "identity-based host storage: the blob service URI (with the queue's)"),
    number("WEBHOOK_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576, "largest webhook body"),
    number("HTTP_HEADER_TIMEOUT_SECS", 20, 1, 120, "a request's headers must arrive within this of the connection opening or of its previous response (idle connections close then)"),
    number("HTTP_BODY_TIMEOUT_SECS", 60, 1, 220, "a request's body must arrive within this (a 408 after)"),
    number("WEBHOOK_MAX_EVENTS", 5_000, 1, 100_000, "most events in one webhook body (a 1 MiB body of the smallest real events holds about 4,500); more is a 413"),
    number("INGEST_DEADLINE_SECS", 20, 1, 200, "how long a sender waits for Azure before a 503 (Functions cuts HTTP at 230 s)"),
    number("BATCH_LINGER_MS", 50, 0, 5_000, "how long a call waits for other requests' rows"),
    number("INGEST_MAX_IN_FLIGHT", 4, 1, 64, "ingestion calls in flight per stream"),
    number("INGEST_MAX_CALL_BYTES", MAX_CALL_BYTES as u64, 1024, MAX_CALL_BYTES as u64, "largest call, JSON bytes, at most Azure's 1048576"),
    text("SENTINEL_BRIDGE_DATA_DIR", "`.sentinel-bridge`", "the local workspace's directory; also the spill's and, without `AzureWebJobsStorage`, the replay guard's"),
    text("LOG_ANALYTICS_WORKSPACE_ID", "unset: local workspace", "the workspace GUID for queries (`query`, enrichment)"),
    text("LOG_ANALYTICS_ENDPOINT", "`https://api.loganalytics.azure.com`", "the Query API endpoint"),
    text("SENTINEL_WORKSPACE_RESOURCE_ID", "unset", "the Sentinel workspace's ARM id (`/subscriptions/…/workspaces/…`); with `LOG_ANALYTICS_WORKSPACE_ID` it turns enrichment on in Azure"),
    text("ARM_ENDPOINT", "`https://management.azure.com`", "Azure Resource Manager"),
    text("ENRICH_MODE", "`comment`", "`observe` (tables only), `comment` (also comment), `act` (also label, raise severity)"),
    number("ENRICH_LOOKAROUND_HOURS", 72, 1, 720, "hours before the first activity that the window covers"),
    number("ENRICH_BASELINE_DAYS", 30, 14, 60, "days of baseline before the window (30 holds last month's end and four of each weekday)"),
    number("ENRICH_QUERY_TIMEOUT_SECS", 30, 1, 600, "each correlation query's timeout"),
    number("ENRICH_COMMENT_MAX_CHARS", 10_000, 500, 30_000, "the comment's size budget, characters (Sentinel takes 30000; why 10000: the README's enrichment section)"),
    text("ENRICH_ACT_THRESHOLD", "0.8", "confidence (0 to 1) from which `act` labels and raises severity"),
    number("ENRICH_MAX_CONCURRENT", 4, 1, 64, "enrichments run at once by one instance; the others wait in a bounded queue"),
    number("ENRICH_MAX_QUEUED", 32, 0, 1000, "enrichments waiting for a turn, at most; past it (or past 60 s of waiting) the playbook hears 429 with Retry-After"),
    number("ENRICH_SYNC_WAIT_SECS", 45, 0, 100, "how long `/api/enrich` waits for its run before answering 202 with a `Location` the playbook polls (the Logic App HTTP action gives up on a call at 120 s)"),
    text("ENRICH_KEY", "unset: under the Functions host `/api/enrich` refuses every call; locally it is open", "the key the playbook sends in `x-enrich-key` (at least 16 bytes; two, comma-separated, while rotating); a Key Vault reference in Azure, set by the deployment, so no host key is read at deployment time"),
    text("AZURE_OPENAI_ENDPOINT", "off", "with `AZURE_OPENAI_DEPLOYMENT`: turn on the optional narrative by Azure OpenAI (managed identity)"),
    text("AZURE_OPENAI_DEPLOYMENT", "off", "the chat deployment's name"),
    text("AZURE_OPENAI_API_VERSION", "`2024-10-21`", "chat completions api-version"),
    text("AZURE_OPENAI_MODEL_KIND", "`chat`", "the deployment's request shape: `chat` (GPT-4o, GPT-4.1: `max_tokens`, `temperature` 0) or `reasoning` (o-series, GPT-5: `max_completion_tokens`, no temperature, a developer message)"),
    text("AZURE_OPENAI_MAX_OUTPUT_TOKENS", "300 (`chat`), 4000 (`reasoning`)", "the completion's token budget; a reasoning model's hidden reasoning counts against it"),
    text("AZURE_OPENAI_REASONING_EFFORT", "unset", "`minimal`, `low`, `medium` or `high`: sent as `reasoning_effort` (reasoning only)"),
    text("LOG_FORMAT", "`json` under the host, else `pretty`", "`json` or `pretty`"),
    text("RUST_LOG", "`info`", "log levels, as `tracing`'s filter reads them (`info,sentinel_bridge=debug`)"),
    text("FUNCTIONS_WORKER_RUNTIME", "set by you in Azure", "`custom`; its presence also means \"under the Functions host\" (JSON logs)"),
    platform("FUNCTIONS_CUSTOMHANDLER_PORT", "the port the host forwards requests to"),
];

/// Settings with these prefixes are ours: one the registry does not know is a mistake, not something to ignore.
pub const PREFIXES: &[&str] = &["LOGS_", "DCR_", "SOURCE_", "SEKOIA_", "ENRICH_", "SPILL", "INGEST_", "BATCH_", "WEBHOOK_", "SENTINEL_"];

/// The declaration of a setting, by its name (a per-source one by its pattern).
pub fn lookup(name: &str) -> Option<&'static SettingDef> {
    REGISTRY.iter().find(|d| match d.kind {
        Kind::PerSource { suffix } => {
            name.strip_prefix("SOURCE_").and_then(|r| r.strip_suffix(suffix)).and_then(|r| r.strip_suffix('_')).is_some_and(|n| !n.is_empty())
        }
        _ => d.name == name,
    })
}

/// The README's settings table, from the registry (platform settings are described beside it, not listed).
pub fn markdown_table() -> String {
    let mut out = String::from("| setting | meaning | default |\n|---|---|---|\n");
    for d in REGISTRY.iter().filter(|d| d.set_by == SetBy::Operator) {
        let default = match d.kind {
            Kind::Number { default, min, max } => format!("{default} ({min} to {max})"),
            _ => d.default.to_string(),
        };
        out.push_str(&format!("| `{}` | {} | {} |\n", d.name, d.doc, default));
    }
    out
}

/// Levenshtein distance, for naming the setting someone meant.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known setting nearest to `name`.
pub fn nearest(name: &str) -> &'static str {
    REGISTRY.iter().map(|d| d.name).min_by_key(|known| distance(name, known)).unwrap_or("")
}

/// Reads declared settings only, so the registry cannot drift from what start-up reads.
struct Reader<'a> {
    vars: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn declared(&self, name: &str) -> Result<&'static SettingDef, SettingError> {
        lookup(name).ok_or_else(|| bad(name, "is read but not declared in the settings registry (a bug)"))
    }

    fn text(&self, name: &str) -> Result<Option<String>, SettingError> {
        self.declared(name)?;
        Ok(self.vars.get(name).map(|v| v.trim().to_string()))
    }

    fn number(&self, name: &str) -> Result<u64, SettingError> {
        let Kind::Number { default, min, max } = self.declared(name)?.kind else {
            return Err(bad(name, "is not declared as a number (a bug)"));
        };
        match self.text(name)? {
            None => Ok(default),
            Some(v) => {
                let n: u64 = v.parse().map_err(|_| bad(name, format!("'{v}' is not a whole number")))?;
                if n < min || n > max {
                    return Err(bad(name, format!("{n} is outside {min}..={max}")));
                }
                Ok(n)
            }
        }
    }

    /// Every `SOURCE_<NAME>_<suffix>` setting, by its name.
    fn per_source(&self, suffix: &str) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .filter(|(k, _)| matches!(lookup(k), Some(SettingDef { kind: Kind::PerSource { suffix: s }, .. }) if *s == suffix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Where rows go: Azure, or the embedded local workspace when no endpoint is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Azure { endpoint: String, dcr_immutable_id: String, scope: String, stream_rules: Vec<(String, String)>, dcr_resource_ids: Vec<String> },
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
    /// Azure OpenAI, when the narrative is on.
    pub openai: Option<OpenAiSetting>,
    /// Enrichments run at once, and waiting, at most (`/api/enrich`'s admission control).
    pub max_concurrent: usize,
    pub max_queued: usize,
    /// How long a call waits for its run before answering 202 and letting the playbook poll.
    pub sync_wait: Duration,
    /// Who may call `/api/enrich`: the key in `x-enrich-key` (`ENRICH_KEY`), or, when unset, nobody under
    /// the Functions host and anyone locally.
    pub caller: EnrichCaller,
}

/// Who may call `/api/enrich`.
#[derive(Debug, Clone)]
pub enum EnrichCaller {
    /// A caller sending one of these keys in `x-enrich-key`.
    Key(crate::mapping::auth::Secrets),
    /// Nobody: the Functions host without `ENRICH_KEY`.
    Nobody,
    /// Anyone: local use, where the loopback port is the boundary.
    Anyone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiSetting {
    pub endpoint: String,
    pub deployment: String,
    pub api_version: String,
    pub kind: crate::azure::openai::ModelKind,
    pub max_output_tokens: u32,
    pub reasoning_effort: Option<String>,
}

fn https_or_loopback(setting: &str, value: &str) -> Result<String, SettingError> {
    let url = reqwest::Url::parse(value).map_err(|e| bad(setting, format!("not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(bad(setting, "must be https (http only on loopback, for stand-ins)"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// The header the playbook sends `ENRICH_KEY` in.
pub const ENRICH_KEY_HEADER: &str = "x-enrich-key";

/// Where accepted events wait when a destination cannot take them in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpillSetting {
    Off,
    Dir(PathBuf),
    AzureQueue { storage: StorageSetting, queue: String, container: String, seal: crate::delivery::seal::SealKey },
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
    /// The function's storage account, when the host's settings name one.
    pub storage: Option<StorageSetting>,
    pub spill_limits: crate::delivery::spill::SpillLimits,
    /// When an `azure-queue` redelivery that failed is tried again.
    pub spill_retry: crate::delivery::spill::RetrySchedule,
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
    /// Events in one webhook body, at most: the work one request may cause is bounded by it, not by the body.
    pub max_events: usize,
    /// How long a connection may take to send a request's headers (and may stay idle between requests).
    pub http_header_timeout: Duration,
    /// How long a request may take to send its body.
    pub http_body_timeout: Duration,
    pub deadline: Duration,
    pub linger: Duration,
    pub max_in_flight: usize,
    pub max_call_bytes: usize,
    pub log_format: LogFormat,
    /// `RUST_LOG`, checked at start-up.
    pub log_filter: String,
    pub under_functions_host: bool,
    pub identity: IdentitySetting,
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
        // A setting of ours that nothing reads is a typo or a leftover: say which one was meant.
        if let Some(unknown) = vars.keys().find(|k| PREFIXES.iter().any(|p| k.starts_with(p)) && lookup(k).is_none()) {
            return Err(bad(unknown, format!("is not a setting of sentinel-bridge; did you mean {}?", nearest(unknown))));
        }
        let r = Reader { vars: &vars };
        let port = match r.text("FUNCTIONS_CUSTOMHANDLER_PORT")? {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("FUNCTIONS_CUSTOMHANDLER_PORT", format!("'{p}' is not a port")))?),
        };
        // Under the Functions host, or beside a managed identity, an instance's disk is no place for events: the
        // local workspace is used there only when asked for by name.
        let hosted =
            port.is_some() || r.text("FUNCTIONS_WORKER_RUNTIME")?.is_some() || r.text("IDENTITY_ENDPOINT")?.is_some() || r.text("MSI_ENDPOINT")?.is_some();
        let backend = match r.text("LOGS_INGESTION_ENDPOINT")?.as_deref() {
            None | Some("local") => {
                for needs_endpoint in ["DCR_IMMUTABLE_ID", "DCR_STREAM_RULES", "DCR_RESOURCE_ID"] {
                    if r.text(needs_endpoint)?.is_some() {
                        return Err(bad("LOGS_INGESTION_ENDPOINT", format!("{needs_endpoint} is set but the endpoint is not")));
                    }
                }
                if hosted && r.text("LOGS_INGESTION_ENDPOINT")?.is_none() {
                    return Err(bad(
                        "LOGS_INGESTION_ENDPOINT",
                        "is not set, and this runs under the Functions host (or beside a managed identity): events would land on this instance's disk. Set the DCR's endpoint and DCR_IMMUTABLE_ID, or LOGS_INGESTION_ENDPOINT=local to use the local workspace on purpose",
                    ));
                }
                Backend::Local
            }
            Some(endpoint) => {
                let endpoint = https_or_loopback("LOGS_INGESTION_ENDPOINT", endpoint)?;
                let dcr = r.text("DCR_IMMUTABLE_ID")?.ok_or_else(|| bad("DCR_IMMUTABLE_ID", "required with LOGS_INGESTION_ENDPOINT"))?;
                let is_dcr_id = |d: &str| d.starts_with("dcr-") && d.len() >= 5 && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !is_dcr_id(&dcr) {
                    return Err(bad("DCR_IMMUTABLE_ID", format!("'{dcr}' is not a DCR immutable id (dcr-…)")));
                }
                let mut stream_rules = Vec::new();
                for entry in r.text("DCR_STREAM_RULES")?.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()) {
                    let (stream, rule) = entry.split_once('=').map(|(s, d)| (s.trim(), d.trim())).unwrap_or((entry, ""));
                    let stream_ok = (stream.starts_with("Custom-") || stream.starts_with("Microsoft-")) && crate::azure::logs_ingestion::is_stream_name(stream);
                    if !stream_ok || !is_dcr_id(rule) {
                        return Err(bad("DCR_STREAM_RULES", format!("'{entry}' is not <stream>=<dcr immutable id> (Custom-Acme_CL=dcr-…)")));
                    }
                    if stream_rules.iter().any(|(s, _): &(String, String)| s == stream) {
                        return Err(bad("DCR_STREAM_RULES", format!("'{stream}' is named twice")));
                    }
                    stream_rules.push((stream.to_string(), rule.to_string()));
                }
                let scope = r.text("LOGS_INGESTION_SCOPE")?.unwrap_or_else(|| MONITOR_SCOPE.into());
                if !scope.ends_with("/.default") {
                    return Err(bad("LOGS_INGESTION_SCOPE", "must end in /.default"));
                }
                let mut dcr_resource_ids = Vec::new();
                for id in r.text("DCR_RESOURCE_ID")?.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    {
                        let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
                        let eq = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
                        let ok = segs.len() == 8
                            && eq(0, "subscriptions")
                            && eq(2, "resourceGroups")
                            && eq(4, "providers")
                            && eq(5, "Microsoft.Insights")
                            && eq(6, "dataCollectionRules")
                            && segs
                                .iter()
                                .all(|s| !s.is_empty() && *s != "." && *s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c)));
                        if !ok {
                            return Err(bad("DCR_RESOURCE_ID", format!("'{id}' is not a data collection rule's ARM id (/subscriptions/…/resourceGroups/…/providers/Microsoft.Insights/dataCollectionRules/…)")));
                        }
                        dcr_resource_ids.push(format!("/{}", segs.join("/")));
                    }
                }
                Backend::Azure { endpoint: endpoint.trim_end_matches('/').to_string(), dcr_immutable_id: dcr, scope, stream_rules, dcr_resource_ids }
            }
        };
        let query = match r.text("LOG_ANALYTICS_WORKSPACE_ID")? {
            None => QueryBackend::Local,
            Some(id) => {
                uuid::Uuid::parse_str(&id).map_err(|_| bad("LOG_ANALYTICS_WORKSPACE_ID", format!("'{id}' is not a workspace GUID")))?;
                let endpoint = r.text("LOG_ANALYTICS_ENDPOINT")?.unwrap_or_else(|| crate::azure::logs_query::DEFAULT_ENDPOINT.into());
                let endpoint = https_or_loopback("LOG_ANALYTICS_ENDPOINT", &endpoint)?;
                QueryBackend::Azure { endpoint: endpoint.trim_end_matches('/').to_string(), workspace_id: id }
            }
        };
        let workspace_resource_id = match r.text("SENTINEL_WORKSPACE_RESOURCE_ID")? {
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
                    return Err(bad(
                        "SENTINEL_WORKSPACE_RESOURCE_ID",
                        "must be /subscriptions/…/resourceGroups/…/providers/Microsoft.OperationalInsights/workspaces/…",
                    ));
                }
                Some(format!("/{}", id.trim_matches('/')))
            }
        };
        let mode = match r.text("ENRICH_MODE")? {
            None => crate::enrich::Mode::Comment,
            Some(m) => crate::enrich::Mode::parse(&m).ok_or_else(|| bad("ENRICH_MODE", format!("'{m}' is not observe, comment or act")))?,
        };
        let threshold = match r.text("ENRICH_ACT_THRESHOLD")? {
            None => 0.8,
            Some(t) => t
                .parse::<f64>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| bad("ENRICH_ACT_THRESHOLD", format!("'{t}' is not a number in 0..1")))?,
        };
        let openai = match (r.text("AZURE_OPENAI_ENDPOINT")?, r.text("AZURE_OPENAI_DEPLOYMENT")?) {
            (None, None) => None,
            (Some(e), Some(d)) => {
                use crate::azure::openai::ModelKind;
                let kind = match r.text("AZURE_OPENAI_MODEL_KIND")? {
                    None => ModelKind::Chat,
                    Some(k) => ModelKind::parse(&k).ok_or_else(|| bad("AZURE_OPENAI_MODEL_KIND", format!("'{k}' is not chat or reasoning")))?,
                };
                let max_output_tokens = match r.text("AZURE_OPENAI_MAX_OUTPUT_TOKENS")? {
                    None => kind.default_max_output_tokens(),
                    Some(n) => n
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (16..=100_000).contains(n))
                        .ok_or_else(|| bad("AZURE_OPENAI_MAX_OUTPUT_TOKENS", format!("'{n}' is not a whole number in 16..100000")))?,
                };
                let reasoning_effort = match r.text("AZURE_OPENAI_REASONING_EFFORT")? {
                    None => None,
                    Some(_) if kind == ModelKind::Chat => {
                        return Err(bad("AZURE_OPENAI_REASONING_EFFORT", "is set, but AZURE_OPENAI_MODEL_KIND is chat, whose models refuse it"))
                    }
                    Some(e) if ["minimal", "low", "medium", "high"].contains(&e.as_str()) => Some(e),
                    Some(e) => return Err(bad("AZURE_OPENAI_REASONING_EFFORT", format!("'{e}' is not minimal, low, medium or high"))),
                };
                Some(OpenAiSetting {
                    endpoint: https_or_loopback("AZURE_OPENAI_ENDPOINT", &e)?,
                    deployment: d,
                    api_version: r.text("AZURE_OPENAI_API_VERSION")?.unwrap_or_else(|| "2024-10-21".into()),
                    kind,
                    max_output_tokens,
                    reasoning_effort,
                })
            }
            (Some(_), None) => return Err(bad("AZURE_OPENAI_DEPLOYMENT", "required with AZURE_OPENAI_ENDPOINT")),
            (None, Some(_)) => return Err(bad("AZURE_OPENAI_ENDPOINT", "required with AZURE_OPENAI_DEPLOYMENT")),
        };
        // Functions answers an HTTP trigger within 230 s at most; vendors usually give up far sooner. A spill
        // redelivery attempt is bounded by the same deadline.
        let deadline = Duration::from_secs(r.number("INGEST_DEADLINE_SECS")?);
        let enrich = EnrichConfig {
            settings: crate::enrich::EnrichSettings {
                mode,
                lookaround: Duration::from_secs(r.number("ENRICH_LOOKAROUND_HOURS")? * 3600),
                baseline_days: r.number("ENRICH_BASELINE_DAYS")? as i64,
                query_timeout: Duration::from_secs(r.number("ENRICH_QUERY_TIMEOUT_SECS")?),
                comment_budget: r.number("ENRICH_COMMENT_MAX_CHARS")? as usize,
                act_threshold: threshold,
            },
            workspace_resource_id,
            arm_endpoint: https_or_loopback("ARM_ENDPOINT", &r.text("ARM_ENDPOINT")?.unwrap_or_else(|| crate::azure::sentinel::DEFAULT_ARM_ENDPOINT.into()))?,
            openai,
            max_concurrent: r.number("ENRICH_MAX_CONCURRENT")? as usize,
            max_queued: r.number("ENRICH_MAX_QUEUED")? as usize,
            sync_wait: Duration::from_secs(r.number("ENRICH_SYNC_WAIT_SECS")?),
            caller: EnrichCaller::Anyone,
        };
        let sources_files = r
            .text("WEBHOOK_SOURCES_FILE")?
            .map(|v| v.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect())
            .unwrap_or_default();
        let source_secrets = r.per_source("SECRETS");
        let under_functions_host = port.is_some() || r.text("FUNCTIONS_WORKER_RUNTIME")?.is_some();
        let mut enrich = enrich;
        enrich.caller = match r.text("ENRICH_KEY")? {
            Some(v) => {
                let mode = crate::mapping::AuthMode::Header { name: ENRICH_KEY_HEADER.into() };
                EnrichCaller::Key(crate::mapping::auth::Secrets::parse(&v, &mode).map_err(|e| bad("ENRICH_KEY", e.to_string()))?)
            }
            None if under_functions_host => EnrichCaller::Nobody,
            None => EnrichCaller::Anyone,
        };
        // Settings the chosen backend would ignore without a word are refused.
        if backend == Backend::Local {
            for ignored in ["LOGS_INGESTION_SCOPE", "LOG_ANALYTICS_WORKSPACE_ID", "LOG_ANALYTICS_ENDPOINT", "SENTINEL_WORKSPACE_RESOURCE_ID", "ARM_ENDPOINT"] {
                if r.text(ignored)?.is_some() {
                    return Err(bad(
                        ignored,
                        "is set, but rows and queries go to the local workspace (LOGS_INGESTION_ENDPOINT is unset or local), which would ignore it",
                    ));
                }
            }
        }
        if matches!(query, QueryBackend::Local) && r.text("LOG_ANALYTICS_ENDPOINT")?.is_some() {
            return Err(bad("LOG_ANALYTICS_ENDPOINT", "is set without LOG_ANALYTICS_WORKSPACE_ID, which would ignore it"));
        }
        if enrich.workspace_resource_id.is_none() && r.text("ARM_ENDPOINT")?.is_some() {
            return Err(bad("ARM_ENDPOINT", "is set without SENTINEL_WORKSPACE_RESOURCE_ID, which would ignore it"));
        }
        for ignored in ["AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_MODEL_KIND", "AZURE_OPENAI_MAX_OUTPUT_TOKENS", "AZURE_OPENAI_REASONING_EFFORT"] {
            if enrich.openai.is_none() && r.text(ignored)?.is_some() {
                return Err(bad(ignored, "is set without AZURE_OPENAI_ENDPOINT, which would ignore it"));
            }
        }
        let data_dir = PathBuf::from(r.text("SENTINEL_BRIDGE_DATA_DIR")?.unwrap_or_else(|| ".sentinel-bridge".into()));
        // The function's storage account, as the Functions host itself is told about it.
        let storage = match (r.text("AzureWebJobsStorage")?, r.text("AzureWebJobsStorage__queueServiceUri")?, r.text("AzureWebJobsStorage__accountName")?) {
            (Some(cs), _, _) => Some(StorageSetting::ConnectionString(cs)),
            (None, Some(q), _) => {
                let q = https_or_loopback("AzureWebJobsStorage__queueServiceUri", &q)?;
                let b = match r.text("AzureWebJobsStorage__blobServiceUri")? {
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
        let queue = r.text("SPILL_QUEUE")?.unwrap_or_else(|| "sentinel-bridge-spill".into());
        let container = r.text("SPILL_CONTAINER")?.unwrap_or_else(|| "sentinel-bridge-spill".into());
        let name_ok = |n: &str| n.len() >= 3 && n.len() <= 63 && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        // A queue name is at most 63 characters (Storage's naming rules), and the host names the poison queue
        // `<queue>-poison`: 7 more.
        if !name_ok(&queue) || queue.len() > 63 - "-poison".len() {
            return Err(bad("SPILL_QUEUE", "3-56 lowercase letters, digits or '-' (the host adds '-poison', and queue names stop at 63)"));
        }
        if !name_ok(&container) {
            return Err(bad("SPILL_CONTAINER", "3-63 lowercase letters, digits or '-'"));
        }
        let azure_queue = |storage: Option<StorageSetting>| -> Result<SpillSetting, SettingError> {
            let storage = storage.ok_or_else(|| {
                bad("SPILL", "azure-queue needs AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__queueServiceUri / __accountName")
            })?;
            let key = r
                .text("SPILL_SIGNING_KEY")?
                .ok_or_else(|| bad("SPILL_SIGNING_KEY", "is required with SPILL=azure-queue: every spill message is sealed with it"))?;
            let seal = crate::delivery::seal::SealKey::parse(&key).map_err(|e| bad("SPILL_SIGNING_KEY", e.to_string()))?;
            Ok(SpillSetting::AzureQueue { storage, queue: queue.clone(), container: container.clone(), seal })
        };
        let host_storage = storage.clone();
        let spill = match r.text("SPILL")?.as_deref() {
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
        if !matches!(spill, SpillSetting::Dir(_)) {
            for ignored in ["SPILL_MAX_ATTEMPTS", "SPILL_MAX_BYTES"] {
                if r.text(ignored)?.is_some() {
                    return Err(bad(
                        ignored,
                        "is set, but the spill is not a directory (in azure-queue the host's maxDequeueCount bounds attempts), which would ignore it",
                    ));
                }
            }
        }
        let sekoia_url = match r.text("SEKOIA_INTAKE_URL")? {
            None => None,
            Some(u) => Some(https_or_loopback("SEKOIA_INTAKE_URL", &u)?),
        };
        let mut source_settings = r.per_source("DESTINATIONS");
        source_settings.extend(r.per_source("SEKOIA_KEY"));
        let log_filter = r.text("RUST_LOG")?.unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter).map_err(|e| bad("RUST_LOG", format!("'{log_filter}' is not a log filter: {e}")))?;
        let client_id = r.text("AZURE_CLIENT_ID")?;
        let identity = if r.text("IDENTITY_ENDPOINT")?.is_some() || r.text("MSI_ENDPOINT")?.is_some() {
            IdentitySetting::ManagedIdentity { client_id }
        } else {
            match (r.text("AZURE_TENANT_ID")?, client_id, r.text("AZURE_CLIENT_SECRET")?) {
                (Some(tenant_id), Some(client_id), Some(secret)) => IdentitySetting::ClientSecret { tenant_id, client_id, secret },
                (None, _, None) => IdentitySetting::DeveloperTools,
                _ => return Err(bad("AZURE_CLIENT_SECRET", "a client-secret credential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET")),
            }
        };
        let log_format = match r.text("LOG_FORMAT")?.as_deref() {
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
            storage: host_storage,
            spill_retry: crate::delivery::spill::RetrySchedule {
                base: Duration::from_secs(r.number("SPILL_RETRY_BASE_SECS")?),
                max: Duration::from_secs(r.number("SPILL_RETRY_MAX_SECS")?),
            },
            spill_limits: crate::delivery::spill::SpillLimits {
                max_attempts: r.number("SPILL_MAX_ATTEMPTS")? as u32,
                max_bytes: r.number("SPILL_MAX_BYTES")?,
                // The sources are known once the mappings are read (`Bridge::build`).
                sources: 1,
                attempt: deadline,
            },
            sekoia_url,
            sekoia_key: r.text("SEKOIA_INTAKE_KEY")?,
            sekoia_max_call_bytes: r.number("SEKOIA_MAX_CALL_BYTES")? as usize,
            source_settings,
            sources_files,
            source_secrets,
            max_body_bytes: r.number("WEBHOOK_MAX_BODY_BYTES")? as usize,
            max_events: r.number("WEBHOOK_MAX_EVENTS")? as usize,
            http_header_timeout: Duration::from_secs(r.number("HTTP_HEADER_TIMEOUT_SECS")?),
            http_body_timeout: Duration::from_secs(r.number("HTTP_BODY_TIMEOUT_SECS")?),
            deadline,
            linger: Duration::from_millis(r.number("BATCH_LINGER_MS")?),
            max_in_flight: r.number("INGEST_MAX_IN_FLIGHT")? as usize,
            max_call_bytes: r.number("INGEST_MAX_CALL_BYTES")? as usize,
            log_format,
            log_filter,
            under_functions_host,
            identity,
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
        let host = from(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "1234"), ("LOGS_INGESTION_ENDPOINT", "local")]).unwrap();
        assert_eq!(host.spill, SpillSetting::Off);
        let storage = [("FUNCTIONS_CUSTOMHANDLER_PORT", "1234"), ("LOGS_INGESTION_ENDPOINT", "local"), ("AzureWebJobsStorage__accountName", "sbst")];
        assert_eq!(from(&storage).unwrap_err().setting, "SPILL_SIGNING_KEY", "the queue spill seals what it writes");
        let host = from(&[&storage[..], &[("SPILL_SIGNING_KEY", "0123456789abcdef0123456789abcdef")]].concat()).unwrap();
        // Under the host, nobody may call /api/enrich until ENRICH_KEY is set; locally anyone may.
        assert!(matches!(host.enrich.caller, EnrichCaller::Nobody));
        assert!(matches!(s.enrich.caller, EnrichCaller::Anyone));
        assert!(
            matches!(host.spill, SpillSetting::AzureQueue { storage: StorageSetting::Identity { ref queue_url, .. }, .. } if queue_url == "https://sbst.queue.core.windows.net")
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("LOGS_INGESTION_ENDPOINT", "https://x.ingest.monitor.azure.com")], "DCR_IMMUTABLE_ID"),
            (&[("LOGS_INGESTION_ENDPOINT", "http://example.com"), ("DCR_IMMUTABLE_ID", "dcr-1")], "LOGS_INGESTION_ENDPOINT"),
            (&[("LOGS_INGESTION_ENDPOINT", "https://x"), ("DCR_IMMUTABLE_ID", "abc")], "DCR_IMMUTABLE_ID"),
            (&[("DCR_IMMUTABLE_ID", "dcr-1")], "LOGS_INGESTION_ENDPOINT"),
            (&[("LOGS_INGESTION_ENDPOINT", "https://x"), ("DCR_IMMUTABLE_ID", "dcr-1"), ("DCR_STREAM_RULES", "Custom-A_CL")], "DCR_STREAM_RULES"),
            (&[("LOGS_INGESTION_ENDPOINT", "https://x"), ("DCR_IMMUTABLE_ID", "dcr-1"), ("DCR_STREAM_RULES", "A_CL=dcr-2")], "DCR_STREAM_RULES"),
            (
                &[("LOGS_INGESTION_ENDPOINT", "https://x"), ("DCR_IMMUTABLE_ID", "dcr-1"), ("DCR_STREAM_RULES", "Custom-A_CL=dcr-2,Custom-A_CL=dcr-3")],
                "DCR_STREAM_RULES",
            ),
            (&[("DCR_STREAM_RULES", "Custom-A_CL=dcr-2")], "LOGS_INGESTION_ENDPOINT"),
            (
                &[
                    ("LOGS_INGESTION_ENDPOINT", "https://x"),
                    ("DCR_IMMUTABLE_ID", "dcr-1"),
                    ("DCR_RESOURCE_ID", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/dataCollectionRules/../x"),
                ],
                "DCR_RESOURCE_ID",
            ),
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
            (
                &[("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"), ("AZURE_OPENAI_DEPLOYMENT", "o3"), ("AZURE_OPENAI_MODEL_KIND", "o3")],
                "AZURE_OPENAI_MODEL_KIND",
            ),
            (
                &[("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"), ("AZURE_OPENAI_DEPLOYMENT", "gpt-4o"), ("AZURE_OPENAI_REASONING_EFFORT", "low")],
                "AZURE_OPENAI_REASONING_EFFORT",
            ),
            (
                &[("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"), ("AZURE_OPENAI_DEPLOYMENT", "o3"), ("AZURE_OPENAI_MAX_OUTPUT_TOKENS", "lots")],
                "AZURE_OPENAI_MAX_OUTPUT_TOKENS",
            ),
            (&[("AZURE_OPENAI_MODEL_KIND", "reasoning")], "AZURE_OPENAI_MODEL_KIND"),
            (&[("ARM_ENDPOINT", "http://management.example.com")], "ARM_ENDPOINT"),
            (&[("SPILL", "tape")], "SPILL"),
            (&[("SPILL", "azure-queue")], "SPILL"),
            (&[("SPILL", "azure-queue"), ("AzureWebJobsStorage__accountName", "sbst"), ("SPILL_SIGNING_KEY", "too-short")], "SPILL_SIGNING_KEY"),
            (&[("ENRICH_KEY", "short")], "ENRICH_KEY"),
            (&[("ENRICH_KEY", "@Microsoft.KeyVault(VaultName=kv;SecretName=enrich-key)")], "ENRICH_KEY"),
            (&[("SPILL_QUEUE", "Bad_Name")], "SPILL_QUEUE"),
            (&[("AzureWebJobsStorage__queueServiceUri", "https://a.queue.core.windows.net")], "AzureWebJobsStorage__blobServiceUri"),
            (&[("SEKOIA_INTAKE_URL", "http://intake.example.com")], "SEKOIA_INTAKE_URL"),
            (
                &[("LOG_ANALYTICS_WORKSPACE_ID", "63613592-b6f7-4c3d-a390-22ba13102111"), ("LOG_ANALYTICS_ENDPOINT", "http://example.com")],
                "LOG_ANALYTICS_ENDPOINT",
            ),
        ];
        for (vars, setting) in cases {
            assert_eq!(from(vars).unwrap_err().setting, *setting, "{vars:?}");
        }
    }

    #[test]
    fn no_silent_fallback_to_the_local_workspace() {
        // Under the host or beside a managed identity: only when asked for by name.
        for hosted in [("FUNCTIONS_CUSTOMHANDLER_PORT", "1234"), ("FUNCTIONS_WORKER_RUNTIME", "custom"), ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi")] {
            let e = from(&[hosted]).unwrap_err();
            assert_eq!(e.setting, "LOGS_INGESTION_ENDPOINT", "{hosted:?}");
            assert!(e.message.contains("LOGS_INGESTION_ENDPOINT=local"), "{e}");
            assert_eq!(from(&[hosted, ("LOGS_INGESTION_ENDPOINT", "local")]).unwrap().backend, Backend::Local);
        }
        // A misspelt endpoint setting is refused by name (not ignored), and settings the backend would ignore too.
        assert_eq!(from(&[("LOGS_INGESTION_ENDPIONT", "https://x")]).unwrap_err().setting, "LOGS_INGESTION_ENDPIONT");
        let ws = ("LOG_ANALYTICS_WORKSPACE_ID", "63613592-b6f7-4c3d-a390-22ba13102111");
        let sentinel = ("SENTINEL_WORKSPACE_RESOURCE_ID", "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w");
        for ignored in [ws, sentinel, ("ARM_ENDPOINT", "https://management.azure.com"), ("LOGS_INGESTION_SCOPE", "https://monitor.azure.us/.default")] {
            assert_eq!(from(&[ignored]).unwrap_err().setting, ignored.0);
        }
        let azure = [("LOGS_INGESTION_ENDPOINT", "https://dce.example.ingest.monitor.azure.com"), ("DCR_IMMUTABLE_ID", "dcr-0123")];
        assert_eq!(
            from(&[azure[0], azure[1], ("LOG_ANALYTICS_ENDPOINT", "https://api.loganalytics.azure.com")]).unwrap_err().setting,
            "LOG_ANALYTICS_ENDPOINT"
        );
        assert_eq!(from(&[azure[0], azure[1], ("ARM_ENDPOINT", "https://management.azure.com")]).unwrap_err().setting, "ARM_ENDPOINT");
        assert_eq!(from(&[("AZURE_OPENAI_API_VERSION", "2025-01-01")]).unwrap_err().setting, "AZURE_OPENAI_API_VERSION");
        assert!(from(&[azure[0], azure[1], ws, sentinel, ("ARM_ENDPOINT", "https://management.azure.com")]).is_ok());
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
