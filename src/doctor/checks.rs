//! The read-only checks, in the order a deployment depends on them: settings, tokens, the data collection
//! rule, the right to ingest, the workspace's tables, Sentinel, the spill, Sekoia. A check that cannot run
//! because an earlier one failed says so as a warning, so each broken thing fails exactly one line.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Deployment;
use super::{Check, Options, Report};
use crate::azure::http::{AzureRules, Call, CallError, Driver, RetryPolicy};
use crate::azure::identity::{TokenSource, MONITOR_SCOPE};
use crate::azure::logs_ingestion::IngestError;
use crate::azure::logs_query::{QueryError, QUERY_SCOPE};
use crate::azure::sentinel::{SentinelError, ARM_SCOPE};
use crate::delivery::spill::{SpillBackend, DEAD_LETTER_PREFIX};
use crate::enrich::tables::written_tables;
use crate::enrich::EnrichmentState;
use crate::settings::{Backend, SpillSetting, StorageSetting};

/// How long one probe may take.
const PROBE: Duration = Duration::from_secs(15);

/// The ARM api-version of data collection rules (the one infra/ deploys with).
const DCR_API_VERSION: &str = "2024-03-11";

pub async fn run(state: &Deployment<'_>, options: Options) -> Report {
    let mut out = Vec::new();
    settings(state, &mut out);
    let tokens = tokens(state, &mut out).await;
    let wrong_rule = rule(state, &tokens, &mut out).await;
    let probes = ingestion(state, &tokens, wrong_rule, &mut out).await;
    tables(state, &tokens, &mut out).await;
    sentinel(state, &tokens, &mut out).await;
    spill(state, &mut out).await;
    sekoia(state, &mut out).await;
    if options.canary {
        super::canary::run(state, &tokens, options.wait, probes, &mut out).await;
    }
    Report { at: crate::model::time::format_datetime(time::OffsetDateTime::now_utc()), backend: state.backend.clone(), checks: out }
}

fn settings(state: &Deployment<'_>, out: &mut Vec<Check>) {
    let s = &state.settings;
    let enrich = match &state.enricher {
        EnrichmentState::Ready(_) => "enrichment on".to_string(),
        EnrichmentState::Off(why) => format!("enrichment off ({why})"),
    };
    let sources: Vec<&str> = state.catalog.sources().map(|x| x.name.as_str()).collect();
    out.push(Check::ok("settings", format!("parsed; {}; sources {}; {enrich}; replay guard {}", state.backend, sources.join(", "), state.replay.store_name())));
    for src in state.catalog.sources() {
        if !state.verifiers[&src.name].accepts_requests() {
            let setting = crate::settings::secrets_setting(&src.name);
            if matches!(s.backend, Backend::Local) && !s.under_functions_host {
                out.push(Check::ok(format!("source:{}", src.name), format!("no secret, so it refuses its events (local: set {setting} to take them)")));
                continue;
            }
            out.push(Check::warn(
                format!("source:{}", src.name),
                "has no secret: it refuses every request",
                format!("set {setting} (a Key Vault reference in Azure), or remove the source"),
            ));
        }
    }
    if matches!(s.backend, Backend::Local) && s.under_functions_host {
        out.push(Check::warn(
            "backend",
            "the local workspace under the Functions host: events stay on this instance's disk",
            "set LOGS_INGESTION_ENDPOINT and DCR_IMMUTABLE_ID (infra/ outputs them)",
        ));
    }
}

/// The audiences the configuration needs, by short name.
fn audiences(state: &Deployment<'_>) -> Vec<(&'static str, String)> {
    let s = &state.settings;
    let mut a = vec![(
        "monitor",
        match &s.backend {
            Backend::Azure { scope, .. } => scope.clone(),
            Backend::Local => MONITOR_SCOPE.to_string(),
        },
    )];
    let enriching = matches!(state.enricher, EnrichmentState::Ready(_));
    if enriching {
        a.push(("log-analytics", QUERY_SCOPE.to_string()));
    }
    if enriching || !state.dcr_resource_ids.is_empty() {
        a.push(("arm", ARM_SCOPE.to_string()));
    }
    let identity_storage = |st: &StorageSetting| matches!(st, StorageSetting::Identity { .. });
    let storage = matches!(&s.spill, SpillSetting::AzureQueue { storage, .. } if identity_storage(storage)) || s.storage.as_ref().is_some_and(identity_storage);
    if storage {
        a.push(("storage", crate::azure::storage::STORAGE_SCOPE.to_string()));
    }
    if s.enrich.openai.is_some() {
        a.push(("cognitive-services", crate::azure::openai::OPENAI_SCOPE.to_string()));
    }
    a
}

/// The audiences a token could be had for, by short name.
pub(super) struct Tokens {
    pub ok: HashSet<&'static str>,
}

impl Tokens {
    fn skip(&self, audience: &str, check: &str, out: &mut Vec<Check>) -> bool {
        if self.ok.contains(audience) {
            return false;
        }
        out.push(Check::warn(check, format!("not checked: no token for {audience} (see token:{audience})"), "fix the token first"));
        true
    }
}

async fn tokens(state: &Deployment<'_>, out: &mut Vec<Check>) -> Tokens {
    let kind = state.credential.kind;
    let fix = match kind {
        "managed identity" => "check the Function App's identity (Identity blade) and that AZURE_CLIENT_ID names its client id",
        "client secret" => "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (Entra ID > App registrations > Certificates & secrets)",
        "developer tools (az / azd login)" => "run `az login` (or `azd auth login`) as a user of this tenant",
        _ => "check the identity endpoint the settings point at",
    };
    let mut ok = HashSet::new();
    for (name, scope) in audiences(state) {
        let source = TokenSource::new(state.credential.clone(), scope.clone());
        let check = format!("token:{name}");
        match tokio::time::timeout(PROBE, source.token()).await {
            Ok(Ok(_)) => {
                ok.insert(name);
                out.push(Check::ok(check, format!("a token for {scope} from the {kind}")));
            }
            Ok(Err(e)) => out.push(Check::fail(check, format!("no token for {scope} from the {kind}: {}", short(&e.to_string())), fix)),
            Err(_) => out.push(Check::fail(check, format!("no token for {scope} within {}s from the {kind}", PROBE.as_secs()), fix)),
        }
    }
    Tokens { ok }
}

fn short(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 240 {
        format!("{}…", s.chars().take(240).collect::<String>())
    } else {
        s
    }
}

fn expected_rule(state: &Deployment<'_>) -> String {
    match &state.settings.backend {
        Backend::Azure { dcr_immutable_id, .. } => dcr_immutable_id.clone(),
        Backend::Local => "dcr-local".into(),
    }
}

fn stream_rules(state: &Deployment<'_>) -> HashMap<String, String> {
    match &state.settings.backend {
        Backend::Azure { stream_rules, .. } => stream_rules.iter().cloned().collect(),
        Backend::Local => HashMap::new(),
    }
}

/// An ARM GET with the ARM token: `(status, body)`, or why it could not be asked.
pub(super) async fn arm_get(state: &Deployment<'_>, path_and_query: &str) -> Result<(u16, Value), String> {
    let tokens = TokenSource::new(state.credential.clone(), ARM_SCOPE);
    let url = format!("{}{path_and_query}", state.arm_endpoint.trim_end_matches('/'));
    let build = |http: &reqwest::Client| http.get(&url);
    let driver = Driver::new(RetryPolicy::default());
    let call = Call { build: &build, auth: &tokens, logic: &AzureRules, deadline: Instant::now() + PROBE, retries: None, what: "doctor arm" };
    match driver.send(call).await {
        Ok(x) => Ok((x.status.as_u16(), serde_json::from_str(&x.text()).unwrap_or(Value::Null))),
        Err(CallError::Refused(e)) => Ok((e.status, serde_json::json!({"error": {"code": e.code, "message": e.message}}))),
        Err(e) => Err(e.to_string()),
    }
}

/// Every rule the settings send to, read over ARM at the ids in `DCR_RESOURCE_ID`: the immutable ids the
/// settings name (`dcr`), each stream declared as the mappings write it (`dcr-streams`), a data flow taking
/// each stream to its own table in the workspace the enrichment and the rules read (`dcr-flows`), and each rule
/// bound to the endpoint the bridge calls (`dcr-endpoint`). Whether `DCR_IMMUTABLE_ID` names no rule read.
async fn rule(state: &Deployment<'_>, tokens: &Tokens, out: &mut Vec<Check>) -> bool {
    if state.dcr_resource_ids.is_empty() {
        out.push(Check::warn(
            "dcr",
            "DCR_RESOURCE_ID is not set: the deployed rules are not compared with the mappings",
            "set DCR_RESOURCE_ID to the rules' ARM ids, comma-separated (infra/ sets it)",
        ));
        return false;
    }
    if tokens.skip("arm", "dcr", out) {
        return false;
    }
    // Each rule read, by its immutable id (lower-cased).
    let mut read: Vec<(String, String, Value)> = Vec::new();
    let mut unread = Vec::new();
    for id in state.dcr_resource_ids {
        match arm_get(state, &format!("{id}?api-version={DCR_API_VERSION}")).await {
            Ok((200, body)) => {
                let immutable = body["properties"]["immutableId"].as_str().unwrap_or_default().to_ascii_lowercase();
                read.push((id.clone(), immutable, body));
            }
            Ok((403, _)) => unread.push(Check::warn(
                "dcr",
                format!("the identity may not read {id} (403)"),
                "grant Monitoring Reader on the data collection rule to compare its declarations (infra/ does)",
            )),
            Ok((404, _)) => unread.push(Check::fail(
                "dcr",
                format!("no data collection rule at {id} (404)"),
                "set DCR_RESOURCE_ID to the rules' ARM ids (infra/ sets them), or deploy infra/",
            )),
            Ok((status, body)) => unread.push(Check::fail(
                "dcr",
                format!("ARM answered {status} for {id}: {}", short(body["error"]["message"].as_str().unwrap_or_default())),
                "see the Activity log of the rule",
            )),
            Err(e) => unread.push(Check::fail(
                "dcr",
                format!("ARM did not answer for {id}: {}", short(&e)),
                "check ARM_ENDPOINT and the network path to Azure Resource Manager",
            )),
        }
    }
    let all_read = unread.is_empty();
    out.extend(unread);
    if read.is_empty() {
        return false;
    }
    let by_immutable: HashMap<&str, &(String, String, Value)> = read.iter().map(|r| (r.1.as_str(), r)).collect();
    let expected = expected_rule(state).to_ascii_lowercase();
    let others = stream_rules(state);
    let configured: HashSet<String> = others.values().map(|v| v.to_ascii_lowercase()).chain([expected.clone()]).collect();

    // The immutable ids: DCR_IMMUTABLE_ID is a rule read, and every rule read is one the settings send to.
    let strangers: Vec<&(String, String, Value)> = read.iter().filter(|r| !configured.contains(&r.1)).collect();
    let wrong = all_read && !by_immutable.contains_key(expected.as_str());
    if wrong {
        let fix = match strangers.first() {
            Some((_, deployed, _)) => format!("set DCR_IMMUTABLE_ID={deployed} (the rule's JSON view in the portal shows it)"),
            None => "add the rule's ARM id to DCR_RESOURCE_ID".to_string(),
        };
        let deployed: Vec<&str> = read.iter().map(|r| r.1.as_str()).collect();
        out.push(Check::fail(
            "dcr",
            format!("DCR_IMMUTABLE_ID is {expected}, but the rules at DCR_RESOURCE_ID have immutable ids {}", deployed.join(", ")),
            fix,
        ));
    } else if let Some((id, deployed, _)) = strangers.first().filter(|_| all_read) {
        out.push(Check::warn(
            "dcr",
            format!("{id} (immutable id {deployed}) is in DCR_RESOURCE_ID, but no setting sends to it"),
            "remove it from DCR_RESOURCE_ID, or route its streams to it in DCR_STREAM_RULES",
        ));
    } else if all_read {
        let names: Vec<String> = read.iter().map(|(id, imm, _)| format!("{} ({imm})", id.rsplit('/').next().unwrap_or(id))).collect();
        out.push(Check::ok("dcr", format!("{} rule(s) readable: {}", read.len(), names.join(", "))));
    }

    // Each written stream on the rule the settings send it to.
    let workspace = destination_workspace(state);
    let (mut streams, mut flows, mut unchecked) = (Vec::new(), Vec::new(), Vec::new());
    let mut compared = 0;
    let mut used: HashSet<&str> = HashSet::new();
    for t in written_tables(state.catalog) {
        let stream = t.stream_name();
        let rule_id = others.get(&stream).map(|r| r.to_ascii_lowercase()).unwrap_or_else(|| expected.clone());
        let Some((_, immutable, body)) = by_immutable.get(rule_id.as_str()) else {
            unchecked.push(format!("{stream} ({rule_id})"));
            continue;
        };
        used.insert(immutable.as_str());
        compared += 1;
        let props = &body["properties"];
        match props["streamDeclarations"].get(&stream).and_then(|d| d["columns"].as_array()) {
            None => streams.push(format!("{stream} is not declared by {rule_id}")),
            Some(cols) => {
                let declared: HashMap<&str, &str> = cols.iter().filter_map(|c| Some((c["name"].as_str()?, c["type"].as_str()?))).collect();
                for c in &t.columns {
                    match declared.get(c.name.as_str()) {
                        None => streams.push(format!("{stream}.{} is not declared (Azure drops it)", c.name)),
                        Some(ty) if !ty.eq_ignore_ascii_case(c.kind.as_str()) => {
                            streams.push(format!("{stream}.{} is declared {ty}, the mapping writes {}", c.name, c.kind.as_str()))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        flows.extend(flow_problems(props, &stream, &rule_id, workspace.as_deref()));
    }
    out.push(verdict(
        "dcr-streams",
        &streams,
        || format!("{compared} streams declared as the mappings write them"),
        "redeploy infra/ after `sentinel-bridge schema --out infra/schema.json`, or fix the mapping to match the rule",
    ));
    let to = workspace.as_deref().map(|w| format!(" in {}", w.rsplit('/').next().unwrap_or(w))).unwrap_or_default();
    out.push(verdict(
        "dcr-flows",
        &flows,
        || format!("{compared} streams flow to their own tables{to}"),
        "redeploy infra/ (each stream has a data flow to its own table, `outputStream` Custom-<Table>, into the Sentinel workspace)",
    ));
    if !unchecked.is_empty() && all_read {
        out.push(Check::warn(
            "dcr-unchecked",
            format!("no rule read for {}", first_three(&unchecked)),
            "add every rule's ARM id to DCR_RESOURCE_ID (infra/ sets them all)",
        ));
    }
    bindings(state, &read, &used, out).await;
    wrong
}

/// What is wrong with how `stream`'s rows leave its rule: no data flow takes them (Azure answers 204 and keeps
/// none), they flow to another table, or to a workspace other than `workspace`.
fn flow_problems(props: &Value, stream: &str, rule: &str, workspace: Option<&str>) -> Vec<String> {
    let flows = props["dataFlows"].as_array().map(Vec::as_slice).unwrap_or_default();
    let Some(flow) = flows.iter().find(|f| f["streams"].as_array().is_some_and(|s| s.iter().any(|x| x.as_str() == Some(stream)))) else {
        return vec![format!("{stream} has no data flow in {rule}: Azure answers 204 and keeps nothing")];
    };
    let mut problems = Vec::new();
    // Without `outputStream` the rows go to the input stream's own table (DCR structure: dataFlows).
    if let Some(output) = flow["outputStream"].as_str().filter(|o| !o.eq_ignore_ascii_case(stream)) {
        problems.push(format!("{stream} flows to {output}, not its own table"));
    }
    let Some(workspace) = workspace else { return problems };
    let destinations = props["destinations"]["logAnalytics"].as_array().map(Vec::as_slice).unwrap_or_default();
    let names: Vec<&str> = flow["destinations"].as_array().map(|d| d.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let targets: Vec<&str> =
        destinations.iter().filter(|d| d["name"].as_str().is_some_and(|n| names.contains(&n))).filter_map(|d| d["workspaceResourceId"].as_str()).collect();
    if !targets.iter().any(|t| t.trim_end_matches('/').eq_ignore_ascii_case(workspace.trim_end_matches('/'))) {
        let to = if targets.is_empty() { "no Log Analytics workspace".to_string() } else { targets.join(", ") };
        problems.push(format!("{stream} flows to {to}, not the Sentinel workspace {workspace}"));
    }
    problems
}

/// The workspace the rows must reach: the one the enrichment and the analytics rules read.
fn destination_workspace(state: &Deployment<'_>) -> Option<String> {
    match state.enricher {
        EnrichmentState::Ready(e) => Some(e.workspace_resource_id.clone()),
        EnrichmentState::Off(_) => state.settings.enrich.workspace_resource_id.clone(),
    }
}

/// Each rule in use is bound to the endpoint the bridge calls: its own (`endpoints.logsIngestion`, a Direct
/// rule) or its data collection endpoint's (`dataCollectionEndpointId`, read over ARM). Azure refuses a call
/// through an endpoint the rule is not bound to (403, `IsDcrDceBindingValid: False`).
async fn bindings(state: &Deployment<'_>, read: &[(String, String, Value)], used: &HashSet<&str>, out: &mut Vec<Check>) {
    let endpoint = state.ingest.endpoint().trim_end_matches('/').to_ascii_lowercase();
    let same = |e: &str| e.trim_end_matches('/').eq_ignore_ascii_case(&endpoint);
    let mut problems = Vec::new();
    let mut checked = 0;
    for (id, immutable, body) in read.iter().filter(|r| used.contains(r.1.as_str())) {
        let props = &body["properties"];
        if props["endpoints"]["logsIngestion"].as_str().is_some_and(same) {
            checked += 1;
            continue;
        }
        let Some(dce) = props["dataCollectionEndpointId"].as_str().filter(|d| !d.is_empty()) else {
            problems.push(format!("{immutable} is bound to no data collection endpoint, and its own endpoint is not LOGS_INGESTION_ENDPOINT"));
            continue;
        };
        match arm_get(state, &format!("{dce}?api-version={DCR_API_VERSION}")).await {
            Ok((200, d)) => {
                checked += 1;
                let its = d["properties"]["logsIngestion"]["endpoint"].as_str().unwrap_or_default();
                if !same(its) {
                    problems.push(format!(
                        "{immutable} is bound to {}, whose endpoint is {its}, not LOGS_INGESTION_ENDPOINT",
                        dce.rsplit('/').next().unwrap_or(dce)
                    ));
                }
            }
            Ok((status, _)) => problems.push(format!("the endpoint {dce} of {id} could not be read ({status})")),
            Err(e) => problems.push(format!("the endpoint {dce} of {id} could not be read: {}", short(&e))),
        }
    }
    out.push(verdict(
        "dcr-endpoint",
        &problems,
        || format!("{checked} rule(s) bound to {endpoint}"),
        "set LOGS_INGESTION_ENDPOINT to the endpoint the rules are bound to (infra/ outputs it), or bind each rule to it (`dataCollectionEndpointId`)",
    ));
}

/// A check that is ok (saying `ok()`) when nothing was found wrong, else fails with the first problems and `fix`.
fn verdict(check: &str, problems: &[String], ok: impl FnOnce() -> String, fix: &str) -> Check {
    if problems.is_empty() {
        Check::ok(check, ok())
    } else {
        Check::fail(check, first_three(problems), fix)
    }
}

fn first_three(problems: &[String]) -> String {
    let more = if problems.len() > 3 { format!(" (and {} more)", problems.len() - 3) } else { String::new() };
    format!("{}{more}", problems.iter().take(3).cloned().collect::<Vec<_>>().join("; "))
}

/// A record-less call to every stream: 204 proves Monitoring Metrics Publisher on its rule. The calls'
/// `x-ms-client-request-id`s, so DCRLogErrors rows they caused are not taken for the product's.
async fn ingestion(state: &Deployment<'_>, tokens: &Tokens, wrong_rule: bool, out: &mut Vec<Check>) -> Vec<String> {
    if tokens.skip("monitor", "ingestion", out) {
        return Vec::new();
    }
    let tables = written_tables(state.catalog);
    let probes = tables.iter().map(|t| {
        let stream = t.stream_name();
        async move {
            let (request_id, r) = state.ingest.probe(&stream, Instant::now() + PROBE).await;
            (stream, request_id, r)
        }
    });
    let results = futures::future::join_all(probes).await;
    let ours: Vec<String> = results.iter().map(|(_, id, _)| id.clone()).collect();
    let kind = state.credential.kind;
    let failed: Vec<&(String, String, Result<(), IngestError>)> = results.iter().filter(|(_, _, r)| r.is_err()).collect();
    let Some((stream, _, Err(e))) = failed.first() else {
        out.push(Check::ok("ingestion", format!("the {kind} may write to all {} streams (an empty call to each was taken)", results.len())));
        return ours;
    };
    let (status, code, message) = match e {
        IngestError::Refused { status, code, message } => (*status, code.clone(), message.clone()),
        other => (0, other.code(), String::new()),
    };
    let found = format!("{} of {} streams refused; {stream}: {}", failed.len(), results.len(), short(&e.to_string()));
    match (status, code.as_str()) {
        // Azure's 403 names its cause (contract §1): a rule not bound to the endpoint called is not a role.
        (403, _) if message.contains("IsDcrDceBindingValid: False") => out.push(Check::fail(
            "ingestion",
            found,
            "the rule is not bound to LOGS_INGESTION_ENDPOINT: set it to the endpoint the rule names (its dataCollectionEndpointId, which infra/ outputs), or bind the rule to this one",
        )),
        (403, _) => out.push(Check::fail(
            "ingestion",
            found,
            format!("grant Monitoring Metrics Publisher on the data collection rule to the {kind} (a new assignment takes up to 30 minutes)"),
        )),
        (404, _) if wrong_rule => {
            out.push(Check::warn("ingestion", "not checked: DCR_IMMUTABLE_ID names another rule (see dcr)", "fix DCR_IMMUTABLE_ID first"))
        }
        (404, _) => out.push(Check::fail(
            "ingestion",
            found,
            "set DCR_IMMUTABLE_ID to the rule's immutable id, and LOGS_INGESTION_ENDPOINT to its endpoint (infra/ outputs both)",
        )),
        (_, "InvalidStream") => {
            out.push(Check::fail("ingestion", found, "the rule does not declare the stream: redeploy infra/, or name the stream's rule in DCR_STREAM_RULES"))
        }
        (401, _) => {
            out.push(Check::fail("ingestion", found, "the token is for another audience or tenant: check LOGS_INGESTION_SCOPE and the identity's tenant"))
        }
        (400, _) => out.push(Check::fail(
            "ingestion",
            found,
            "Azure refuses the call itself (never a record: contract §1): check the stream, the api-version and the rule; spilled events wait until it is fixed",
        )),
        _ => out.push(Check::fail("ingestion", found, "check LOGS_INGESTION_ENDPOINT and the network path to it")),
    }
    ours
}

/// The Query API's column type name for a schema column type.
fn query_type(t: crate::model::schema::ColumnType) -> &'static str {
    t.ktype().name()
}

/// Each table the bridge writes exists in the workspace with the mapping's columns.
async fn tables(state: &Deployment<'_>, tokens: &Tokens, out: &mut Vec<Check>) {
    let EnrichmentState::Ready(e) = &state.enricher else {
        out.push(Check::warn(
            "tables",
            "not checked: no Query API configured",
            "set LOG_ANALYTICS_WORKSPACE_ID (and SENTINEL_WORKSPACE_RESOURCE_ID) to check the tables and read canaries back",
        ));
        return;
    };
    if tokens.skip("log-analytics", "tables", out) {
        return;
    }
    for t in written_tables(state.catalog) {
        let check = format!("table:{}", t.name);
        // Table names come from the mappings, which hold them to [A-Za-z0-9_]+_CL: nothing to escape.
        match e.query.query(&format!("{} | take 0", t.name), None, PROBE).await {
            Ok(r) => {
                let f = r.primary();
                let have: HashMap<&str, &str> = f.columns.iter().map(|c| (c.name.as_str(), c.ktype.name())).collect();
                let problems: Vec<String> = t
                    .columns
                    .iter()
                    .filter_map(|c| match have.get(c.name.as_str()) {
                        None => Some(format!("no column {}", c.name)),
                        Some(k) if *k != query_type(c.kind) => Some(format!("{} is {k}, the mapping writes {}", c.name, query_type(c.kind))),
                        Some(_) => None,
                    })
                    .collect();
                if problems.is_empty() {
                    out.push(Check::ok(check, format!("exists with the mapping's {} columns", t.columns.len())));
                } else {
                    out.push(Check::fail(check, problems.join("; "), "redeploy infra/ (tables.bicep) after `sentinel-bridge schema --out infra/schema.json`"));
                }
            }
            Err(QueryError::Refused { status: 403, .. }) => {
                out.push(Check::fail(check, "the Query API refused the identity (403)", "grant Log Analytics Reader on the workspace to the identity"));
            }
            Err(QueryError::Refused { status: 400, message, .. }) => {
                out.push(Check::fail(
                    check,
                    format!("the workspace has no such table: {}", short(&message)),
                    "deploy infra/ (tables.bicep creates every table the mappings write)",
                ));
            }
            Err(other) => out.push(Check::fail(check, short(&other.to_string()), "check LOG_ANALYTICS_ENDPOINT and LOG_ANALYTICS_WORKSPACE_ID")),
        }
    }
}

/// Sentinel answers, the identity may comment, and (in Azure) an automation rule runs a playbook.
async fn sentinel(state: &Deployment<'_>, tokens: &Tokens, out: &mut Vec<Check>) {
    let EnrichmentState::Ready(e) = &state.enricher else {
        out.push(Check::warn(
            "sentinel",
            "not checked: enrichment is off",
            "set SENTINEL_WORKSPACE_RESOURCE_ID and LOG_ANALYTICS_WORKSPACE_ID to enrich incidents",
        ));
        return;
    };
    if tokens.skip("arm", "sentinel", out) {
        return;
    }
    let responder = "grant Microsoft Sentinel Responder on the workspace to the identity";
    match e.sentinel.list_incidents(1).await {
        Ok(n) => out.push(Check::ok("sentinel", format!("the incidents API answers ({n} listed)"))),
        Err(SentinelError::Refused { status: 403, .. }) => out.push(Check::fail("sentinel", "the identity may not read incidents (403)", responder)),
        Err(other) => out.push(Check::fail("sentinel", short(&other.to_string()), "check SENTINEL_WORKSPACE_RESOURCE_ID and ARM_ENDPOINT")),
    }
    match e.sentinel.may_write_comments().await {
        Ok(true) => out.push(Check::ok("sentinel-comments", "the identity may write comments (a comment on a missing incident is a 404, not a 403)")),
        Ok(false) => out.push(Check::fail("sentinel-comments", "the identity may not write comments (403)", responder)),
        Err(other) => out.push(Check::fail("sentinel-comments", short(&other.to_string()), "check SENTINEL_WORKSPACE_RESOURCE_ID and ARM_ENDPOINT")),
    }
    if matches!(state.settings.backend, Backend::Local) {
        out.push(Check::ok("automation", "not applicable: the local workspace has no automation rules (run `sentinel-bridge enrich`)"));
        return;
    }
    let path = format!("{}/providers/Microsoft.SecurityInsights/automationRules?api-version=2024-09-01", e.workspace_resource_id.trim_end_matches('/'));
    match arm_get(state, &path).await {
        Ok((200, v)) => {
            let runs = v["value"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["properties"]["actions"].as_array().into_iter().flatten().any(|a| a["actionType"] == "RunPlaybook"));
            if runs {
                out.push(Check::ok("automation", "an automation rule runs a playbook"));
            } else {
                out.push(Check::warn(
                    "automation",
                    "no automation rule runs a playbook: incidents are not enriched on their own",
                    "deploy infra/ (sentinel.bicep), with sentinelAutomationPrincipalId",
                ));
            }
        }
        Ok((status, _)) => out.push(Check::warn(
            "automation",
            format!("automation rules are not readable ({status})"),
            "Microsoft Sentinel Reader on the workspace lets doctor see them",
        )),
        Err(e) => out.push(Check::warn("automation", format!("automation rules are not readable: {}", short(&e)), "check ARM_ENDPOINT")),
    }
}

async fn spill(state: &Deployment<'_>, out: &mut Vec<Check>) {
    match &state.spill {
        None => out.push(Check::warn(
            "spill",
            "off: while Azure is down, senders hear 503 and must retry",
            "set SPILL=azure-queue (infra/ does) or SPILL=dir:<path>",
        )),
        Some(SpillBackend::Dir(s)) => {
            let probe = s.dir().join(format!(".doctor-{}", uuid::Uuid::new_v4().simple()));
            match std::fs::write(&probe, b"probe").and_then(|_| std::fs::remove_file(&probe)) {
                Ok(()) => out.push(Check::ok("spill", format!("{} is writable", s.dir().display()))),
                Err(e) => out.push(Check::fail(
                    "spill",
                    format!("{} is not writable: {e}", s.dir().display()),
                    "give the process write access to the spill directory, or point SPILL at one",
                )),
            }
        }
        Some(SpillBackend::Queue(q)) => {
            let poison = format!("{}-poison", q.queue);
            let blob = format!("doctor-{}.probe", uuid::Uuid::new_v4().simple());
            let depth = tokio::time::timeout(PROBE, q.client.depth(&q.queue)).await;
            let poisoned = tokio::time::timeout(PROBE, q.client.depth(&poison)).await;
            let put = tokio::time::timeout(PROBE, async {
                q.client.put_blob(&q.container, &blob, b"probe".to_vec()).await?;
                q.client.delete_blob(&q.container, &blob).await
            })
            .await;
            let fix = "grant Storage Queue Data Contributor and Storage Blob Data Owner on the function's storage account (infra/ does), and check the queue and container names";
            let buried = tokio::time::timeout(PROBE, q.client.list_blobs(&q.container, DEAD_LETTER_PREFIX)).await;
            match (depth, poisoned, put) {
                (Ok(Ok((n, _))), Ok(Ok((p, _))), Ok(Ok(()))) => {
                    out.push(Check::ok("spill", format!("queue {} ({n} waiting) and container {} answer", q.queue, q.container)));
                    // What was set aside is data an operator must look at: never inside an ok line.
                    let dead = buried.ok().and_then(Result::ok).map_or(0, |b| b.len());
                    if p > 0 || dead > 0 {
                        out.push(Check::fail(
                            "spill-dead-letters",
                            format!("{dead} dead letter(s) in {}/{DEAD_LETTER_PREFIX}, {p} message(s) in {poison}", q.container),
                            "read their reasons (each blob says why), fix the cause, then run `sentinel-bridge spill replay`",
                        ));
                    } else {
                        out.push(Check::ok("spill-dead-letters", format!("no dead letters and nothing in {poison}")));
                    }
                }
                (Ok(Err(e)), _, _) | (_, Ok(Err(e)), _) | (_, _, Ok(Err(e))) => out.push(Check::fail("spill", short(&e.to_string()), fix)),
                _ => out.push(Check::fail("spill", format!("the storage account did not answer within {}s", PROBE.as_secs()), fix)),
            }
        }
    }
}

async fn sekoia(state: &Deployment<'_>, out: &mut Vec<Check>) {
    for (source, client) in state.sekoia {
        let check = format!("sekoia:{source}");
        match client.probe(Instant::now() + PROBE).await {
            Ok(()) => out.push(Check::ok(check, "the intake takes an empty batch")),
            Err(IngestError::Refused { status: 401 | 403, .. }) => out.push(Check::fail(
                check,
                "the intake refused the key",
                "check SEKOIA_INTAKE_KEY (or SOURCE_<NAME>_SEKOIA_KEY): Sekoia > Intakes > the intake's key",
            )),
            Err(e) => out.push(Check::fail(check, short(&e.to_string()), "check SEKOIA_INTAKE_URL and the network path to the intake")),
        }
    }
}
