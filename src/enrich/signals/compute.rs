//! Hourly series (Perf counters, AzureMetrics) scored against what is normal for this entity.
//!
//! - **Expected value**: the median of the baseline at the same hour of the same weekday when the baseline
//!   spans two weeks and that slot has two values (a Sunday-night batch is that host's Sunday night), else at
//!   the same hour of any day (a nightly batch is its every night), else the series' median.
//! - **Spread**: the median absolute deviation of the baseline from its hour of day (× 1.4826), floored at 5%
//!   of the series' median (and 1.0 for percentages) so a flat baseline does not turn noise into alarms.
//! - **Score**: z = (value − expected) / spread; |z| ≥ 4 is anomalous; strength grows with z (4 → 0.4, 10 → 1).
//! - **Monthly recurrence**: a spike at the hour a spike of at least half its size happened on the same day of
//!   the previous month (or both on a month's last day) is the entity's routine, not an anomaly.
//! - **Partial bins**: a bin holding fewer than ¾ of the series' usual samples (the window's last hour, still
//!   filling) is never scored against full ones; it is left out. An hour of day with under four days of
//!   values has no expectation of its own yet: the series' median stands in; under a week of history, only
//!   a level high in itself (60% CPU, ten times the usual bytes) is scored.
//! - **Sustained**: four or more consecutive anomalous hours of CPU at 80% or more is `cpu_sustained`.
//! - **Routine load**: CPU at 60% or more, or bytes at five times the median, that the entity's own history
//!   expects at that hour is `load_routine`: evidence for benign load.

use std::collections::BTreeMap;

use super::{median, Evidence, Signal, SignalKind, THIN_BASELINE_DAYS};
use crate::enrich::rows::MetricHour;
use crate::model::time::{format_ticks, TICKS_PER_SEC};

const HOUR: i64 = 3600 * TICKS_PER_SEC;
const DAY: i64 = 24 * HOUR;

/// What a metric means when it moves: (signal, whether a rise is the anomaly, a percentage, what it is).
fn metric_signal(counter: &str) -> Option<(SignalKind, bool, bool, &'static str)> {
    Some(match counter {
        "% Processor Time" | "Percentage CPU" | "CpuPercentage" => (SignalKind::CpuSpike, true, true, "CPU spike"),
        "Bytes Sent/sec" | "Network Out Total" | "Egress" => (SignalKind::NetworkOutSpike, true, false, "outbound data spike"),
        "Bytes Received/sec" | "Network In Total" => (SignalKind::NetworkInSpike, true, false, "inbound traffic spike"),
        "Available MBytes" => (SignalKind::MemoryPressure, false, false, "free memory collapse"),
        // Azure SQL Database's "Log IO percentage": encryption in place rewrites every page through the log.
        "log_write_percent" => (SignalKind::DbWriteSurge, true, true, "database log-write surge"),
        // A storage account's bytes written (mass overwrite with encrypted copies).
        "Ingress" => (SignalKind::StorageWriteSurge, true, false, "storage write surge"),
        // A service working worse than at its own hours: Azure SQL's CPU, DTU and deadlocks, App Service's
        // server errors and response time (its metrics reference), and workspace-based Application Insights'
        // failed requests, 95th-percentile duration and exceptions (`app_requests.kql`).
        "cpu_percent" | "dtu_consumption_percent" => (SignalKind::ServiceDegraded, true, true, "service degradation"),
        "deadlock" | "Http5xx" | "AverageResponseTime" | "HttpResponseTime" | "FailedRequests" | "DurationP95" | "Exceptions" => {
            (SignalKind::ServiceDegraded, true, false, "service degradation")
        }
        _ => return None,
    })
}

/// Hour of day and weekday (0 = Monday) of a tick count (ticks count from the Unix epoch, a Thursday).
fn slot(t: i64) -> (i64, i64) {
    (t.div_euclid(HOUR).rem_euclid(24), (t.div_euclid(DAY) + 3).rem_euclid(7))
}

/// The calendar day of the month, and whether the day is its month's last.
fn day_of_month(t: i64) -> (u32, bool) {
    let day = |t: i64| format_ticks(t).get(8..10).and_then(|d| d.parse::<u32>().ok()).unwrap_or(0);
    (day(t), day(t + DAY) == 1)
}

struct Point {
    t: i64,
    v: f64,
    samples: f64,
}

/// What the scoring found, besides signals: entities whose history was too short to score at all.
#[derive(Debug, Default)]
pub struct Scored {
    pub signals: Vec<Signal>,
    pub notes: Vec<String>,
}

/// Scores hourly series (key, metric, time, value and samples) from `table`.
pub fn compute(hours: &[MetricHour], table: &str, window_start: i64) -> Scored {
    let mut out = Scored::default();
    let mut series: BTreeMap<(String, String), Vec<Point>> = BTreeMap::new();
    for r in hours {
        if let (Some(t), Some(v)) = (r.time, r.value) {
            let samples = r.samples.unwrap_or(1.0);
            series.entry((r.key.clone(), r.metric.clone())).or_default().push(Point { t, v, samples });
        }
    }
    // Per signal: (score, thin baseline days, evidence).
    type Found = Vec<(f64, Option<f64>, Evidence)>;
    let mut found: BTreeMap<SignalKind, Found> = BTreeMap::new();
    for ((key, metric), mut points) in series {
        let Some((signal, rise, percent, _)) = metric_signal(&metric) else { continue };
        points.sort_by_key(|p| p.t);
        let mut counts: Vec<f64> = points.iter().map(|p| p.samples).collect();
        let usual = median(&mut counts);
        // A bin with fewer samples than usual (the last hour, still filling) is not comparable: left out.
        points.retain(|p| p.samples >= 0.75 * usual);
        let (base, window): (Vec<&Point>, Vec<&Point>) = points.iter().partition(|p| p.t < window_start);
        if window.is_empty() {
            continue;
        }
        if base.len() < 24 {
            let note = format!("{key}: under a day of {table} history before the window, not scored");
            if !out.notes.contains(&note) {
                out.notes.push(note);
            }
            continue;
        }
        let span_days = (window_start - base[0].t) as f64 / DAY as f64;
        let thin = (span_days < THIN_BASELINE_DAYS).then_some((span_days * 10.0).round() / 10.0);
        let mut all: Vec<f64> = base.iter().map(|p| p.v).collect();
        let overall = median(&mut all);
        let mut by_hour: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        let mut by_slot: BTreeMap<(i64, i64), Vec<f64>> = BTreeMap::new();
        for p in &base {
            let (h, d) = slot(p.t);
            by_hour.entry(h).or_default().push(p.v);
            by_slot.entry((d, h)).or_default().push(p.v);
        }
        // An hour of day needs four days of values to say what is usual at it (fewer, and its median fits the
        // noise it is judged by); until then the series' median stands.
        let hourly: BTreeMap<i64, f64> = by_hour.into_iter().filter(|(_, v)| v.len() >= 4).map(|(h, mut v)| (h, median(&mut v))).collect();
        let weekly: BTreeMap<(i64, i64), f64> =
            if span_days >= 14.0 { by_slot.into_iter().filter(|(_, v)| v.len() >= 2).map(|(k, mut v)| (k, median(&mut v))).collect() } else { BTreeMap::new() };
        let expect = |t: i64| {
            let (h, d) = slot(t);
            weekly.get(&(d, h)).or_else(|| hourly.get(&h)).copied().unwrap_or(overall)
        };
        // The spread from the hour-of-day groups (a month of values each): a weekday slot holds four, and its
        // in-sample deviations would understate the noise.
        let mut residuals: Vec<f64> = base.iter().map(|p| (p.v - hourly.get(&slot(p.t).0).copied().unwrap_or(overall)).abs()).collect();
        let mad = median(&mut residuals) * 1.4826;
        // At least one unit (a point of percentage, one byte, one failed request): a series that was flat at zero
        // all month is not infinitely surprised by its first event.
        let spread = mad.max(overall.abs() * 0.05).max(1.0);
        let z_of = |p: &Point| {
            let z = (p.v - expect(p.t)) / spread;
            if rise {
                z
            } else {
                -z
            }
        };
        // The same hour, a month earlier (the same day of the month, or both a month's last day).
        let recurs = |p: &Point| {
            let (dom, last) = day_of_month(p.t);
            base.iter().any(|b| {
                let (bdom, blast) = day_of_month(b.t);
                p.t - b.t >= 20 * DAY && slot(b.t).0 == slot(p.t).0 && (bdom == dom || (last && blast)) && b.v >= 0.5 * p.v && z_of(b) >= 4.0
            })
        };
        // Under a week of history, what is usual on other weekdays and hours is unknown: only a level that is
        // high in itself (60% CPU, ten times the usual bytes) is scored.
        let plausible = |p: &Point| thin.is_none() || !rise || if percent { p.v >= 60.0 } else { p.v >= 10.0 * overall.abs() };
        let scored: Vec<(f64, bool, &Point)> = window.iter().map(|p| (if plausible(p) { z_of(p) } else { z_of(p).min(3.9) }, recurs(p), *p)).collect();
        let best = scored.iter().filter(|(z, r, _)| *z >= 4.0 && !r).max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(&(z, _, p)) = best {
            let e = expect(p.t);
            let detail = format!("{metric} {:.1} against an expected {e:.1} for that hour (z = {z:.1})", p.v);
            found.entry(signal).or_default().push((z, thin, Evidence { table: table.into(), time: format_ticks(p.t), key: key.clone(), detail }));
            if signal == SignalKind::CpuSpike {
                // The longest run of consecutive anomalous hours at 80% or more.
                let (mut run, mut longest, mut prev) = (0i64, 0i64, None::<i64>);
                for (z, r, q) in &scored {
                    if *z >= 4.0 && !r && q.v >= 80.0 {
                        run = if prev.is_some_and(|t| q.t - t == HOUR) { run + 1 } else { 1 };
                        prev = Some(q.t);
                        longest = longest.max(run);
                    } else {
                        run = 0;
                        prev = None;
                    }
                }
                if longest >= 4 {
                    let detail = format!("{longest} consecutive hours of CPU at 80% or more, each anomalous for its hour");
                    let strength = (longest as f64 / 8.0).min(1.0);
                    found.entry(SignalKind::CpuSustained).or_default().push((
                        strength * 10.0,
                        thin,
                        Evidence { table: table.into(), time: format_ticks(p.t), key: key.clone(), detail },
                    ));
                }
            }
        }
        // Load that is high in itself, yet what this entity does at that hour (or did a month ago). Errors and
        // latency are not load: an app that fails every night is not evidence that tonight's load is expected.
        if signal == SignalKind::ServiceDegraded {
            continue;
        }
        let high = |p: &Point| if percent { p.v >= 60.0 } else { rise && p.v >= 5.0 * overall.abs().max(1.0) };
        if let Some(&(z, r, p)) = scored.iter().filter(|(z, r, p)| high(p) && (*z < 3.0 || *r)).max_by(|a, b| a.2.v.total_cmp(&b.2.v)) {
            let why = if r { "as it did at the same hour a month ago".to_string() } else { format!("the usual {:.1} for that hour (z = {z:.1})", expect(p.t)) };
            let detail = format!("{metric} {:.1} is this entity's normal: {why}", p.v);
            found.entry(SignalKind::LoadRoutine).or_default().push((
                5.0,
                thin,
                Evidence { table: table.into(), time: format_ticks(p.t), key: key.clone(), detail },
            ));
        }
    }
    for (name, mut ev) in found {
        ev.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.key.cmp(&b.2.key)));
        let top = ev[0].0;
        let keys: Vec<String> = ev.iter().map(|(_, _, e)| e.key.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let thin = ev
            .iter()
            .map(|(_, t, _)| *t)
            .reduce(|a, b| match (a, b) {
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            })
            .flatten();
        let (summary, strength, routine) = match name {
            SignalKind::CpuSustained => (format!("sustained CPU on {} ({table})", keys.join(", ")), (top / 10.0).min(1.0), false),
            SignalKind::LoadRoutine => (format!("high load on {} that its own history expects ({table})", keys.join(", ")), 0.5, true),
            _ => {
                let what = metric_signal_title(name);
                (format!("{what} on {} (peak z = {top:.1}, {table})", keys.join(", ")), (top / 10.0).clamp(0.4, 1.0), false)
            }
        };
        out.signals.push(Signal {
            name,
            family: "compute",
            summary,
            strength,
            routine,
            thin_baseline_days: thin,
            evidence: ev.into_iter().map(|(_, _, e)| e).take(5).collect(),
        });
    }
    out
}

fn metric_signal_title(name: SignalKind) -> &'static str {
    match name {
        SignalKind::CpuSpike => "CPU spike",
        SignalKind::NetworkOutSpike => "outbound data spike",
        SignalKind::NetworkInSpike => "inbound traffic spike",
        SignalKind::MemoryPressure => "free memory collapse",
        SignalKind::DbWriteSurge => "database log-write surge",
        SignalKind::StorageWriteSurge => "storage write surge",
        SignalKind::ServiceDegraded => "service degradation",
        _ => "metric spike",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: Vec<(i64, f64, f64)>, metric: &str) -> Vec<MetricHour> {
        rows.into_iter().map(|(t, v, s)| MetricHour { key: "h".into(), metric: metric.into(), time: Some(t), value: Some(v), samples: Some(s) }).collect()
    }

    const T0: i64 = 739_000 * DAY;

    /// Three weeks of a counter with a rhythm, then a window.
    fn history(f: impl Fn(i64) -> f64) -> Vec<(i64, f64, f64)> {
        (-(21 * 24)..24).map(|h| (T0 + h * HOUR, f(T0 + h * HOUR), 12.0)).collect()
    }

    #[test]
    fn a_nightly_batch_is_the_host_s_normal_and_a_new_spike_is_not() {
        let batch = |t: i64| if (1..3).contains(&slot(t).0) { 85.0 } else { 10.0 + (t / HOUR % 3) as f64 };
        let s = compute(&frame(history(batch), "% Processor Time"), "Perf", T0);
        assert!(s.signals.iter().all(|x| x.name != SignalKind::CpuSpike), "{:?}", s.signals);
        assert!(s.signals.iter().any(|x| x.name == SignalKind::LoadRoutine && x.routine));
        let spike = |t: i64| if (T0 + 12 * HOUR..T0 + 18 * HOUR).contains(&t) { 97.0 } else { batch(t) };
        let s = compute(&frame(history(spike), "% Processor Time"), "Perf", T0);
        let names: Vec<SignalKind> = s.signals.iter().map(|x| x.name).collect();
        assert!(names.contains(&SignalKind::CpuSpike) && names.contains(&SignalKind::CpuSustained), "{names:?}");
    }

    #[test]
    fn a_partial_last_bin_is_never_scored_against_full_ones() {
        // Free memory steady at 6000; the window's last hour holds one sample of a dip.
        let mut rows = history(|_| 6000.0 + 0.0);
        let last = rows.len() - 1;
        rows[last] = (rows[last].0, 100.0, 1.0);
        let s = compute(&frame(rows.clone(), "Available MBytes"), "Perf", T0);
        assert!(s.signals.is_empty(), "{:?}", s.signals);
        // The same dip over a full hour is a collapse.
        rows[last].2 = 12.0;
        let s = compute(&frame(rows, "Available MBytes"), "Perf", T0);
        assert_eq!(s.signals[0].name, SignalKind::MemoryPressure);
    }

    #[test]
    fn a_weekly_batch_is_scored_against_its_own_weekday() {
        let sunday = |t: i64| if slot(t).1 == 6 && (1..4).contains(&slot(t).0) { 90.0 } else { 12.0 };
        // The window starts on the Sunday (day 6 of the tick calendar) of the fourth week.
        let start = T0 + ((6 - slot(T0).1).rem_euclid(7)) * DAY;
        let rows: Vec<(i64, f64, f64)> = (-(21 * 24)..30).map(|h| (start + h * HOUR, sunday(start + h * HOUR), 12.0)).collect();
        let s = compute(&frame(rows, "% Processor Time"), "Perf", start);
        assert!(s.signals.iter().all(|x| x.name != SignalKind::CpuSpike), "{:?}", s.signals);
    }

    #[test]
    fn a_short_history_marks_its_signals_thin() {
        let rows: Vec<(i64, f64, f64)> = (-48..24).map(|h| (T0 + h * HOUR, if h >= 10 { 97.0 } else { 10.0 }, 12.0)).collect();
        let s = compute(&frame(rows, "% Processor Time"), "Perf", T0);
        let spike = s.signals.iter().find(|x| x.name == SignalKind::CpuSpike).unwrap();
        assert_eq!(spike.thin_baseline_days, Some(2.0));
    }
}
