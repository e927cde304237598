//! `sentinel-bridge doctor`: does a deployment work, before the first vendor event? Each check is one line,
//! `ok`, `warn` or `fail`, with what it found and, for a failure, the fix in one sentence. The checks
//! ([`checks`]) use the same settings, credential and clients as `serve`, against Azure or the local workspace
//! alike; `--canary` also writes one marked row per stream and reads it back ([`canary`]). The report is
//! served, cached, at `GET /api/doctor` and summarised in `/api/health`.

pub mod canary;
pub mod checks;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::azure::identity::Credential;
use crate::azure::logs_ingestion::IngestionClient;
use crate::delivery::replay::ReplayGuard;
use crate::delivery::spill::SpillBackend;
use crate::enrich::EnrichmentState;
use crate::mapping::auth::Verifier;
use crate::mapping::Catalog;
use crate::sekoia::SekoiaClient;
use crate::settings::Settings;

/// What the checks look at: the deployment's pieces as start-up built them, borrowed from the functions'
/// state (`AppState::deployment`), so the doctor sees exactly what `serve` runs with.
pub struct Deployment<'a> {
    pub catalog: &'a Catalog,
    pub sekoia: &'a BTreeMap<String, Arc<SekoiaClient>>,
    pub spill: &'a Option<SpillBackend>,
    pub ingest: &'a Arc<IngestionClient>,
    pub enricher: &'a EnrichmentState,
    pub verifiers: &'a HashMap<String, Verifier>,
    pub replay: &'a ReplayGuard,
    pub backend: &'a String,
    pub settings: &'a Settings,
    pub credential: &'a Credential,
    /// The rules' ARM ids (`DCR_RESOURCE_ID`, or the local workspace's), and where ARM is.
    pub dcr_resource_ids: &'a [String],
    pub arm_endpoint: &'a String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One check's line.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name (`token:monitor`, `dcr-streams`, `table:Apono_CL`, …).
    pub check: String,
    pub level: Level,
    /// What it found.
    pub found: String,
    /// For a failure or a warning: what to do, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(check: impl Into<String>, found: impl Into<String>) -> Check {
        Check { check: check.into(), level: Level::Ok, found: found.into(), fix: None }
    }

    pub fn warn(check: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check: check.into(), level: Level::Warn, found: found.into(), fix: Some(fix.into()) }
    }

    pub fn fail(check: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check: check.into(), level: Level::Fail, found: found.into(), fix: Some(fix.into()) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub at: String,
    pub backend: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.level == Level::Fail)
    }

    /// `ok`, or `fail: <check>: <what it found>` for the first failure (as `/api/health` shows it).
    pub fn summary(&self) -> String {
        match self.checks.iter().find(|c| c.level == Level::Fail) {
            None => "ok".into(),
            Some(c) => format!("fail: {}: {}", c.check, c.found),
        }
    }

    /// The lines a terminal shows: `ok   check  found`, and the fix under a failure or warning. Text that came
    /// from a service is printed without its control characters.
    pub fn text(&self) -> String {
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!("{:<4} {:<width$}  {}\n", c.level.word(), c.check, printable(&c.found)));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("     {:<width$}  fix: {}\n", "", printable(fix)));
            }
        }
        let fails = self.checks.iter().filter(|c| c.level == Level::Fail).count();
        let warns = self.checks.iter().filter(|c| c.level == Level::Warn).count();
        out.push_str(&format!("{} checks: {} failed, {} warnings ({})\n", self.checks.len(), fails, warns, self.backend));
        out
    }
}

fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What a run does beyond the read-only checks.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Write one canary row per stream and read it back.
    pub canary: bool,
    /// How long the canary may take to come back (ingestion latency is minutes in Azure).
    pub wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { canary: false, wait: Duration::from_secs(300) }
    }
}

/// The last report `/api/doctor` served, and when it was made.
#[derive(Default)]
pub struct Cache(tokio::sync::Mutex<Option<(Instant, Report)>>);

/// How long `/api/doctor` serves a report before it runs the checks again.
pub const CACHE_FOR: Duration = Duration::from_secs(600);

impl Cache {
    /// The cached report, or a new one (never with a canary) when there is none or it is older than
    /// [`CACHE_FOR`]; concurrent callers wait for one run.
    pub async fn get_or_run(&self, state: &Deployment<'_>) -> Report {
        let mut held = self.0.lock().await;
        if let Some((at, r)) = held.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return r.clone();
            }
        }
        let report = checks::run(state, Options::default()).await;
        *held = Some((Instant::now(), report.clone()));
        report
    }

    /// The cached report's summary, without running anything (`/api/health` must stay cheap).
    pub fn summary(&self) -> String {
        match self.0.try_lock() {
            Ok(held) => held.as_ref().map_or_else(|| "not run yet".into(), |(_, r)| r.summary()),
            Err(_) => "running".into(),
        }
    }
}
