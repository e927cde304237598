//! The analytics rules shipped in `infra/rules.json` (the Bicep deploys them as scheduled Sentinel rules), and
//! `sentinel-bridge rules test`: each rule's query run over the local workspace with the rule's lookback, as
//! Sentinel would run it, reporting whether it would fire and with which entities.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kql::{self, Frame};
use crate::local_azure::query_endpoint::WorkspaceTables;
use crate::local_azure::Workspace;
use crate::model::time::parse_iso_duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldMapping {
    pub identifier: String,
    pub column_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityMapping {
    pub entity_type: String,
    pub field_mappings: Vec<FieldMapping>,
}

/// A scheduled rule, in the shape of the ARM `Scheduled` alert rule's properties (plus its resource name).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub display_name: String,
    pub severity: String,
    pub query: String,
    pub query_period: String,
    pub query_frequency: String,
    pub trigger_operator: String,
    pub trigger_threshold: i64,
    #[serde(default)]
    pub entity_mappings: Vec<EntityMapping>,
    #[serde(default)]
    pub custom_details: serde_json::Map<String, Value>,
    #[serde(default)]
    pub alert_details_override: Option<Value>,
    #[serde(default)]
    pub event_grouping_settings: Option<Value>,
}

pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let rules: Vec<Rule> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for r in &rules {
        for (what, d) in [("queryPeriod", &r.query_period), ("queryFrequency", &r.query_frequency)] {
            if parse_iso_duration(d).is_none() {
                return Err(format!("rule '{}': {what} '{d}' is not an ISO 8601 duration", r.display_name));
            }
        }
        if !["GreaterThan", "LessThan", "Equal", "NotEqual"].contains(&r.trigger_operator.as_str()) {
            return Err(format!("rule '{}': triggerOperator '{}' is not GreaterThan, LessThan, Equal or NotEqual", r.display_name, r.trigger_operator));
        }
    }
    Ok(rules)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    pub id: String,
    pub name: String,
    pub severity: String,
    pub fires: bool,
    pub rows: usize,
    /// `Account: alice@contoso.com`, …
    pub entities: Vec<String>,
    pub alert_names: Vec<String>,
    pub error: Option<String>,
}

/// `{{column}}` placeholders filled from a result row.
fn format_alert(template: &str, f: &Frame, row: &[kql::Value]) -> String {
    let mut out = template.to_string();
    for (i, c) in f.columns.iter().enumerate() {
        out = out.replace(&format!("{{{{{}}}}}", c.name), &row[i].to_text());
    }
    out
}

pub fn test_rules(rules: &[Rule], ws: &Workspace, now: i64) -> Vec<RuleResult> {
    rules
        .iter()
        .map(|r| {
            let period = parse_iso_duration(&r.query_period).unwrap_or(0);
            let mut result = RuleResult {
                id: r.id.clone(),
                name: r.display_name.clone(),
                severity: r.severity.clone(),
                fires: false,
                rows: 0,
                entities: Vec::new(),
                alert_names: Vec::new(),
                error: None,
            };
            match kql::run(&r.query, &WorkspaceTables { ws, range: Some((now - period, now)) }, now) {
                Err(e) => result.error = Some(e.to_string()),
                Ok(f) => {
                    let n = f.rows.len() as i64;
                    result.rows = f.rows.len();
                    result.fires = match r.trigger_operator.as_str() {
                        "GreaterThan" => n > r.trigger_threshold,
                        "LessThan" => n < r.trigger_threshold,
                        "Equal" => n == r.trigger_threshold,
                        _ => n != r.trigger_threshold,
                    };
                    for m in &r.entity_mappings {
                        for fm in &m.field_mappings {
                            match f.column_index(&fm.column_name) {
                                Some(i) => {
                                    for row in &f.rows {
                                        let v = row[i].to_text();
                                        let e = format!("{}: {v}", m.entity_type);
                                        if !v.is_empty() && !result.entities.contains(&e) {
                                            result.entities.push(e);
                                        }
                                    }
                                }
                                None => result.error = Some(format!("entity mapping column '{}' is not in the result", fm.column_name)),
                            }
                        }
                    }
                    if let Some(t) = r.alert_details_override.as_ref().and_then(|a| a.get("alertDisplayNameFormat")).and_then(Value::as_str) {
                        let per_result =
                            r.event_grouping_settings.as_ref().and_then(|g| g.get("aggregationKind")).and_then(Value::as_str) == Some("AlertPerResult");
                        let rows: Vec<_> = if per_result { f.rows.iter().collect() } else { f.rows.iter().take(1).collect() };
                        result.alert_names = rows.into_iter().map(|row| format_alert(t, &f, row)).collect();
                    }
                }
            }
            result
        })
        .collect()
}

pub fn render(results: &[RuleResult]) -> String {
    let mut out = String::new();
    for r in results {
        let state = match (&r.error, r.fires) {
            (Some(_), _) => "ERROR",
            (None, true) => "FIRES",
            (None, false) => "quiet",
        };
        out += &format!("{state:<6} {} [{}] rows={}\n", r.name, r.severity, r.rows);
        if let Some(e) = &r.error {
            out += &format!("       error: {e}\n");
        }
        for a in r.alert_names.iter().take(5) {
            out += &format!("       alert: {a}\n");
        }
        if !r.entities.is_empty() {
            out += &format!("       entities: {}\n", r.entities.iter().take(10).cloned().collect::<Vec<_>>().join(", "));
        }
    }
    out
}

/// `sentinel-bridge rules test`: the rules file over the local workspace, as a table or JSON.
pub fn run(settings: &crate::settings::Settings, path: &std::path::Path, json: bool) -> super::CliResult {
    let ws = super::workspace::open_local_workspace(settings, None, true)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rules = parse_rules(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let report = test_rules(&rules, &ws, crate::model::time::now_ticks());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}
