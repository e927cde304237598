//! What happened on the incident's hosts, as their agents record it:
//!
//! - what ran (SecurityEvent 4688 process creations): command lines that take recovery away, as ransomware
//!   does before it encrypts (MITRE T1490, "Inhibit System Recovery"): shadow copies deleted or resized away,
//!   the boot recovery turned off, the backup catalog deleted, free space wiped. Matched on whole words of the
//!   lower-cased command line, never on a tool's name alone (`vssadmin list shadows` is an admin looking);
//! - who logged on (SecurityEvent 4625/4624 network and RDP logons, Syslog sshd): many failures from one
//!   address, then a success from it, is a brute force that got in (T1110). Failures alone (the internet's
//!   scanners knock on every open RDP and SSH port all day) and a few mistypes are not.

use super::{Evidence, Signal, SignalKind};
use crate::enrich::rows::{HostLogons, HostProcess};
use crate::model::text::{count, printable};
use crate::model::time::format_ticks;

/// Each destructive use: every word of it must appear in the command line.
const DESTROYS_RECOVERY: &[(&[&str], &str)] = &[
    (&["vssadmin", "delete", "shadows"], "shadow copies deleted"),
    (&["vssadmin", "resize", "shadowstorage"], "shadow storage shrunk (deletes the copies)"),
    (&["wmic", "shadowcopy", "delete"], "shadow copies deleted"),
    (&["win32_shadowcopy", "delete"], "shadow copies deleted"),
    (&["win32_shadowcopy", "remove-"], "shadow copies deleted"),
    (&["bcdedit", "recoveryenabled", "no"], "boot recovery turned off"),
    (&["bcdedit", "bootstatuspolicy", "ignoreallfailures"], "boot recovery turned off"),
    (&["wbadmin", "delete", "catalog"], "the backup catalog deleted"),
    (&["wbadmin", "delete", "systemstatebackup"], "system state backups deleted"),
    (&["wbadmin", "delete", "backup"], "backups deleted"),
    (&["cipher", "/w"], "free space wiped"),
];

/// The words of a command line: lower-cased, split on what is not part of a word or a switch.
fn words(line: &str) -> Vec<String> {
    line.to_ascii_lowercase()
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/')))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches(".exe").to_string())
        .collect()
}

/// What a command line does to recovery, if anything.
pub fn destroys_recovery(line: &str) -> Option<&'static str> {
    let w = words(line);
    let has = |needle: &str| if needle.ends_with('-') { w.iter().any(|x| x.starts_with(needle)) } else { w.iter().any(|x| x == needle) };
    DESTROYS_RECOVERY.iter().find(|(all, _)| all.iter().all(|n| has(n))).map(|(_, what)| *what)
}

pub fn host_processes(rows: &[HostProcess]) -> Vec<Signal> {
    let mut evidence = Vec::new();
    for r in rows {
        let Some(what) = destroys_recovery(&r.command_line) else { continue };
        evidence.push(Evidence {
            table: "SecurityEvent".into(),
            time: r.time.map(format_ticks).unwrap_or_default(),
            key: r.computer.clone(),
            detail: format!("{what}: {} (by {})", printable(&r.command_line, 200), printable(&r.account, 80)),
        });
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    let hosts: std::collections::BTreeSet<&str> = evidence.iter().map(|e| e.key.as_str()).collect();
    let summary =
        format!("{} taking recovery away on {}", count(evidence.len(), "command", "commands"), hosts.into_iter().take(3).collect::<Vec<_>>().join(", "));
    vec![Signal {
        name: SignalKind::ShadowCopyDeleted,
        family: "host",
        summary,
        strength: 0.9,
        routine: false,
        thin_baseline_days: None,
        evidence: evidence.into_iter().take(5).collect(),
    }]
}

/// Failed logons from one address before a success from it counts as a brute force that got in.
pub const BRUTE_FORCE_FAILURES: f64 = 10.0;

pub fn host_logons(rows: &[HostLogons]) -> Vec<Signal> {
    let mut evidence = Vec::new();
    for r in rows {
        let (failures, successes) = (r.failures.unwrap_or(0.0), r.successes.unwrap_or(0.0));
        if failures < BRUTE_FORCE_FAILURES || successes < 1.0 {
            continue;
        }
        evidence.push(Evidence {
            table: "SecurityEvent, Syslog".into(),
            time: r.last.or(r.first).map(format_ticks).unwrap_or_default(),
            key: r.host.clone(),
            detail: format!(
                "{failures:.0} failed logons from {}, then {} from it (accounts {})",
                printable(&r.source, 64),
                count(successes as usize, "success", "successes"),
                printable(&r.users, 120)
            ),
        });
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![Signal {
        name: SignalKind::HostBruteForce,
        family: "host",
        summary: format!("a brute force that got in: {}", count(evidence.len(), "source address", "source addresses")),
        strength: 0.9,
        routine: false,
        thin_baseline_days: None,
        evidence: evidence.into_iter().take(5).collect(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_the_way_back_is_told_from_looking_at_it() {
        for line in [
            "vssadmin.exe Delete Shadows /All /Quiet",
            "C:\\Windows\\System32\\wbem\\WMIC.exe shadowcopy delete",
            "powershell -c \"Get-WmiObject Win32_ShadowCopy | Remove-WmiObject\"",
            "bcdedit /set {default} recoveryenabled No",
            "wbadmin DELETE SYSTEMSTATEBACKUP -keepVersions:0",
            "cipher.exe /w:C:\\",
        ] {
            assert!(destroys_recovery(line).is_some(), "{line}");
        }
        for line in
            ["vssadmin list shadows", "wmic os get caption", "bcdedit /enum", "wbadmin get versions", "notvssadmin delete shadowsx", "cipher /e secret.txt"]
        {
            assert_eq!(destroys_recovery(line), None, "{line}");
        }
    }

    #[test]
    fn failures_then_a_success_from_one_address_got_in_and_scanners_did_not() {
        let row = |source: &str, failures: f64, successes: f64| HostLogons {
            host: "vm-web-07".into(),
            source: source.into(),
            failures: Some(failures),
            successes: Some(successes),
            first: Some(0),
            last: Some(1),
            users: "[\"administrator\"]".into(),
        };
        assert!(host_logons(&[row("198.51.100.7", 400.0, 0.0), row("203.0.113.10", 3.0, 1.0)]).is_empty(), "a scanner and a mistype");
        let s = host_logons(&[row("198.51.100.7", 40.0, 1.0)]);
        assert_eq!(s[0].name, SignalKind::HostBruteForce);
        assert!(s[0].evidence[0].detail.starts_with("40 failed logons from 198.51.100.7, then 1 success"), "{:?}", s[0].evidence);
    }

    proptest::proptest! {
        #[test]
        fn any_command_line_is_read_without_panicking(line in "\\PC{0,300}") {
            let _ = destroys_recovery(&line);
        }
    }
}
