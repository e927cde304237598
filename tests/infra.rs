//! infra/ checked offline: the schema it deploys matches the mappings; every Bicep file parses and checkov's
//! Bicep checks pass (remaining findings are suppressed in the files with a reason); every KQL query the
//! project ships passes Microsoft's Kusto language service against the tables' schemas; and the seeds'
//! analytics rules fire on data that should fire them, and stay quiet just below.
//! The tools come from PyPI (checkov, which brings pycep-parser) and npm (@kusto/language-service-next),
//! installed under target/ and tests/kql_check/node_modules on first run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sentinel_bridge::enrich::{preamble, Window, HIGH_VALUE_ASSETS, QUERIES, RESOLVE};
use sentinel_bridge::local_azure::{Workspace, WorkspaceConfig};
use sentinel_bridge::mapping::Catalog;
use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn infra_schema_matches_the_mappings() {
    let committed = std::fs::read_to_string(root().join("infra/schema.json")).unwrap();
    let derived = sentinel_bridge::cli::schema::schema_text(&Catalog::builtin());
    assert!(committed == derived, "infra/schema.json has drifted from the source mappings: run `cargo run -- schema --out infra/schema.json`");
    // Every table the Bicep creates has TimeGenerated, and every stream declares the table's columns.
    let v: Value = serde_json::from_str(&committed).unwrap();
    for t in v["tables"].as_array().unwrap() {
        let cols = t["tableColumns"].as_array().unwrap();
        assert_eq!(cols[0]["name"], "TimeGenerated");
        let stream = &v["streamDeclarations"][t["stream"].as_str().unwrap()]["columns"];
        assert_eq!(stream.as_array().unwrap().len(), cols.len());
    }
}

/// The venv with checkov, made once per test binary: two tests need it, and two `venv --clear` at once race
/// (the second fails with "File exists").
fn iac_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(make_iac_python).clone()
}

fn make_iac_python() -> PathBuf {
    let venv = root().join("target/iac-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    let wanted = "checkov==3.3.30\n";
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted) {
        assert!(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).status().unwrap().success());
        let ok = Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "checkov==3.3.30"]).status().unwrap();
        assert!(ok.success(), "pip install checkov failed");
        std::fs::write(&stamp, wanted).unwrap();
    }
    python
}

fn bicep_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("infra/main.bicep")];
    for e in std::fs::read_dir(root().join("infra/modules")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("bicep") {
            files.push(p);
        }
    }
    files.sort();
    files
}

#[test]
fn every_bicep_file_parses_and_checkov_passes() {
    let python = iac_python();
    let files = bicep_files();
    assert!(files.len() >= 10, "{files:?}");
    let script = "import sys, pathlib\nfrom pycep import BicepParser\nbad = []\nfor f in sys.argv[1:]:\n    try:\n        BicepParser().parse(file_path=pathlib.Path(f))\n    except Exception as e:\n        bad.append(f'{f}: {str(e)[:300]}')\nprint('\\n'.join(bad))\nsys.exit(1 if bad else 0)\n";
    let out = Command::new(&python).arg("-c").arg(script).args(&files).output().unwrap();
    assert!(out.status.success(), "Bicep parse errors:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let checkov = python.parent().unwrap().join("checkov");
    let out = Command::new(checkov)
        .args(["-d", "infra", "--framework", "bicep", "--compact", "--quiet", "--skip-download"])
        .current_dir(root())
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("Failed checks: 0") && !stdout.contains("Parsing errors"), "checkov:\n{stdout}");
}

/// Every property infra/ writes is one Azure's published Bicep types declare, writable (what `bicep build`
/// reports as BCP037 and BCP073); each known gap of those types is suppressed in place with
/// `#disable-next-line` under a comment giving the reason. The types are read from `../shared/bicep-types`
/// (or `BICEP_TYPES_DIR`), never copied into the repo; without them the check says so and is skipped.
#[test]
fn every_property_is_one_the_published_bicep_types_declare() {
    let types = std::env::var_os("BICEP_TYPES_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("../shared/bicep-types"));
    if !types.join("index.json").exists() {
        eprintln!("skipped: no published Bicep types at {} (set BICEP_TYPES_DIR)", types.display());
        return;
    }
    let python = iac_python();
    let out = Command::new(&python).arg(root().join("tests/bicep_types.py")).arg(&types).args(bicep_files()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "properties the published types do not explain:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The checker sees what it must: the known gaps, suppressed, are reported as such.
    assert!(stdout.contains("parameterValueType: suppressed with a reason"), "{stdout}");
    // And a property no type declares is caught, in a looped resource too.
    let dir = std::env::temp_dir().join(format!("sb-bicep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vault = std::fs::read_to_string(root().join("infra/modules/keyvault.bicep"))
        .unwrap()
        .replace("    contentType: 'text/plain'", "    contentType: 'text/plain'\n    contentKind: 'x'");
    std::fs::write(dir.join("keyvault.bicep"), vault).unwrap();
    let out = Command::new(&python).arg(root().join("tests/bicep_types.py")).arg(&types).arg(dir.join("keyvault.bicep")).output().unwrap();
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("secrets (microsoft.keyvault/vaults/secrets@2023-07-01): BCP037 .properties.contentKind")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each `resource` declaration of a Bicep file: (symbolic name, type, its text).
fn resources(file: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.split("\nresource ")
        .skip(1)
        .map(|block| {
            let mut words = block.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let kind = words.next().unwrap_or_default().trim_matches('\'').to_string();
            let end = block.find("\n}").map(|i| i + 2).unwrap_or(block.len());
            (name, kind, block[..end].to_string())
        })
        .collect()
}

/// The deployment's rules that no parser checks: each option deploys something that works, Sentinel can run
/// the playbook, the playbook can call a custom handler, telemetry can reach Application Insights, the DCRs
/// report what they drop, and rules hold at most ten streams.
#[test]
fn the_deployment_wires_what_azure_requires() {
    let all: Vec<(String, String, String, String)> = bicep_files()
        .iter()
        .flat_map(|f| {
            let rel = f.strip_prefix(root()).unwrap().display().to_string();
            resources(&rel).into_iter().map(move |(n, k, b)| (rel.clone(), n, k, b))
        })
        .collect();
    for f in bicep_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for gone in ["ElasticPremium", "privateNetworking", "publicNetworkAccess: 'Disabled'"] {
            assert!(!text.contains(gone), "{}: {gone} deploys something that cannot work", f.display());
        }
    }
    // Every role assignment's name includes the principal it grants to, so a new principal is a new assignment.
    let assignments: Vec<_> = all.iter().filter(|(_, _, k, _)| k.starts_with("Microsoft.Authorization/roleAssignments")).collect();
    assert!(assignments.len() >= 6, "{}", assignments.len());
    for (file, name, _, block) in &assignments {
        let guid = block.lines().find(|l| l.trim_start().starts_with("name: guid(")).unwrap_or_else(|| panic!("{file}: {name} has no guid name"));
        assert!(guid.to_lowercase().contains("principalid"), "{file}: {name}: {guid}");
        assert!(!block.contains("= if ("), "{file}: {name} is conditional");
    }
    let find = |file: &str, name: &str| {
        all.iter().find(|(f, n, _, _)| f == file && n == name).map(|(_, _, _, b)| b.clone()).unwrap_or_else(|| panic!("{file}: no {name}"))
    };
    // Sentinel runs the playbook: Automation Contributor on the resource group (no `scope:`), required, and the
    // automation rule waits for it.
    let contributor = find("infra/modules/sentinel.bicep", "automationContributor");
    assert!(!contributor.contains("scope:") && contributor.contains("resourceGroup().id"), "{contributor}");
    assert!(find("infra/modules/sentinel.bicep", "automationRule").contains("automationContributor"));
    let main = std::fs::read_to_string(root().join("infra/main.bicep")).unwrap();
    assert!(!main.contains("param sentinelAutomationPrincipalId string ="), "the principal is required");
    // The playbook's own identity (its Sentinel connection's) gets Microsoft Sentinel Reader on the workspace,
    // which the incident trigger needs, and nothing more; the automation rule waits for it.
    let reader = find("infra/modules/playbook-reader.bicep", "playbookSentinelReader");
    assert!(reader.contains("scope: workspace") && reader.contains("principalId: principalId"), "{reader}");
    let module = std::fs::read_to_string(root().join("infra/modules/playbook-reader.bicep")).unwrap();
    assert!(module.contains("'8d289c81-5878-46d4-8554-54e1e3d8b5cb'"), "Microsoft Sentinel Reader's role id");
    let sentinel = std::fs::read_to_string(root().join("infra/modules/sentinel.bicep")).unwrap();
    assert!(sentinel.contains("principalId: playbook.identity.principalId"));
    assert!(find("infra/modules/sentinel.bicep", "automationRule").contains("playbookSentinelReader"));
    assert!(!all.iter().any(|(f, _, k, b)| f.ends_with("sentinel.bicep") && k.starts_with("Microsoft.Authorization") && b.contains("playbook.identity")));
    // Each instance takes as many HTTP requests at once as `bench webhook` showed it can (a parameter).
    let app = std::fs::read_to_string(root().join("infra/modules/functionapp.bicep")).unwrap();
    assert!(app.contains("perInstanceConcurrency: httpPerInstanceConcurrency") && app.contains("param httpPerInstanceConcurrency int = 256"));
    assert!(main.contains("httpPerInstanceConcurrency: httpPerInstanceConcurrency"));
    // The playbook calls the custom handler over HTTP with the deployment's enrichment key, kept out of run
    // history; nothing in the deployment asks the Functions host runtime for a key (it may not answer while
    // the app is being created), and the route the playbook calls is anonymous to the host, checked by us.
    let playbook = find("infra/modules/sentinel.bicep", "playbook");
    assert!(playbook.contains("type: 'Http'") && !playbook.contains("type: 'Function'"));
    assert!(playbook.contains("/api/enrich") && playbook.contains("'x-enrich-key'") && playbook.contains("SecureString") && playbook.contains("secureData"));
    assert!(playbook.contains("value: first(split(enrichKey, ','))"), "the playbook sends the first of the keys");
    // A long enrichment is polled for (202 + Location), not re-sent: the asynchronous pattern stays on.
    assert!(!playbook.lines().any(|l| l.trim_start().starts_with("operationOptions:")) && playbook.contains("timeout: 'PT30M'"));
    for f in bicep_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(!code.contains("listKeys(") && !code.contains("Microsoft.Web/sites/host"), "{}: reads a key from the host runtime", f.display());
    }
    let function: Value = serde_json::from_str(&std::fs::read_to_string(root().join("functions/enrich/function.json")).unwrap()).unwrap();
    assert_eq!(function["bindings"][0]["authLevel"], "anonymous");
    assert!(app.contains("name: 'ENRICH_KEY'") && app.contains("SecretName=enrich-key"));
    assert!(app.contains("name: 'SPILL_SIGNING_KEY'") && app.contains("SecretName=spill-signing-key"));
    assert!(main.contains("param enrichKey string") && main.contains("param spillSigningKey string"));
    // Telemetry with local auth off needs Monitoring Metrics Publisher on Application Insights.
    let insights = std::fs::read_to_string(root().join("infra/modules/monitoring.bicep")).unwrap();
    assert!(insights.contains("DisableLocalAuth: true") && insights.contains("3913510d-42f4-4e42-8a64-420c390055eb"));
    // Each DCR reports what it drops, and the saved search reads it.
    let dcr = find("infra/modules/dcr.bicep", "errors");
    assert!(dcr.contains("diagnosticSettings") || dcr.contains("LogErrors"), "{dcr}");
    assert!(dcr.contains("category: 'LogErrors'") && dcr.contains("scope: dcr"));
    assert!(find("infra/modules/sentinel.bicep", "droppedRows").contains("dcr_errors.kql"));
    // One rule per ten streams, all behind one endpoint.
    assert!(main.contains("[for (rule, i) in schema.rules:") && main.contains("schema.overflow"));
    // doctor reads every rule, not only the first.
    assert!(main.contains("dcrResourceIds: [for (rule, i) in schema.rules: dcr[i].outputs.id]") && app.contains("join(dcrResourceIds, ',')"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(root().join("infra/schema.json")).unwrap()).unwrap();
    for r in schema["rules"].as_array().unwrap() {
        assert!(r["tables"].as_array().unwrap().len() <= sentinel_bridge::local_azure::MAX_STREAMS_PER_RULE);
    }
}

fn kql_check(input: &Value) -> Vec<Value> {
    let dir = root().join("tests/kql_check");
    // One `npm ci` at a time: it empties node_modules first, so parallel installs break each other.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if !dir.join("node_modules/@kusto/language-service-next").exists() {
        let ok = Command::new("npm").args(["ci", "--silent", "--no-audit", "--no-fund"]).current_dir(&dir).status().expect("npm is needed for the KQL check");
        assert!(ok.success(), "npm ci failed");
    }
    let path = root().join(format!("target/kql-check-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, input.to_string()).unwrap();
    let out = Command::new("node").arg(dir.join("check.js")).arg(&path).output().expect("node is needed for the KQL check");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "check.js failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_shipped_query_passes_the_kusto_language_service() {
    let catalog = Catalog::builtin();
    let tables: Vec<Value> = sentinel_bridge::cli::schema::all_query_tables(&catalog).into_iter().map(|(n, cols)| json!([n, cols])).collect();
    let mut queries = Vec::new();
    let rules: Value = serde_json::from_str(&std::fs::read_to_string(root().join("infra/rules.json")).unwrap()).unwrap();
    for r in rules.as_array().unwrap() {
        queries.push(json!({"name": format!("rule: {}", r["displayName"].as_str().unwrap()), "query": r["query"]}));
    }
    let workbook: Value = serde_json::from_str(&std::fs::read_to_string(root().join("infra/workbook.json")).unwrap()).unwrap();
    let mut tiles = 0;
    for item in workbook["items"].as_array().unwrap() {
        if let Some(q) = item["content"]["query"].as_str() {
            tiles += 1;
            queries.push(json!({"name": format!("workbook: {}", item["content"]["title"].as_str().unwrap()), "query": q}));
        }
    }
    assert_eq!(tiles, 4, "seed 000 Step 6 has four tiles");
    // DCR transformations: each runs with `source` bound to its stream's columns.
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(root().join("infra/schema.json")).unwrap()).unwrap();
    let transform = std::fs::read_to_string(root().join("infra/modules/dcr.bicep")).unwrap();
    let kql = transform.split("transformKql: '").nth(1).unwrap().split('\'').next().unwrap().to_string();
    for (stream, decl) in schema["streamDeclarations"].as_object().unwrap() {
        let cols: Vec<Value> = decl["columns"].as_array().unwrap().iter().map(|c| json!([c["name"], c["type"]])).collect();
        queries.push(json!({"name": format!("transform: {stream}"), "query": kql, "tables": [["source", cols]]}));
    }
    // The enrichment's queries, with the parameters it binds (hostile values included).
    let subjects = sentinel_bridge::enrich::Subjects {
        accounts: vec!["alice@contoso.com".into(), "x\"]); Perf | take 1 //".into()],
        hosts: vec!["acme-web-02".into()],
        ips: vec!["203.0.113.9".into()],
        resources: vec!["/subscriptions/0/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v".into()],
        account_ids: vec!["3f1e0000-0000-4000-8000-000000000001".into()],
        own_alert_ids: vec!["a1".into()],
        left_out: Default::default(),
    };
    let names = sentinel_bridge::enrich::entities::Names::of(&subjects);
    let preamble = preamble(&names, &subjects.own_alert_ids, &Window { start: 0, end: 10, baseline_start: -10 });
    for q in QUERIES.iter().chain([&RESOLVE, &HIGH_VALUE_ASSETS]) {
        let (name, text) = (q.name, q.text);
        queries.push(json!({"name": format!("enrichment: {name}"), "query": format!("{preamble}{text}")}));
    }
    queries.push(json!({"name": "saved search: dcr_errors", "query": std::fs::read_to_string(root().join("queries/dcr_errors.kql")).unwrap()}));
    let results = kql_check(&json!({"tables": tables, "queries": queries}));
    assert_eq!(results.len(), queries.len());
    let failures: Vec<String> =
        results.iter().filter(|r| !r["errors"].as_array().unwrap().is_empty()).map(|r| format!("{}: {}", r["name"], r["errors"])).collect();
    assert!(failures.is_empty(), "queries the Kusto language service rejects:\n{}", failures.join("\n"));
    // And the check does catch a bad query.
    let bad = kql_check(&json!({"tables": tables, "queries": [{"name": "bad", "query": "NoxysEvents_CL | where PlatformId not in (\"x\")"}]}));
    assert!(!bad[0]["errors"].as_array().unwrap().is_empty());
}

fn noxys(ws: &Workspace, n: usize, user: &str, platform: &str, event: &str, minutes_ago: i64) {
    let t = sentinel_bridge::model::time::format_datetime(time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago));
    let rows: Vec<_> = (0..n)
        .map(|i| {
            json!({"TimeGenerated": t, "EventType": event, "UserId": user, "PlatformId": platform, "RiskScore": 0.95,
                "Classifications": [{"type": "IBAN", "score": 0.99}], "PolicyDecisions": [{"action": "block"}], "EventId": format!("{user}-{i}")})
            .as_object()
            .unwrap()
            .clone()
        })
        .collect();
    ws.store_append("NoxysEvents_CL", &rows).unwrap();
}

#[test]
fn the_seed_rules_fire_on_local_data() {
    let ws: Arc<Workspace> = Workspace::open(WorkspaceConfig::new(sentinel_bridge::app::written_tables(&Catalog::builtin()))).unwrap();
    let rules = sentinel_bridge::cli::rules::parse_rules(&std::fs::read_to_string(root().join("infra/rules.json")).unwrap()).unwrap();
    assert_eq!(rules.len(), 8);
    let now = sentinel_bridge::model::time::now_ticks();
    let fires = |ws: &Workspace, name: &str| -> sentinel_bridge::cli::rules::RuleResult {
        let r = sentinel_bridge::cli::rules::test_rules(&rules, ws, sentinel_bridge::model::time::now_ticks());
        r.into_iter().find(|x| x.name == name).unwrap()
    };
    // Nothing yet: every rule runs and stays quiet.
    for r in sentinel_bridge::cli::rules::test_rules(&rules, &ws, now) {
        assert!(r.error.is_none(), "{}: {:?}", r.name, r.error);
        assert!(!r.fires, "{} fired on an empty workspace", r.name);
    }
    // Seed 000, rule 1: 10 violations in the hour do not fire it, 11 do.
    noxys(&ws, 10, "carol@contoso.com", "chatgpt", "interaction.policy_violated", 1);
    assert!(!fires(&ws, "High Volume Policy Violations from Noxys").fires);
    noxys(&ws, 1, "carol@contoso.com", "chatgpt", "interaction.policy_violated", 1);
    let r = fires(&ws, "High Volume Policy Violations from Noxys");
    assert!(r.fires);
    assert_eq!(r.entities, ["Account: carol@contoso.com"]);
    assert_eq!(r.alert_names, ["Multiple policy violations detected"]);
    // Old events are outside the rule's period.
    noxys(&ws, 20, "dave@contoso.com", "chatgpt", "interaction.policy_violated", 120);
    assert_eq!(fires(&ws, "High Volume Policy Violations from Noxys").entities, ["Account: carol@contoso.com"]);
    // Blocks on allowed platforms stay quiet; on others they fire.
    assert!(!fires(&ws, "Blocked Transactions on Unallowed Platforms").fires);
    noxys(&ws, 1, "erin@contoso.com", "deepseek", "interaction.policy_violated", 1);
    let r = fires(&ws, "Blocked Transactions on Unallowed Platforms");
    assert_eq!(r.entities, ["Account: erin@contoso.com"]);
    assert!(fires(&ws, "Policy violation on unvetted AI platform").fires);
    // Seed 001: five high-risk interactions do not fire, six do; IBAN with risk 0.95 is financial exposure.
    noxys(&ws, 5, "frank@contoso.com", "grok", "interaction.high_risk", 1);
    assert!(!fires(&ws, "Repeated High-Risk Interactions").fires);
    assert!(fires(&ws, "Financial Data Exposure").fires);
    assert!(fires(&ws, "High-Risk Interaction from Non-Enterprise Platform").fires);
    noxys(&ws, 1, "frank@contoso.com", "grok", "interaction.high_risk", 1);
    assert!(fires(&ws, "Repeated High-Risk Interactions").fires);
    // Seed 002: one alert per TrapEye threat, named after its source IP.
    let t = sentinel_bridge::model::time::format_datetime(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    let threat =
        json!({"TimeGenerated": t, "event_type": "new_threat", "threat_uuid": "7f3c", "source_ip": "203.0.113.45", "reverse_lookup": "scanner.example.net"});
    ws.store_append("TrapEye_Threats_CL", &[threat.as_object().unwrap().clone()]).unwrap();
    let r = fires(&ws, "New TrapEye Threat");
    assert_eq!(r.alert_names, ["New TrapEye Threat from 203.0.113.45"]);
    assert_eq!(r.entities, ["IP: 203.0.113.45", "DNS: scanner.example.net"]);
    // Seed 003: an Apono access request.
    let req = json!({"TimeGenerated": t, "event_type": "RequestCreated", "requester_email": "alice@acme.fr", "requester_name": "Alice", "resource_name": "prod-postgres", "permission": "read-only"});
    ws.store_append("Apono_CL", &[req.as_object().unwrap().clone()]).unwrap();
    let r = fires(&ws, "Apono access request");
    assert_eq!(r.alert_names, ["Apono RequestCreated for Alice on prod-postgres"]);
}

/// Azure's ingestion delay across a run boundary: a row handed over just before a run but indexed after it has
/// a TimeGenerated older than the rule's frequency. The rule's period covers the delay and its
/// `ingestion_time()` filter its own frequency, so the next run sees the row, and a row the previous run saw is
/// not alerted on twice.
#[test]
fn a_row_indexed_after_its_run_is_seen_by_the_next_one_and_only_once() {
    let ws: Arc<Workspace> = Workspace::open(WorkspaceConfig::new(sentinel_bridge::app::written_tables(&Catalog::builtin()))).unwrap();
    let rules = sentinel_bridge::cli::rules::parse_rules(&std::fs::read_to_string(root().join("infra/rules.json")).unwrap()).unwrap();
    let at = |minutes: i64| sentinel_bridge::model::time::format_datetime(time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes));
    let threat = |ingested: i64| {
        json!({"TimeGenerated": at(9), "_ingestedAt": at(ingested), "event_type": "new_threat", "threat_uuid": format!("t-{ingested}"), "source_ip": format!("203.0.113.{ingested}")})
            .as_object()
            .unwrap()
            .clone()
    };
    let trapeye = |ws: &Workspace| {
        sentinel_bridge::cli::rules::test_rules(&rules, ws, sentinel_bridge::model::time::now_ticks())
            .into_iter()
            .find(|r| r.name == "New TrapEye Threat")
            .unwrap()
    };
    // Handed over 9 minutes ago (past a 5-minute rule's frequency), indexed 8 minutes ago: the previous run saw it.
    ws.store_append("TrapEye_Threats_CL", &[threat(8)]).unwrap();
    assert!(!trapeye(&ws).fires, "already alerted on by the run that saw it");
    // Handed over 9 minutes ago, indexed a minute ago (after the run that would have covered its TimeGenerated).
    ws.store_append("TrapEye_Threats_CL", &[threat(1)]).unwrap();
    let r = trapeye(&ws);
    assert!(r.fires, "{r:?}");
    assert_eq!(r.entities.iter().filter(|e| e.starts_with("IP:")).collect::<Vec<_>>(), ["IP: 203.0.113.1"]);
}
