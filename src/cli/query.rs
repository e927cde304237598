//! `sentinel-bridge query`: KQL against the Query API (with `LOG_ANALYTICS_WORKSPACE_ID`) or the local
//! workspace, printed as a table, CSV or the Query API's JSON.

use std::sync::Arc;
use std::time::Duration;

use super::CliResult;
use crate::azure::identity::{Credential, TokenSource};
use crate::azure::logs_query::{LogsQueryClient, QueryOptions, QUERY_SCOPE};
use crate::kql::Frame;
use crate::local_azure::query_endpoint::WorkspaceTables;
use crate::model::time::{now_ticks, parse_query_timespan};
use crate::settings::{QueryBackend, Settings};

pub async fn run(settings: &Settings, kql: &str, json: bool, csv: bool, timespan: Option<&str>) -> CliResult {
    let frame = match &settings.query {
        QueryBackend::Azure { endpoint, workspace_id } => {
            let cred = Credential::for_setting(&settings.identity)?;
            let client = LogsQueryClient::new(endpoint, workspace_id, Arc::new(TokenSource::new(cred, QUERY_SCOPE)), QueryOptions::default());
            let r = client.query(kql, timespan, Duration::from_secs(600)).await?;
            if let Some(p) = &r.partial_error {
                eprintln!("warning: partial results: {p}");
            }
            r.primary()
        }
        QueryBackend::Local => {
            let ws = super::workspace::open_local_workspace(settings, None, true)?;
            let now = now_ticks();
            let range = match timespan {
                None => None,
                Some(t) => Some(parse_query_timespan(t, now).ok_or_else(|| format!("--timespan '{t}' is not an ISO 8601 duration or start/end"))?),
            };
            crate::kql::run(kql, &WorkspaceTables { ws: &ws, range }, now)?
        }
    };
    if json {
        println!("{}", serde_json::json!({"tables": [frame.to_wire("PrimaryResult")]}));
    } else if csv {
        print!("{}", render_csv(&frame));
    } else {
        print!("{}", render_table(&frame));
    }
    Ok(())
}

/// Renders a frame as an aligned text table, for people.
pub fn render_table(f: &Frame) -> String {
    let header: Vec<String> = f.columns.iter().map(|c| c.name.clone()).collect();
    let cells: Vec<Vec<String>> = f.rows.iter().map(|r| r.iter().map(|v| v.to_text().replace('\n', " ")).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count().min(60));
        }
    }
    let line = |vals: &[String]| {
        vals.iter()
            .enumerate()
            .map(|(i, v)| {
                let v: String = if v.chars().count() > 60 { v.chars().take(59).collect::<String>() + "…" } else { v.clone() };
                format!("{v:<w$}", w = widths[i])
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header) + "\n";
    out += &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ");
    out.push('\n');
    for row in &cells {
        out += &line(row);
        out.push('\n');
    }
    out += &format!("({} row{})\n", f.rows.len(), if f.rows.len() == 1 { "" } else { "s" });
    out
}

/// Renders a frame as CSV (RFC 4180 quoting).
pub fn render_csv(f: &Frame) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = f.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(",") + "\n";
    for r in &f.rows {
        out += &r.iter().map(|v| quote(&v.to_text())).collect::<Vec<_>>().join(",");
        out.push('\n');
    }
    out
}
