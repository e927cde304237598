//! `sentinel-bridge doctor [--json] [--canary] [--wait SECS]`: builds the bridge from the same settings as
//! `serve`, runs [`crate::doctor`]'s checks, prints one line per check (or JSON) and exits 0 when nothing
//! failed, 1 otherwise. A setting or start-up failure is the report's one failing line.

use std::process::ExitCode;
use std::time::Duration;

use crate::app::Bridge;
use crate::doctor::{Check, Options, Report};
use crate::settings::{SettingError, Settings};

pub async fn run(settings: Result<Settings, SettingError>, json: bool, canary: bool, wait_secs: u64) -> ExitCode {
    let options = Options { canary, wait: Duration::from_secs(wait_secs) };
    let report = match settings {
        Err(e) => alone("settings", e.to_string(), format!("fix {} (the README's settings table says what it takes)", e.setting)),
        Ok(s) => match Bridge::build(&s).await {
            Err(e) => alone("startup", e.to_string(), "fix what the line names; `serve` would stop on it too".into()),
            Ok(bridge) => {
                let report = crate::doctor::checks::run(&bridge.state.deployment(), options).await;
                bridge.shutdown().await;
                report
            }
        },
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.text());
    }
    if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn alone(check: &str, found: String, fix: String) -> Report {
    Report { at: crate::model::time::format_datetime(time::OffsetDateTime::now_utc()), backend: "none".into(), checks: vec![Check::fail(check, found, fix)] }
}
