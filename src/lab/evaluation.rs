//! Measuring the model the way a detection engineer would: every case of the labelled suite is staged into a
//! fresh local workspace and enriched end to end by [`super::harness`] (the Query, Sentinel and ingestion
//! APIs over loopback HTTP, `act` mode at the default threshold), and the outcomes are scored here: per hypothesis, precision and recall of
//! the leading finding; the Brier score of the confidences; a reliability table (confidence bins against how
//! often the finding was right); kill chains whose entry point was named; and benign cases whose severity was
//! raised, which must be none.

use serde::Serialize;

use super::suite::Truth;
use super::world::CaseSpec;
use crate::enrich::hypotheses::{direction, features, infer, logit, Combiner, Direction, HypothesisId, Logistic, Model, FEATURES, SCORED};
use crate::enrich::signals::Feature;
use crate::enrich::signals::Signal;
use crate::enrich::{EnrichSettings, RunStatus};

/// One case's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub spec: CaseSpec,
    pub truth: Truth,
    pub lead: HypothesisId,
    pub confidence: f64,
    pub entry_point: Option<HypothesisId>,
    /// Every hypothesis' confidence, the lead's included.
    pub confidences: Vec<(HypothesisId, f64)>,
    pub signals: Vec<Signal>,
    pub severity_raised: bool,
    /// Each query's name, status and rows (a degraded run is a bug in the suite, not in the case).
    pub queries: Vec<(String, RunStatus, usize)>,
    /// The comment as posted, and what limited the findings.
    #[serde(skip)]
    pub comment_html: String,
    #[serde(skip)]
    pub recommendation: String,
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn right(&self) -> bool {
        self.lead == self.truth.lead
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PerHypothesis {
    pub id: HypothesisId,
    /// Cases whose truth leads with it.
    pub support: usize,
    /// Cases the model led with it.
    pub predicted: usize,
    pub precision: f64,
    pub recall: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    pub from: f64,
    pub to: f64,
    pub cases: usize,
    pub mean_confidence: f64,
    /// How often the leading finding was right in the bin.
    pub observed: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cases: usize,
    pub right_leads: usize,
    pub accuracy: f64,
    pub per_hypothesis: Vec<PerHypothesis>,
    /// Mean (confidence − right)² of the leading finding, cases with something to read.
    pub brier_lead: f64,
    /// Mean over cases and hypotheses of (confidence − true)², each hypothesis judged on its own.
    pub brier_all: f64,
    pub reliability: Vec<Bin>,
    pub kill_chains: usize,
    pub kill_chains_entry_named: usize,
    pub benign_cases: usize,
    pub benign_severity_raised: usize,
    pub abstentions: usize,
    pub abstentions_honest: usize,
    /// Seeds of the cases led wrongly, with what was expected and what was said.
    pub wrong: Vec<String>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub fn measure(outcomes: &[Outcome]) -> Report {
    // Every hypothesis the model scores, then "no corroborated threat".
    let per_hypothesis = SCORED
        .iter()
        .chain([&HypothesisId::NoFinding])
        .map(|&id| {
            let support = outcomes.iter().filter(|o| o.truth.lead == id).count();
            let predicted = outcomes.iter().filter(|o| o.lead == id).count();
            let hit = outcomes.iter().filter(|o| o.lead == id && o.truth.lead == id).count();
            PerHypothesis { id, support, predicted, precision: ratio(hit, predicted), recall: ratio(hit, support) }
        })
        .collect();
    let scored: Vec<&Outcome> = outcomes.iter().filter(|o| !o.truth.abstain).collect();
    let brier_lead = scored.iter().map(|o| (o.confidence - if o.right() { 1.0 } else { 0.0 }).powi(2)).sum::<f64>() / scored.len().max(1) as f64;
    let mut all = 0.0;
    let mut n = 0usize;
    for o in &scored {
        let truths = o.spec.true_hypotheses();
        for &(id, c) in &o.confidences {
            if id == HypothesisId::NoFinding {
                continue;
            }
            let y = if truths.contains(&id) { 1.0 } else { 0.0 };
            all += (c - y).powi(2);
            n += 1;
        }
    }
    let mut reliability = Vec::new();
    for k in 0..10 {
        let (from, to) = (k as f64 / 10.0, (k + 1) as f64 / 10.0);
        let inside: Vec<&&Outcome> = scored.iter().filter(|o| o.confidence >= from && (o.confidence < to || (k == 9 && o.confidence <= 1.0))).collect();
        if inside.is_empty() {
            continue;
        }
        let mean = inside.iter().map(|o| o.confidence).sum::<f64>() / inside.len() as f64;
        let right = inside.iter().filter(|o| o.right()).count();
        reliability.push(Bin { from, to, cases: inside.len(), mean_confidence: mean, observed: ratio(right, inside.len()) });
    }
    let chains: Vec<&Outcome> = outcomes.iter().filter(|o| o.truth.entry.is_some()).collect();
    let benign: Vec<&Outcome> = outcomes.iter().filter(|o| o.truth.benign).collect();
    let abstain: Vec<&Outcome> = outcomes.iter().filter(|o| o.truth.abstain).collect();
    let right = outcomes.iter().filter(|o| o.right()).count();
    Report {
        cases: outcomes.len(),
        right_leads: right,
        accuracy: ratio(right, outcomes.len()),
        per_hypothesis,
        brier_lead,
        brier_all: if n == 0 { 0.0 } else { all / n as f64 },
        reliability,
        kill_chains: chains.len(),
        kill_chains_entry_named: chains.iter().filter(|o| o.right() && o.entry_point == o.truth.entry).count(),
        benign_cases: benign.len(),
        benign_severity_raised: benign.iter().filter(|o| o.severity_raised).count(),
        abstentions: abstain.len(),
        abstentions_honest: abstain.iter().filter(|o| o.lead == HypothesisId::NoFinding && o.confidence == 0.0).count(),
        wrong: outcomes
            .iter()
            .filter(|o| !o.right())
            .map(|o| format!("seed {}: {:?}/{:?} {:?} → {} {:.2}", o.spec.seed, o.spec.story, o.spec.entry, o.spec.confounders, o.lead, o.confidence))
            .collect(),
    }
}

/// The report as the README shows it.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "{} cases: {} right leads ({:.1}%); Brier {:.3} (leading finding), {:.3} (every hypothesis on its own)\n",
        r.cases,
        r.right_leads,
        100.0 * r.accuracy,
        r.brier_lead,
        r.brier_all
    );
    out.push_str(&format!(
        "kill chains with the entry point named: {}/{}; benign cases whose severity was raised: {}/{}; cases with nothing to read said so: {}/{}\n\n",
        r.kill_chains_entry_named, r.kill_chains, r.benign_severity_raised, r.benign_cases, r.abstentions_honest, r.abstentions
    ));
    out.push_str("| hypothesis | cases | led with | precision | recall |\n|---|---:|---:|---:|---:|\n");
    for h in &r.per_hypothesis {
        out.push_str(&format!("| {} | {} | {} | {:.2} | {:.2} |\n", h.id, h.support, h.predicted, h.precision, h.recall));
    }
    out.push_str("\n| confidence | cases | mean confidence | observed right |\n|---|---:|---:|---:|\n");
    for b in &r.reliability {
        out.push_str(&format!("| {:.1}–{:.1} | {} | {:.2} | {:.2} |\n", b.from, b.to, b.cases, b.mean_confidence, b.observed));
    }
    out
}

/// Fits the model on the suite's outcomes: per hypothesis, an L2-regularised logistic regression of "the
/// hypothesis is true of the case" (its lead or its entry point) on the features, by projected gradient
/// descent from zero (deterministic) that keeps each weight on the side [`direction`] allows; then the lead and chain thresholds that make the most leads right, re-inferring every
/// case offline from its signals.
pub fn fit(outcomes: &[Outcome]) -> Model {
    let cases: Vec<(&Outcome, Vec<f64>)> = outcomes.iter().filter(|o| !o.truth.abstain).map(|o| (o, features(&o.signals))).collect();
    let n = cases.len().max(1) as f64;
    let dims = FEATURES.len();
    let lambda = 0.0005;
    let mut hypotheses = Vec::new();
    for id in SCORED {
        let ys: Vec<f64> = cases.iter().map(|(o, _)| if o.spec.true_hypotheses().contains(&id) { 1.0 } else { 0.0 }).collect();
        let (mut w, mut b) = (vec![0.0; dims], 0.0);
        let rate = 2.0;
        for _ in 0..12000 {
            let mut gw = vec![0.0; dims];
            let mut gb = 0.0;
            for ((_, x), y) in cases.iter().zip(&ys) {
                let z = b + w.iter().zip(x).map(|(a, v)| a * v).sum::<f64>();
                let err = 1.0 / (1.0 + (-z).exp()) - y;
                gb += err;
                for (g, v) in gw.iter_mut().zip(x) {
                    *g += err * v;
                }
            }
            b -= rate * gb / n;
            // Projected gradient: each weight stays on the side the analyst's table allows (monotone evidence).
            for ((wi, g), f) in w.iter_mut().zip(&gw).zip(FEATURES.iter()) {
                *wi -= rate * (g / n + lambda * *wi);
                *wi = match direction(id, *f) {
                    Direction::Supports => wi.max(0.0),
                    Direction::Opposes => wi.min(0.0),
                    Direction::Silent => 0.0,
                };
            }
        }
        hypotheses.push(Logistic { id, bias: b, weights: w });
    }
    let chain = fit_chain(&cases, &hypotheses);
    let mut best: (usize, f64, f64) = (0, 0.5, 0.5);
    // A finding leads only when it is more likely than not: a lower threshold would let a weak guess lead.
    for lead in (50..=70).step_by(2).map(|k| k as f64 / 100.0) {
        for chain_at in (20..=80).step_by(5).map(|k| k as f64 / 100.0) {
            let m = Model { hypotheses: hypotheses.clone(), lead_threshold: lead, chain_threshold: chain_at, chain };
            let right = outcomes
                .iter()
                .filter(|o| {
                    let i = infer(&o.signals, &crate::enrich::hypotheses::Subjects::default(), &m, 0.75);
                    let lead = if o.truth.abstain { HypothesisId::NoFinding } else { i.hypotheses[0].id };
                    lead == o.truth.lead && (o.truth.entry.is_none() || i.entry_point == o.truth.entry)
                })
                .count();
            // Most right leads; among equals, thresholds nearest the middle.
            let better = right > best.0 || (right == best.0 && (lead - 0.5).abs() + (chain_at - 0.5).abs() < (best.1 - 0.5).abs() + (best.2 - 0.5).abs());
            if better {
                best = (right, lead, chain_at);
            }
        }
    }
    Model { hypotheses, lead_threshold: best.1, chain_threshold: best.2, chain }
}

/// The kill chain's second stage ([`Combiner`]): a logistic regression, over every case and impact hypothesis
/// with evidence of its own whose entry point is established (0.5), of "this impact is the case's" on the logits of its own score and of the entry
/// point's, by projected gradient descent keeping both weights at least 0 (an entry never argues against an
/// impact, nor an impact's evidence against itself).
fn fit_chain(cases: &[(&Outcome, Vec<f64>)], hypotheses: &[Logistic]) -> Combiner {
    let entry = hypotheses.iter().find(|h| h.id == HypothesisId::CredentialCompromise);
    let mut rows: Vec<(f64, f64, f64)> = Vec::new();
    for (o, x) in cases {
        let p_entry = entry.map_or(0.0, |h| h.probability(x));
        for h in hypotheses.iter().filter(|h| h.id.is_impact()) {
            // Only where the impact has evidence of its own, as inference applies it.
            let own = FEATURES.iter().zip(x).zip(&h.weights).any(|((_, v), w)| *v > 0.0 && *w > 0.0);
            if own && p_entry >= 0.5 {
                let y = if o.truth.lead == h.id { 1.0 } else { 0.0 };
                rows.push((logit(h.probability(x)), logit(p_entry), y));
            }
        }
    }
    if rows.is_empty() {
        return Combiner::NONE;
    }
    let n = rows.len() as f64;
    let (mut a, mut b, mut c) = (0.0, 1.0, 0.0);
    let rate = 0.05;
    for _ in 0..20000 {
        let (mut ga, mut gb, mut gc) = (0.0, 0.0, 0.0);
        for (u, v, y) in &rows {
            let err = 1.0 / (1.0 + (-(a + b * u + c * v)).exp()) - y;
            ga += err;
            gb += err * u;
            gc += err * v;
        }
        a -= rate * ga / n;
        b = (b - rate * (gb / n + 0.0005 * b)).max(0.0);
        c = (c - rate * (gc / n + 0.0005 * c)).max(0.0);
    }
    Combiner { bias: a, impact: b, entry: c }
}

/// The fitted model as the source of `src/enrich/weights.rs`.
pub fn weights_source(m: &Model, seeds: (u64, u64)) -> String {
    let mut s = format!(
        "//! The fitted model: written by `sentinel-bridge evaluate --from {} --cases {} --fit src/enrich/weights.rs`\n\
         //! from the labelled suite's seeds {}..{}; do not edit by hand. Weights are per feature (a feature the table\n\
         //! does not name weighs 0); thresholds are the ones that made the most leads right on those seeds.\n\n\
         use super::hypotheses::{{Combiner, HypothesisId, Logistic, Model, WeightTable, FEATURES}};\n\
         use super::signals::{{Feature, SignalKind as S}};\n\n\
         pub const FIT_SEEDS: (u64, u64) = ({}, {});\n\n\
         #[rustfmt::skip]\nconst WEIGHTS: WeightTable = &[\n",
        seeds.0,
        seeds.1 - seeds.0,
        seeds.0,
        seeds.1,
        seeds.0,
        seeds.1
    );
    for h in &m.hypotheses {
        let id = format!("{:?}", h.id);
        s.push_str(&format!("    (HypothesisId::{id}, {:.4}, &[\n", h.bias));
        for (f, w) in FEATURES.iter().zip(&h.weights) {
            if w.abs() >= 0.005 {
                let f = match f {
                    Feature::Signal(k) => format!("Feature::Signal(S::{k:?})"),
                    Feature::Routine(k) => format!("Feature::Routine(S::{k:?})"),
                    Feature::Identity => "Feature::Identity".to_string(),
                };
                s.push_str(&format!("        ({f}, {w:.4}),\n"));
            }
        }
        s.push_str("    ]),\n");
    }
    s.push_str(&format!(
        "];\n\npub const LEAD_THRESHOLD: f64 = {:.2};\npub const CHAIN_THRESHOLD: f64 = {:.2};\n\n\
         /// The kill chain's second stage: an impact with evidence of its own, raised by an established entry.\n\
         pub const CHAIN: Combiner = Combiner {{ bias: {:.4}, impact: {:.4}, entry: {:.4} }};\n\n\
         pub fn model() -> Model {{\n    let hypotheses = WEIGHTS\n        .iter()\n        .map(|(id, bias, w)| Logistic {{\n            id: *id,\n            bias: *bias,\n            weights: FEATURES.iter().map(|f| w.iter().find(|(n, _)| n == f).map_or(0.0, |(_, v)| *v)).collect(),\n        }})\n        .collect();\n    Model {{ hypotheses, lead_threshold: LEAD_THRESHOLD, chain_threshold: CHAIN_THRESHOLD, chain: CHAIN }}\n}}\n",
        m.lead_threshold, m.chain_threshold, m.chain.bias, m.chain.impact, m.chain.entry
    ));
    s
}

/// Re-scores outcomes offline with another model (their signals do not depend on it), as `act` would act at
/// the default threshold.
pub fn reinfer(outcomes: &mut [Outcome], model: &Model) {
    let threshold = EnrichSettings::default().act_threshold;
    for o in outcomes {
        if o.truth.abstain {
            continue;
        }
        let i = infer(&o.signals, &crate::enrich::hypotheses::Subjects::default(), model, threshold - 0.05);
        o.lead = i.hypotheses[0].id;
        o.confidence = i.hypotheses[0].confidence;
        o.entry_point = i.entry_point;
        o.confidences = i.hypotheses.iter().map(|h| (h.id, h.confidence)).collect();
        o.severity_raised = o.lead.is_impact() || o.lead == HypothesisId::CredentialCompromise;
        o.severity_raised &= o.confidence >= threshold;
    }
}

#[cfg(test)]
mod tests {
    /// `weights.rs` is exactly what the writer writes for the model it holds: generated, never edited by hand,
    /// and the writer and the reader agree on every feature.
    #[test]
    fn weights_rs_is_what_the_writer_writes_for_its_model() {
        let written = super::weights_source(crate::enrich::hypotheses::Model::fitted(), crate::enrich::weights::FIT_SEEDS);
        assert_eq!(written, include_str!("../enrich/weights.rs"));
    }
}
