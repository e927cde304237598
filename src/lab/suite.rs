//! The labelled, randomised suite: from one seed, a case (story, entry point, confounders, the incident's time)
//! drawn with the proportions below, and its truth. The tests fix the seeds; `sentinel-bridge evaluate` takes
//! any range of them, so a suite the project never saw is one flag away.

use serde::Serialize;

use super::world::{CaseSpec, Confounder, Entry, Rng, Story};
use crate::enrich::hypotheses::HypothesisId;
use crate::model::time::{parse_datetime_ticks, TICKS_PER_SEC};

/// What an analyst would conclude: the finding to lead with, the entry point a kill chain names, and whether
/// the case is benign (an `act` run must not raise its severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Truth {
    pub lead: HypothesisId,
    pub entry: Option<HypothesisId>,
    pub benign: bool,
    /// Nothing could be read (no entities, or entities that match no telemetry): the right answer is to say
    /// so, with no confidence either way; such cases are left out of the Brier score and reliability table.
    pub abstain: bool,
}

impl CaseSpec {
    pub fn truth(&self) -> Truth {
        let lead = match self.story {
            Story::Cryptojacking => HypothesisId::Cryptojacking,
            Story::Exfiltration => HypothesisId::DataExfiltration,
            Story::ConfigDrift => HypothesisId::ConfigDrift,
            Story::CredentialCompromise => HypothesisId::CredentialCompromise,
            Story::Ransomware => HypothesisId::DestructiveImpact,
            Story::BenignLoad => HypothesisId::BenignLoad,
            Story::Quiet => HypothesisId::NoFinding,
        };
        let impact = matches!(self.story, Story::Cryptojacking | Story::Exfiltration | Story::ConfigDrift | Story::Ransomware);
        Truth {
            lead,
            entry: (impact && self.entry != Entry::None).then_some(HypothesisId::CredentialCompromise),
            benign: matches!(self.story, Story::BenignLoad | Story::Quiet),
            abstain: self.has(Confounder::NoEntities) || self.has(Confounder::Unmatched),
        }
    }

    /// The hypotheses that are true of the case (the lead and the entry point).
    pub fn true_hypotheses(&self) -> Vec<HypothesisId> {
        let t = self.truth();
        std::iter::once(t.lead).chain(t.entry).collect()
    }
}

const TECHNIQUES: [Entry; 6] =
    [Entry::StolenPassword, Entry::MfaFatigue, Entry::PasswordSpray, Entry::BruteForce, Entry::ServicePrincipal, Entry::HostBruteForce];

fn at(s: &str) -> i64 {
    parse_datetime_ticks(s).expect("a valid suite time")
}

/// The case a seed draws.
pub fn case(seed: u64) -> CaseSpec {
    let mut r = Rng::new(seed.wrapping_mul(0x9E37_79B9).wrapping_add(1));
    let story = match r.int(0, 99) {
        0..=12 => Story::Cryptojacking,
        13..=25 => Story::Exfiltration,
        26..=38 => Story::ConfigDrift,
        39..=50 => Story::Ransomware,
        51..=63 => Story::CredentialCompromise,
        64..=81 => Story::BenignLoad,
        _ => Story::Quiet,
    };
    let entry = match story {
        Story::CredentialCompromise => *r.pick(&TECHNIQUES),
        Story::Cryptojacking | Story::Exfiltration | Story::ConfigDrift | Story::Ransomware if r.chance(0.65) => *r.pick(&TECHNIQUES),
        _ => Entry::None,
    };
    let mut c: Vec<Confounder> = Vec::new();
    // Names and data sources that differ between tables, for any story.
    for (k, p) in
        [(Confounder::Fqdn, 0.3), (Confounder::MetricsOnly, 0.2), (Confounder::UpnCase, 0.25), (Confounder::Guest, 0.15), (Confounder::Neighbour, 0.15)]
    {
        if r.chance(p) {
            c.push(k);
        }
    }
    // A service principal acts for itself: its own names, not a guest's.
    if entry == Entry::ServicePrincipal {
        c.retain(|x| *x != Confounder::Guest);
    }
    // Day-to-day noise around any story: the VPN, a commute between two places, a mistyped password.
    for (k, p) in [(Confounder::Vpn, 0.15), (Confounder::Alternating, 0.1), (Confounder::UsualIpFailures, 0.15), (Confounder::PortScanners, 0.2)] {
        if r.chance(p) {
            c.push(k);
        }
    }
    let mut t0 = at("2026-11-09T00:00:00Z") + r.int(0, 17) * 86_400 * TICKS_PER_SEC + (r.int(8 * 12, 20 * 12) * 300) * TICKS_PER_SEC;
    match story {
        Story::BenignLoad => match r.int(0, 4) {
            0 => {
                c.push(Confounder::NightlyBatch);
                t0 = at("2026-11-10T01:20:00Z") + r.int(0, 16) * 86_400 * TICKS_PER_SEC;
            }
            1 => {
                c.push(Confounder::WeeklyBatch);
                t0 = at("2026-11-15T01:40:00Z") + r.int(0, 2) * 7 * 86_400 * TICKS_PER_SEC;
            }
            2 => {
                c.push(Confounder::MonthEndBackup);
                t0 = at("2026-11-30T01:10:00Z");
                c.retain(|x| *x != Confounder::MetricsOnly);
            }
            3 => {
                c.push(Confounder::IndexRebuild);
                t0 = at("2026-11-10T01:15:00Z") + r.int(0, 16) * 86_400 * TICKS_PER_SEC;
            }
            _ => {}
        },
        Story::Exfiltration if r.chance(0.5) => c.push(Confounder::ViaStorage),
        Story::Quiet => {
            let pool = [
                Confounder::Vpn,
                Confounder::Alternating,
                Confounder::UsualIpFailures,
                Confounder::SprayElsewhere,
                Confounder::RoutineChange,
                Confounder::BackupRotation,
                Confounder::Unmatched,
                Confounder::NoEntities,
            ];
            let k = *r.pick(&pool);
            if !c.contains(&k) {
                c.push(k);
            }
        }
        _ => {}
    }
    // Thin history: a host and user that appeared days ago (never for the month-end case, which needs a month).
    if r.chance(0.08) && !c.contains(&Confounder::MonthEndBackup) && !c.contains(&Confounder::WeeklyBatch) {
        c.push(Confounder::ThinHistory);
    }
    if c.contains(&Confounder::NoEntities) || c.contains(&Confounder::Unmatched) {
        c.retain(|x| !matches!(x, Confounder::Neighbour | Confounder::UpnCase | Confounder::Guest));
    }
    // The planes added later draw from their own stream, so every case above draws what it drew before.
    let mut p = Rng::new(seed.wrapping_mul(0x0005_17CC).wrapping_add(5));
    if p.chance(0.15) {
        c.push(Confounder::KnownPoolPort);
    }
    if story == Story::Exfiltration && !c.contains(&Confounder::ViaStorage) && p.chance(0.5) {
        c.push(Confounder::ViaVault);
    }
    if story == Story::Quiet
        && p.chance(0.3)
        && !c.iter().any(|x| matches!(x, Confounder::NoEntities | Confounder::Unmatched | Confounder::RoutineChange | Confounder::BackupRotation))
    {
        c.push(Confounder::PipelineSecrets);
    }
    CaseSpec { seed, story, entry, confounders: c, t0, alert: None }
}

/// A case's incident name and number: stable per seed.
pub fn incident_of(seed: u64) -> (String, i64) {
    (uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:suite:{seed}").as_bytes()).to_string(), 1000 + (seed % 100_000) as i64)
}
