//! Stage three: the hypotheses from the signals (the fitted model of [`super::hypotheses`]), the kill chain's
//! entry point, how sure "no corroborated threat" may be, and what limits the findings.

use super::correlate::Correlation;
use super::entities::Subjects;
use super::hypotheses::{self, Hypothesis, HypothesisId};
use super::{EnrichSettings, RunStatus};

/// What inference decided.
pub struct Inferred {
    /// The leading finding first.
    pub hypotheses: Vec<Hypothesis>,
    /// In a kill chain that leads with its impact, the hypothesis that let it happen.
    pub entry_point: Option<HypothesisId>,
    /// What limits the findings: thin baselines, capped confidences, history too short to score.
    pub notes: Vec<String>,
}

pub fn infer(settings: &EnrichSettings, subjects: &Subjects, c: &Correlation) -> Inferred {
    // A thin baseline never reaches the act threshold.
    let cap = (settings.act_threshold - 0.05).max(0.0);
    let inference = hypotheses::infer(
        &c.signals,
        &hypotheses::Subjects { accounts: &subjects.accounts, hosts: &subjects.hosts, resources: &subjects.resources, ips: &subjects.ips },
        hypotheses::Model::fitted(),
        cap,
    );
    let mut hyps = inference.hypotheses;
    // "No corroborated threat" is a finding about the data read: it is only as sure as the share of the
    // correlation queries that ran, and of the entities that matched anything (none, nothing known).
    let ran = c.runs.iter().filter(|r| r.status == RunStatus::Ok).count();
    let given = c.entity_count.max(1);
    let matched_share = if c.entity_count == 0 { 1.0 } else { (given - c.resolution.unmatched.len().min(given)) as f64 / given as f64 };
    if let Some(lead) = hyps.first_mut().filter(|h| h.id == HypothesisId::NoFinding) {
        lead.confidence = (lead.confidence * ran as f64 / c.runs.len().max(1) as f64 * matched_share * 100.0).round() / 100.0;
    }
    let entry_point = inference.entry_point.filter(|_| hyps[0].id.is_impact());
    let mut notes: Vec<String> = c.notes.clone();
    for (kind, n) in &subjects.left_out {
        notes.push(format!("{n} {kind} of the incident were not correlated: at most {} of each kind are", super::entities::MAX_PER_KIND));
    }
    notes.extend(hyps.iter().filter_map(|h| h.capped.as_ref().map(|why| format!("{}: {why}", h.title))));
    // A thin baseline is said even when the confidence stayed under the cap on its own.
    for s in c.signals.iter().filter(|s| s.thin_baseline_days.is_some()) {
        let days = s.thin_baseline_days.unwrap_or(0.0);
        notes.push(format!("{}: only {days:.1} days of history, under a week; what rests on it is capped at {cap:.2}", s.name));
    }
    Inferred { hypotheses: hyps, entry_point, notes }
}
