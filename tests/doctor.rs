//! `doctor` against the workspace, with each failure a deployment can have injected: exactly its check fails,
//! with a fix; everything else stays ok or says it could not be checked.

mod common;

use std::time::Duration;

use common::*;
use sentinel_bridge::doctor::{checks, Level, Options, Report};
use sentinel_bridge::local_azure::{Endpoint, FaultKind, FaultSpec, WorkspaceConfig};

const RULE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/sbridge-dcr";

fn config() -> WorkspaceConfig {
    let mut cfg = builtin_workspace_config();
    cfg.dcr_immutable_id = Some("dcr-test0001".into());
    cfg.dcr_resource_id = Some(RULE_ID.into());
    cfg
}

async fn doctor_with(cfg: WorkspaceConfig, extra: &[(&str, &str)], canary: bool, before: impl FnOnce(&TestBridge)) -> Report {
    let mut vars = vec![("DCR_RESOURCE_ID", RULE_ID)];
    vars.extend_from_slice(extra);
    let t = TestBridge::start_with(cfg, &vars).await;
    before(&t);
    checks::run(&t.bridge.state.deployment(), Options { canary, wait: Duration::from_secs(2) }).await
}

/// The Webhook stream declared as the table is, with a DCR transformation.
fn with_webhook_transform(cfg: &mut WorkspaceConfig, kql: &str) {
    let webhook = cfg.tables.iter().find(|t| t.name == "Webhook_CL").unwrap().clone();
    cfg.extra_streams.push(sentinel_bridge::local_azure::tables::StreamDecl {
        name: "Custom-Webhook_CL".into(),
        columns: webhook.columns.iter().map(|c| sentinel_bridge::kql::Column { name: c.name.clone(), ktype: c.kind.ktype() }).collect(),
        table: "Webhook_CL".into(),
        transform: Some(kql.into()),
    });
}

/// Sentinel answers every write (`PUT`: comments, incidents) with `kind` for the next minute.
fn refuse_sentinel_writes(t: &TestBridge, kind: FaultKind) {
    t.ws.workspace.faults.add(FaultSpec { method: Some("PUT".into()), count: None, for_millis: Some(60_000), ..FaultSpec::new(Endpoint::Sentinel, kind, 0) });
}

fn failing(r: &Report) -> Vec<String> {
    r.checks.iter().filter(|c| c.level == Level::Fail).map(|c| c.check.clone()).collect()
}

fn line<'a>(r: &'a Report, check: &str) -> &'a sentinel_bridge::doctor::Check {
    r.checks.iter().find(|c| c.check == check).unwrap_or_else(|| panic!("no {check} line:\n{}", r.text()))
}

#[tokio::test]
async fn a_working_deployment_is_all_ok_and_the_canary_comes_back() {
    let r = doctor_with(config(), &[], true, |_| {}).await;
    assert!(failing(&r).is_empty(), "{}", r.text());
    for check in [
        "token:monitor",
        "token:log-analytics",
        "token:arm",
        "dcr",
        "dcr-streams",
        "dcr-flows",
        "dcr-endpoint",
        "ingestion",
        "table:NoxysEvents_CL",
        "sentinel",
        "sentinel-comments",
        "canary:Webhook_CL",
        "dcr-errors",
    ] {
        assert_eq!(line(&r, check).level, Level::Ok, "{check}:\n{}", r.text());
    }
}

#[tokio::test]
async fn each_injected_failure_fails_exactly_its_check() {
    // A missing role: the ingestion endpoint answers 403.
    let r = doctor_with(config(), &[], false, |t| {
        t.ws.workspace.faults.add(FaultSpec {
            count: None,
            for_millis: Some(60_000),
            ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 403, retry_after_secs: None }, 0)
        });
    })
    .await;
    assert_eq!(failing(&r), ["ingestion"], "{}", r.text());
    assert!(line(&r, "ingestion").fix.as_deref().unwrap().contains("Monitoring Metrics Publisher"));

    // A wrong DCR id.
    let r = doctor_with(config(), &[("DCR_IMMUTABLE_ID", "dcr-someotherrule")], false, |_| {}).await;
    assert_eq!(failing(&r), ["dcr"], "{}", r.text());
    assert!(line(&r, "dcr").fix.as_deref().unwrap().contains("DCR_IMMUTABLE_ID=dcr-test0001"));

    // A stream declared with another column type (the table is as the mapping says).
    let mut drifted = config();
    let webhook = drifted.tables.iter().find(|t| t.name == "Webhook_CL").unwrap().clone();
    drifted.extra_streams.push(sentinel_bridge::local_azure::tables::StreamDecl {
        name: "Custom-Webhook_CL".into(),
        columns: webhook
            .columns
            .iter()
            .map(|c| sentinel_bridge::kql::Column {
                name: c.name.clone(),
                ktype: if c.name == "EventType" { sentinel_bridge::kql::KType::Long } else { c.kind.ktype() },
            })
            .collect(),
        table: "Webhook_CL".into(),
        transform: None,
    });
    let r = doctor_with(drifted, &[], false, |_| {}).await;
    assert_eq!(failing(&r), ["dcr-streams"], "{}", r.text());
    assert!(line(&r, "dcr-streams").found.contains("Custom-Webhook_CL.EventType is declared long"), "{}", r.text());

    // A table the deployment did not create.
    let mut cfg = config();
    cfg.absent_tables = vec!["Apono_CL".into()];
    let r = doctor_with(cfg, &[], false, |_| {}).await;
    assert_eq!(failing(&r), ["table:Apono_CL"], "{}", r.text());

    // Sentinel refusing a comment.
    let r = doctor_with(config(), &[], false, |t| refuse_sentinel_writes(t, FaultKind::Status { status: 403, retry_after_secs: None })).await;
    assert_eq!(failing(&r), ["sentinel-comments"], "{}", r.text());
    assert!(line(&r, "sentinel-comments").fix.as_deref().unwrap().contains("Sentinel Responder"));

    // A token endpoint that fails: every token line fails, and the checks that need a token say so.
    let r = doctor_with(config(), &[], false, |t| {
        t.ws.workspace.faults.add(FaultSpec {
            count: None,
            for_millis: Some(60_000),
            ..FaultSpec::new(Endpoint::Token, FaultKind::Status { status: 400, retry_after_secs: None }, 0)
        });
    })
    .await;
    let failed = failing(&r);
    assert!(!failed.is_empty() && failed.iter().all(|c| c.starts_with("token:")), "{}", r.text());
    assert_eq!(line(&r, "ingestion").level, Level::Warn);

    // A canary a transformation drops: accepted, and never back.
    let mut cfg = config();
    with_webhook_transform(&mut cfg, "source | where isnotempty(EventType)");
    let r = doctor_with(cfg, &[], true, |_| {}).await;
    assert_eq!(failing(&r), ["canary:Webhook_CL"], "{}", r.text());
    assert!(line(&r, "canary:Webhook_CL").fix.as_deref().unwrap().contains("transformation"));
}

#[tokio::test]
async fn the_route_serves_a_cached_report_and_health_summarises_it() {
    let t = TestBridge::start_with(config(), &[("DCR_RESOURCE_ID", RULE_ID)]).await;
    let h: serde_json::Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["doctor"], "not run yet");
    let a: serde_json::Value = t.http.get(format!("{}/api/doctor", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["failed"], false, "{a}");
    // The second call is the cached report (same time stamp), and no canary was ever written.
    let b: serde_json::Value = t.http.get(format!("{}/api/doctor", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["at"], b["at"]);
    assert!(t.rows("Webhook_CL").is_empty());
    let h: serde_json::Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["doctor"], "ok");
}

/// Azure's ingestion 403 names its cause: a rule not bound to the endpoint called gets the binding's fix, a
/// missing role the role's.
#[tokio::test]
async fn an_ingestion_403_is_told_apart_by_what_azure_says() {
    use sentinel_bridge::local_azure::IngestAccess;
    let mut cfg = config();
    cfg.ingest_access = IngestAccess::UnboundEndpoint;
    let r = doctor_with(cfg, &[], false, |_| {}).await;
    assert_eq!(failing(&r), ["ingestion"], "{}", r.text());
    let fix = line(&r, "ingestion").fix.clone().unwrap();
    assert!(fix.contains("not bound") && !fix.contains("Monitoring Metrics Publisher"), "{fix}");
    let mut cfg = config();
    cfg.ingest_access = IngestAccess::NoRole;
    let r = doctor_with(cfg, &[], false, |_| {}).await;
    assert!(line(&r, "ingestion").fix.as_deref().unwrap().contains("Monitoring Metrics Publisher"), "{}", r.text());
}

/// Only ARM's `AuthorizationFailed` means the identity may not comment; another 403 is reported as it came,
/// not as a missing role.
#[tokio::test]
async fn only_authorization_failed_means_the_identity_may_not_comment() {
    let r = doctor_with(config(), &[], false, |t| refuse_sentinel_writes(t, FaultKind::Status { status: 403, retry_after_secs: None })).await;
    assert!(line(&r, "sentinel-comments").fix.as_deref().unwrap().contains("Sentinel Responder"), "{}", r.text());
    // A 403 of another kind (a policy in the way, say): the comment line fails, but does not blame the role.
    let r = doctor_with(config(), &[], false, |t| refuse_sentinel_writes(t, FaultKind::Refuse { status: 403, code: "RequestDisallowedByPolicy".into() })).await;
    let comments = line(&r, "sentinel-comments");
    assert_eq!(comments.level, Level::Fail, "{}", r.text());
    assert!(!comments.fix.as_deref().unwrap().contains("Sentinel Responder"), "{}", r.text());
}

/// DCRLogErrors rows caused by doctor's own calls (its probes and canaries, by `x-ms-client-request-id`) are not
/// the product's errors; a product call's are.
#[tokio::test]
async fn dcr_errors_ignores_doctors_own_calls_and_counts_the_products() {
    let mut cfg = config();
    // A transformation that fails on every call: each call's records are dropped into DCRLogErrors.
    with_webhook_transform(&mut cfg, "source | where NoSuchColumn == 1");
    let t = TestBridge::start_with(cfg.clone(), &[("DCR_RESOURCE_ID", RULE_ID)]).await;
    let r = checks::run(&t.bridge.state.deployment(), Options { canary: true, wait: Duration::from_secs(2) }).await;
    let logged = t.ws.workspace.query("DCRLogErrors | count").unwrap().rows[0][0].as_f64().unwrap_or(0.0);
    assert!(logged >= 1.0, "the canary's drop was logged");
    assert_eq!(line(&r, "dcr-errors").level, Level::Ok, "only doctor's own canary failed: {}", r.text());
    let t = TestBridge::start_with(cfg, &[("DCR_RESOURCE_ID", RULE_ID)]).await;
    let (status, body) = t.post("generic", GENERIC_TOKEN, serde_json::json!({"n": 1}).to_string()).await;
    assert_eq!(status, 202, "Azure takes the call and drops its records after the 204: {body}");
    let r = checks::run(&t.bridge.state.deployment(), Options { canary: true, wait: Duration::from_secs(2) }).await;
    assert_eq!(line(&r, "dcr-errors").level, Level::Fail, "a product call's drop is an error: {}", r.text());
}

/// Two rules, as infra/ deploys more than ten tables: doctor reads every rule at `DCR_RESOURCE_ID` and checks
/// each stream on the rule the settings send it to: a data flow gone, a flow into another table or another
/// workspace, a rule bound to no endpoint, and a rule left out of `DCR_RESOURCE_ID` each fail (or warn) their
/// own check, naming the second rule's stream.
#[tokio::test]
async fn every_rule_is_checked_for_its_streams_flows_destination_and_endpoint() {
    const SECOND: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Insights/dataCollectionRules/dcr-second";
    let split = |patch: Option<serde_json::Value>| {
        let mut cfg = config();
        let streams: Vec<String> = cfg.tables.iter().map(|t| t.stream_name()).collect();
        let (second, first): (Vec<String>, Vec<String>) = streams.into_iter().partition(|s| s == "Custom-Apono_CL");
        cfg.rules = vec![("dcr-test0001".into(), first), ("dcr-second".into(), second)];
        cfg.rule_patches = patch.map(|p| vec![("dcr-second".to_string(), p)]).unwrap_or_default();
        cfg
    };
    let both = format!("{RULE_ID},{SECOND}");
    let run = |cfg, ids: String| async move {
        let t = TestBridge::start_with(cfg, &[("DCR_RESOURCE_ID", ids.as_str()), ("DCR_STREAM_RULES", "Custom-Apono_CL=dcr-second")]).await;
        checks::run(&t.bridge.state.deployment(), Options { canary: false, wait: Duration::from_secs(2) }).await
    };
    let r = run(split(None), both.clone()).await;
    assert!(failing(&r).is_empty(), "{}", r.text());
    assert!(line(&r, "dcr").found.contains("2 rule(s)"), "{}", r.text());
    for check in ["dcr-streams", "dcr-flows", "dcr-endpoint"] {
        assert_eq!(line(&r, check).level, Level::Ok, "{check}: {}", r.text());
    }

    let other_workspace =
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/other/providers/Microsoft.OperationalInsights/workspaces/elsewhere";
    let cases = [
        (serde_json::json!({"dataFlows": []}), "dcr-flows", "Custom-Apono_CL has no data flow in dcr-second"),
        (
            serde_json::json!({"dataFlows": [{"streams": ["Custom-Apono_CL"], "destinations": ["sentinel"], "outputStream": "Custom-Webhook_CL"}]}),
            "dcr-flows",
            "Custom-Apono_CL flows to Custom-Webhook_CL",
        ),
        (
            serde_json::json!({"destinations": {"logAnalytics": [{"name": "sentinel", "workspaceResourceId": other_workspace}]}}),
            "dcr-flows",
            "not the Sentinel workspace",
        ),
        (serde_json::json!({"dataCollectionEndpointId": null}), "dcr-endpoint", "dcr-second is bound to no data collection endpoint"),
        (
            serde_json::json!({"streamDeclarations": {"Custom-Apono_CL": {"columns": [{"name": "TimeGenerated", "type": "datetime"}]}}}),
            "dcr-streams",
            "Custom-Apono_CL.",
        ),
    ];
    for (patch, check, says) in cases {
        let r = run(split(Some(patch.clone())), both.clone()).await;
        assert_eq!(failing(&r), [check], "{patch}: {}", r.text());
        assert!(line(&r, check).found.contains(says), "{patch}: {}", r.text());
    }

    // The second rule left out of DCR_RESOURCE_ID: its streams are named as not checked.
    let r = run(split(None), RULE_ID.to_string()).await;
    assert!(failing(&r).is_empty(), "{}", r.text());
    let unchecked = line(&r, "dcr-unchecked");
    assert_eq!(unchecked.level, Level::Warn);
    assert!(unchecked.found.contains("Custom-Apono_CL (dcr-second)"), "{}", r.text());
    // A rule id ARM does not know is a 404, not the first rule answered for any path.
    let r = run(split(None), format!("{both},{}", RULE_ID.replace("sbridge-dcr", "gone"))).await;
    assert!(line(&r, "dcr").found.contains("(404)"), "{}", r.text());
}
