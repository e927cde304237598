//! The incident comment, read in ten seconds: the leading hypothesis and its reason, the entry point, the
//! business impact, the recommendation; then compact evidence tables in which every claim cites its source rows (table, time, key). Every data value is
//! HTML-escaped. The comment fits a size budget by dropping whole evidence rows (and saying how many), never
//! by cutting markup.

use super::hypotheses::{band, Hypothesis};
use super::signals::Signal;
use super::QueryRun;
use crate::model::text::count;

/// HTML-escapes a value after making its hidden characters visible (`model::text::printable`).
pub fn escape(s: &str) -> String {
    let s = crate::model::text::printable(s, usize::MAX);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value after shortening it to `max` characters, so one huge value cannot crowd out the rest.
fn v(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        escape(&(s.chars().take(max - 1).collect::<String>() + "…"))
    } else {
        escape(s)
    }
}

pub struct CommentInput<'a> {
    pub version: &'a str,
    pub hypotheses: &'a [Hypothesis],
    pub signals: &'a [Signal],
    pub queries: &'a [QueryRun],
    /// The lead's reason in one sentence (or, with no finding, what was and was not read); plain text.
    pub reason: &'a str,
    /// The paragraph Azure OpenAI wrote from the findings, when it did; plain text.
    pub summary: Option<&'a str>,
    /// In a kill chain, the entry point the lead names, and how it shows; plain text.
    pub entry_point: Option<(&'a Hypothesis, &'a str)>,
    /// What the assets are worth (`impact::Impact::line`); plain text.
    pub impact: Option<&'a str>,
    /// The names the entities matched in the telemetry, as "name (table)".
    pub names: &'a [String],
    /// The entities nothing matched.
    pub unmatched: &'a [String],
    /// What limits the findings (thin baselines, capped confidences).
    pub notes: &'a [String],
}

/// Renders the comment within `budget` characters, in the order an analyst reads it: the lead and why, the
/// entry point, the recommendation; then what limits it, the names matched, the other hypotheses (never the
/// entry point again), and the evidence table.
pub fn render(input: &CommentInput, budget: usize) -> String {
    let lead = &input.hypotheses[0];
    let mut head = format!(
        "<p><b>sentinel-bridge enrichment {}</b>: <b>{}</b>, confidence {:.2} ({}). {}</p>",
        v(input.version, 20),
        v(lead.title, 60),
        lead.confidence,
        band(lead.confidence),
        v(input.reason, 700),
    );
    let entry = input.entry_point;
    if let Some((h, how)) = entry {
        head.push_str(&format!("<p><b>Entry point:</b> {}, confidence {:.2}: {}</p>", v(h.title, 60), h.confidence, v(how, 500)));
    }
    if let Some(impact) = input.impact {
        head.push_str(&format!("<p><b>Business impact:</b> {}</p>", v(impact, 600)));
    }
    head.push_str(&format!("<p><b>Recommendation:</b> {}</p>", v(&lead.recommendation, 700)));
    if let Some(summary) = input.summary {
        head.push_str(&format!("<p><b>Summary</b> (written by Azure OpenAI from the findings): {}</p>", v(summary, 700)));
    }
    if !input.notes.is_empty() {
        let notes: Vec<String> = input.notes.iter().take(4).map(|n| v(n, 160)).collect();
        head.push_str(&format!("<p><b>Limits:</b> {}.</p>", notes.join("; ")));
    }
    if !input.names.is_empty() || !input.unmatched.is_empty() {
        let names: Vec<String> = input.names.iter().take(8).map(|n| v(n, 140)).collect();
        let mut line = format!("<p><b>Names matched:</b> {}", if names.is_empty() { "none".to_string() } else { names.join(", ") });
        if input.names.len() > 8 {
            line.push_str(&format!(" and {} more", input.names.len() - 8));
        }
        if !input.unmatched.is_empty() {
            let un: Vec<String> = input.unmatched.iter().take(6).map(|n| v(n, 100)).collect();
            line.push_str(&format!("; matched nothing: {}", un.join(", ")));
        }
        line.push_str(".</p>");
        head.push_str(&line);
    }
    let others: Vec<String> = input.hypotheses[1..]
        .iter()
        .filter(|h| h.confidence > 0.0 && Some(h.id) != entry.map(|(e, _)| e.id))
        .map(|h| format!("{} {:.2}", v(h.title, 40), h.confidence))
        .collect();
    if !others.is_empty() {
        head.push_str(&format!("<p>Other hypotheses: {}.</p>", others.join(", ")));
    }
    let degraded: Vec<String> = input.queries.iter().filter(|q| q.failed()).map(|q| format!("{} ({})", v(&q.name, 40), v(&q.status.to_string(), 80))).collect();
    let footer = format!(
        "<p>{} queries run{}. Details in IncidentEnrichment_CL and EnrichmentAudit_CL.</p>",
        input.queries.iter().filter(|q| !matches!(q.status, super::RunStatus::Skipped(_))).count(),
        if degraded.is_empty() { String::new() } else { format!("; degraded, results may be incomplete: {}", degraded.join(", ")) }
    );

    // Evidence rows in the leading hypothesis' order first, then the rest.
    let mut ordered: Vec<&Signal> = Vec::new();
    for name in &lead.evidence {
        if let Some(s) = input.signals.iter().find(|s| &s.name == name) {
            ordered.push(s);
        }
    }
    for s in input.signals {
        if !ordered.iter().any(|o| o.name == s.name) {
            ordered.push(s);
        }
    }
    let table_open = "<table><tr><th>Signal</th><th>Evidence</th><th>Source (table, time, key)</th></tr>";
    let table_close = "</table>";
    let mut rows: Vec<String> = Vec::new();
    for s in &ordered {
        for (i, e) in s.evidence.iter().enumerate() {
            let label = if i == 0 { format!("{} ({:.2})", v(&s.summary, 120), s.strength) } else { String::new() };
            rows.push(format!("<tr><td>{label}</td><td>{}</td><td>{}, {}, {}</td></tr>", v(&e.detail, 160), v(&e.table, 40), v(&e.time, 30), v(&e.key, 80)));
        }
    }
    let total = rows.len();
    let omitted = |n: usize| if n == 0 { String::new() } else { format!("<p>{} omitted for length.</p>", count(n, "more evidence row", "more evidence rows")) };
    // Keep as many whole rows as fit, with room for the note about the rest.
    let fixed = head.len() + footer.len() + table_open.len() + table_close.len();
    let mut body = String::new();
    let mut kept = 0;
    for r in &rows {
        let note = omitted(total - kept - 1);
        if fixed + body.len() + r.len() + note.len() > budget {
            break;
        }
        body.push_str(r);
        kept += 1;
    }
    let mut out = head;
    if kept > 0 {
        out.push_str(table_open);
        out.push_str(&body);
        out.push_str(table_close);
    } else if total == 0 {
        out.push_str("<p>No anomalous signal in the surrounding telemetry.</p>");
    }
    out.push_str(&omitted(total - kept));
    if out.len() + footer.len() <= budget {
        out.push_str(&footer);
    }
    if out.len() > budget {
        // Even the narrative does not fit: the essentials only, still well-formed.
        out = format!(
            "<p><b>sentinel-bridge enrichment</b>: <b>{}</b>, confidence {:.2} ({}). Details in IncidentEnrichment_CL.</p>",
            v(lead.title, 60),
            lead.confidence,
            band(lead.confidence)
        );
    }
    out
}
