//! `doctor --canary`: one row per stream, marked in the `Canary` column every table has (rules and workbooks
//! skip rows where it is set), sent as vendor events are, then read back through the Query API within the
//! wait. A 204 from the Logs Ingestion API means accepted, not landed: transformations and undeclared columns
//! drop rows without a word, so only the row coming back proves the path. Then DCRLogErrors, where the rules'
//! diagnostic settings record what they dropped.

use std::time::{Duration, Instant};

use serde_json::{json, Map};

use super::checks::Tokens;
use super::Check;
use super::Deployment;
use crate::enrich::kql_strings;
use crate::enrich::EnrichmentState;
use crate::model::schema::Row;

/// How often the tables are asked again while the canary has not come back.
fn poll_every(wait: Duration) -> Duration {
    (wait / 20).clamp(Duration::from_millis(200), Duration::from_secs(15))
}

/// `ours`: the request ids of the calls doctor made before (its probes); the canary's are added.
pub(super) async fn run(state: &Deployment<'_>, tokens: &Tokens, wait: Duration, mut ours: Vec<String>, out: &mut Vec<Check>) {
    let EnrichmentState::Ready(e) = &state.enricher else {
        out.push(Check::warn("canary", "not sent: no Query API to read it back from", "set LOG_ANALYTICS_WORKSPACE_ID and SENTINEL_WORKSPACE_RESOURCE_ID"));
        return;
    };
    if !tokens.ok.contains("monitor") || !tokens.ok.contains("log-analytics") {
        out.push(Check::warn("canary", "not sent: no token to send or read it (see the token lines)", "fix the tokens first"));
        return;
    }
    let run_id = format!("doctor-{}", uuid::Uuid::new_v4());
    let now = crate::model::time::format_datetime(time::OffsetDateTime::now_utc());
    let tables = crate::enrich::tables::written_tables(state.catalog);
    let mut waiting = Vec::new();
    for t in &tables {
        let mut fields = Map::new();
        fields.insert("TimeGenerated".into(), json!(now));
        fields.insert(crate::mapping::CANARY.into(), json!(run_id));
        if t.column(crate::mapping::EVENT_TIME).is_some() {
            fields.insert(crate::mapping::EVENT_TIME.into(), json!(now));
        }
        let row = match Row::new(t, &fields) {
            Ok(r) => r,
            Err(err) => {
                out.push(Check::fail(
                    format!("canary:{}", t.name),
                    format!("no canary row fits the table: {err}"),
                    "add the Canary column to the table (sentinel-bridge schema)",
                ));
                continue;
            }
        };
        let (request_id, sent) = state.ingest.send_one(&t.stream_name(), &row, Instant::now() + Duration::from_secs(30)).await;
        ours.push(request_id);
        match sent {
            Ok(()) => waiting.push(t.name.clone()),
            Err(err) => out.push(Check::fail(
                format!("canary:{}", t.name),
                format!("not accepted: {err}"),
                "see the ingestion line: the identity, the rule or the stream",
            )),
        }
    }
    let started = Instant::now();
    let deadline = started + wait;
    let mut back: Vec<(String, Duration)> = Vec::new();
    let id = kql_strings(std::slice::from_ref(&run_id));
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for table in waiting {
            // The run id is ours and bound as a JSON-escaped literal, as every value put in KQL is.
            let q = format!("let Run = {id};\n{table}\n| where TimeGenerated > ago(1h)\n| where Canary in (Run)\n| count");
            let found = e
                .query
                .query(&q, Some("PT1H"), Duration::from_secs(30))
                .await
                .ok()
                .and_then(|r| r.primary().rows.first().and_then(|row| row.first().map(|v| v.to_text())));
            if found.as_deref().is_some_and(|n| n != "0") {
                back.push((table, started.elapsed()));
            } else {
                still.push(table);
            }
        }
        waiting = still;
        if waiting.is_empty() || Instant::now() + poll_every(wait) > deadline {
            break;
        }
        tokio::time::sleep(poll_every(wait)).await;
    }
    for (table, after) in back {
        out.push(Check::ok(format!("canary:{table}"), format!("came back after {:.1} s (Canary = {run_id})", after.as_secs_f64())));
    }
    for table in waiting {
        out.push(Check::fail(
            format!("canary:{table}"),
            format!("accepted (204) but not back within {} s", wait.as_secs()),
            "likely a DCR transformation that filters it, a column the rule or the table does not declare, or ingestion latency past --wait (Azure takes minutes: try --wait 600); see dcr-errors",
        ));
    }
    dcr_errors(state, e, &ours, out).await;
}

/// What the rules' diagnostic settings recorded in the last hour, less what doctor's own calls (`ours`, by
/// `x-ms-client-request-id`) caused.
async fn dcr_errors(state: &Deployment<'_>, e: &crate::enrich::Enricher, ours: &[String], out: &mut Vec<Check>) {
    let q = format!(
        "let Rule = {};\nlet Ours = {};\nDCRLogErrors\n| where TimeGenerated > ago(1h)\n| where array_length(Rule) == 0 or _ResourceId in~ (Rule)\n| where ClientRequestId !in (Ours)\n| summarize Errors = count(), Example = take_any(Message)",
        kql_strings(state.dcr_resource_ids),
        kql_strings(ours)
    );
    match e.query.query(&q, Some("PT1H"), Duration::from_secs(30)).await {
        Ok(r) => {
            let f = r.primary();
            let row = f.rows.first();
            let n = row.and_then(|r| r.first()).map(|v| v.to_text()).unwrap_or_else(|| "0".into());
            if n == "0" {
                out.push(Check::ok("dcr-errors", "DCRLogErrors holds nothing for the rule in the last hour"));
            } else {
                let example = row.and_then(|r| r.get(1)).map(|v| v.to_text()).unwrap_or_default();
                out.push(Check::fail(
                    "dcr-errors",
                    format!("{n} errors in the last hour, e.g. {}", example.chars().take(200).collect::<String>()),
                    "read queries/dcr_errors.kql's answer (Logs > Queries > sentinel-bridge) and fix the stream or transformation it names",
                ));
            }
        }
        Err(err) => out.push(Check::warn(
            "dcr-errors",
            format!("DCRLogErrors could not be read: {}", err.to_string().chars().take(200).collect::<String>()),
            "the rules' diagnostic settings (infra/ deploys them) create it with the first error",
        )),
    }
}
