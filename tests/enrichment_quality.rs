//! The enrichment on telemetry built the way Azure's looks: one test per cause of a wrong lead or a false
//! certainty (names that differ between tables, the entity's own normal, service principals, sign-in attacks,
//! metrics-only evidence, kill chains, thin or missing baselines), then the labelled suite on fixed seeds.
//! Every case is staged into its own local workspace and enriched end to end over HTTP (`act` mode).

use sentinel_bridge::enrich::hypotheses::HypothesisId::{self, *};
use sentinel_bridge::enrich::EnrichSettings;
use sentinel_bridge::enrich::RunStatus;
use sentinel_bridge::lab::evaluation::{self, Outcome};
use sentinel_bridge::lab::harness::{run_case, run_suite};
use sentinel_bridge::lab::suite;
use sentinel_bridge::lab::world::{AlertChoice, CaseSpec, Confounder, Entry, Story};

/// A case on a fixed weekday morning, with exactly these confounders.
fn spec(seed: u64, story: Story, entry: Entry, confounders: &[Confounder]) -> CaseSpec {
    let mut s = suite::case(seed);
    s.story = story;
    s.entry = entry;
    s.confounders = confounders.to_vec();
    if !confounders.iter().any(|c| matches!(c, Confounder::NightlyBatch | Confounder::WeeklyBatch | Confounder::MonthEndBackup)) {
        s.t0 = sentinel_bridge::model::time::parse_datetime_ticks("2026-11-18T10:15:00Z").unwrap();
    } else if confounders.contains(&Confounder::NightlyBatch) {
        s.t0 = sentinel_bridge::model::time::parse_datetime_ticks("2026-11-18T01:20:00Z").unwrap();
    } else if confounders.contains(&Confounder::WeeklyBatch) {
        s.t0 = sentinel_bridge::model::time::parse_datetime_ticks("2026-11-22T01:40:00Z").unwrap();
    } else {
        s.t0 = sentinel_bridge::model::time::parse_datetime_ticks("2026-11-30T01:10:00Z").unwrap();
    }
    s
}

async fn run(s: &CaseSpec) -> Outcome {
    run_case(s, &EnrichSettings::default()).await.unwrap()
}

fn signal_names(o: &Outcome) -> Vec<&str> {
    o.signals.iter().map(|s| s.name.as_str()).collect()
}

fn assert_lead(o: &Outcome, lead: HypothesisId) {
    assert_eq!(o.lead, lead, "{:?} {:?}: {:?}; signals {:?}; queries {:?}", o.spec.story, o.spec.confounders, o.confidences, signal_names(o), o.queries);
    assert!(o.queries.iter().all(|(_, status, _)| matches!(status, RunStatus::Ok | RunStatus::Skipped(_))), "{:?}", o.queries);
}

#[tokio::test]
async fn a_host_and_an_account_resolve_to_every_name_the_tables_use() {
    // Perf knows the host by its FQDN, the alert by its short name; the alert's account is capitalised.
    let o = run(&spec(11, Story::Cryptojacking, Entry::None, &[Confounder::Fqdn, Confounder::UpnCase])).await;
    assert_lead(&o, Cryptojacking);
    assert!(o.comment_html.contains(".contoso.local (Perf)"), "{}", o.comment_html);
    // A guest is `name_domain#EXT#@tenant` in the sign-in logs.
    let o = run(&spec(12, Story::CredentialCompromise, Entry::StolenPassword, &[Confounder::Guest])).await;
    assert_lead(&o, CredentialCompromise);
    assert!(o.comment_html.contains("_fabrikam.com#ext#@contoso.onmicrosoft.com (SigninLogs)"), "{}", o.comment_html);
}

#[tokio::test]
async fn names_that_contain_ours_are_not_ours() {
    // joann.lee signs in from abroad and prod-vm-web-07 mines; ann.lee and vm-web-07 did nothing.
    let o = run(&spec(13, Story::Quiet, Entry::None, &[Confounder::Neighbour])).await;
    assert_lead(&o, NoFinding);
    let related = o.queries.iter().find(|q| q.0 == "related_alerts").unwrap();
    assert_eq!(related.2, 0, "the neighbour's alert does not share an entity with ours");
    assert!(!signal_names(&o).contains(&"cpu_spike") && !signal_names(&o).contains(&"new_location"), "{:?}", o.signals);
}

#[tokio::test]
async fn a_vpn_country_and_a_weekly_commute_are_the_user_s_normal() {
    let o = run(&spec(14, Story::Quiet, Entry::None, &[Confounder::Vpn])).await;
    assert_lead(&o, NoFinding);
    assert!(!signal_names(&o).contains(&"new_location"), "the organisation's VPN egress is familiar: {:?}", o.signals);
    let o = run(&spec(15, Story::Quiet, Entry::None, &[Confounder::Alternating])).await;
    assert_lead(&o, NoFinding);
    assert!(!signal_names(&o).contains(&"impossible_travel"), "{:?}", o.signals);
    assert!(!o.severity_raised);
}

#[tokio::test]
async fn a_host_s_own_batches_and_backups_are_its_normal() {
    for c in [Confounder::NightlyBatch, Confounder::WeeklyBatch, Confounder::MonthEndBackup] {
        let o = run(&spec(16, Story::BenignLoad, Entry::None, &[c])).await;
        assert_lead(&o, BenignLoad);
        assert!(signal_names(&o).contains(&"load_routine"), "{c:?}: {:?}", o.signals);
        assert!(!signal_names(&o).contains(&"cpu_spike") && !signal_names(&o).contains(&"network_out_spike"), "{c:?}: {:?}", o.signals);
        assert!(!o.severity_raised);
    }
}

#[tokio::test]
async fn a_service_principal_acting_from_an_ip_it_never_used_is_the_anomaly() {
    let o = run(&spec(17, Story::Cryptojacking, Entry::ServicePrincipal, &[])).await;
    assert_lead(&o, Cryptojacking);
    assert_eq!(o.entry_point, Some(CredentialCompromise));
    for s in ["sp_new_network", "caller_new_ip"] {
        assert!(signal_names(&o).contains(&s), "{s}: {:?}", signal_names(&o));
    }
    // What it did with the access (GPU machines, or the miner dropped on the host: the generator draws which).
    assert!(["gpu_compute", "compute_provisioned", "code_on_host"].iter().any(|s| signal_names(&o).contains(s)), "{:?}", signal_names(&o));
    let o = run(&spec(18, Story::ConfigDrift, Entry::ServicePrincipal, &[])).await;
    assert_lead(&o, ConfigDrift);
    assert!(signal_names(&o).contains(&"resource_group_created"), "{:?}", signal_names(&o));
    // The same principal scaling the tier from its usual IP is operations: no threat, nothing raised (benign
    // itself needs a sign, read on the host, that its load is expected).
    let o = run(&spec(19, Story::BenignLoad, Entry::None, &[])).await;
    assert!(matches!(o.lead, BenignLoad | NoFinding), "{:?}", o.confidences);
    assert!(!o.severity_raised);
    assert!(!signal_names(&o).contains(&"caller_new_ip") && !signal_names(&o).contains(&"sp_new_network"), "{:?}", signal_names(&o));
}

#[tokio::test]
async fn sign_in_attacks_are_judged_by_their_source_ip() {
    for (entry, signal) in [(Entry::MfaFatigue, "mfa_fatigue"), (Entry::PasswordSpray, "password_spray"), (Entry::BruteForce, "brute_force")] {
        let o = run(&spec(20, Story::CredentialCompromise, entry, &[])).await;
        assert_lead(&o, CredentialCompromise);
        assert!(signal_names(&o).contains(&signal), "{entry:?}: {:?}", signal_names(&o));
        assert!(o.signals.iter().find(|s| s.name.as_str() == signal).unwrap().evidence[0].detail.contains("198.51.100."), "the attacker's IP is kept");
    }
    // Failures then a success from the user's usual IP, and a spray that failed for us, are not compromise.
    for c in [Confounder::UsualIpFailures, Confounder::SprayElsewhere] {
        let o = run(&spec(21, Story::Quiet, Entry::None, &[c])).await;
        assert_lead(&o, NoFinding);
        assert!(!signal_names(&o).iter().any(|s| ["brute_force", "mfa_fatigue", "password_spray"].contains(s)), "{c:?}: {:?}", signal_names(&o));
    }
}

#[tokio::test]
async fn evidence_is_read_wherever_the_resource_reports_it() {
    // No Perf agent: the VM's CPU is in AzureMetrics under its (upper-cased) resource id.
    let o = run(&spec(22, Story::Cryptojacking, Entry::None, &[Confounder::MetricsOnly])).await;
    assert_lead(&o, Cryptojacking);
    assert!(o.comment_html.contains("AzureMetrics"), "the comment cites the table with the evidence: {}", o.comment_html);
    // Storage egress in its documented aggregation: Total bytes (the per-transaction Average stays flat).
    let o = run(&spec(23, Story::Exfiltration, Entry::None, &[Confounder::ViaStorage])).await;
    assert_lead(&o, DataExfiltration);
    let spike = o.signals.iter().find(|s| s.name.as_str() == "network_out_spike").expect("egress spike");
    assert!(spike.evidence.iter().any(|e| e.table == "AzureMetrics" && e.detail.starts_with("Egress")), "{:?}", spike.evidence);
}

/// The alert that raised the incident is evidence: a detection product's classification and the artefacts in
/// its entities, on a throttled miner whose CPU alone is ambiguous and with no identity anomaly at all.
#[tokio::test]
async fn the_alert_itself_is_evidence_and_more_of_it_never_lowers_its_hypothesis() {
    let with = |alert| {
        let mut s = spec(26, Story::Cryptojacking, Entry::None, &[]);
        s.alert = Some(alert);
        s
    };
    let silent = run(&with(AlertChoice::DefenderRunCommand)).await;
    let classified = run(&with(AlertChoice::DefenderMining { command_line: false })).await;
    let artefact = run(&with(AlertChoice::DefenderMining { command_line: true })).await;
    let crypto = |o: &Outcome| o.confidences.iter().find(|c| c.0 == Cryptojacking).unwrap().1;
    assert!(
        crypto(&silent) <= crypto(&classified) && crypto(&classified) <= crypto(&artefact),
        "{} {} {}",
        crypto(&silent),
        crypto(&classified),
        crypto(&artefact)
    );
    assert_lead(&artefact, Cryptojacking);
    assert!(
        !signal_names(&artefact).iter().any(|s| ["new_location", "impossible_travel", "risky_signin", "caller_new_ip"].contains(s)),
        "{:?}",
        signal_names(&artefact)
    );
    assert!(artefact.comment_html.contains("SecurityAlert") && artefact.comment_html.contains("--max-cpu-usage 40"), "{}", artefact.comment_html);
    assert!(!signal_names(&silent).contains(&"alert_mining"), "a Run Command alert says nothing about mining: {:?}", signal_names(&silent));
}

#[tokio::test]
async fn a_kill_chain_leads_with_the_impact_and_names_the_entry_point() {
    let o = run(&spec(24, Story::Exfiltration, Entry::StolenPassword, &[])).await;
    assert_lead(&o, DataExfiltration);
    assert_eq!(o.entry_point, Some(CredentialCompromise));
    assert!(
        o.recommendation.contains("rotate the storage") && o.recommendation.contains("Reset the credentials"),
        "containment for both: {}",
        o.recommendation
    );
    assert!(o.comment_html.contains("<b>Entry point:</b> Credential compromise, confidence"), "{}", o.comment_html);
    // Each confidence stays its own.
    let cred = o.confidences.iter().find(|c| c.0 == CredentialCompromise).unwrap().1;
    assert!(cred >= 0.5, "{:?}", o.confidences);
}

/// The design's "a sudden drop in database performance could indicate a ransomware encryption process": each
/// of ransomware's targets leads destructive impact on its own plane's evidence (a database's log writes, a
/// storage account's writes with soft delete turned off, a host's shadow copies deleted), and their benign
/// twins (the nightly index rebuild, the backup service's weekly snapshot rotation) do not.
#[tokio::test]
async fn ransomware_is_read_on_every_plane_it_touches_and_its_benign_twins_are_not_it() {
    let mut led = std::collections::BTreeSet::new();
    // Seeds whose draws put the attack on each target (host, database, storage): see `lab::world`.
    for seed in (1..400).filter(|s| suite::case(*s).story == Story::Ransomware).take(12) {
        let o = run(&spec(seed, Story::Ransomware, Entry::None, &[])).await;
        let names = signal_names(&o);
        if o.lead == DestructiveImpact {
            for plane in ["db_write_surge", "storage_write_surge", "shadow_copy_deleted"] {
                if names.contains(&plane) {
                    led.insert(plane);
                }
            }
        }
        if led.len() == 3 {
            break;
        }
    }
    assert_eq!(led.len(), 3, "destructive impact led on every plane: {led:?}");
    let o = run(&spec(27, Story::Ransomware, Entry::StolenPassword, &[])).await;
    assert_eq!((o.lead, o.entry_point), (DestructiveImpact, Some(CredentialCompromise)), "{:?} {:?}", o.confidences, signal_names(&o));
    assert!(o.recommendation.contains("restore from a recovery point"), "{}", o.recommendation);
    // The nightly index rebuild: the database's own normal.
    let mut rebuild = spec(28, Story::BenignLoad, Entry::None, &[Confounder::IndexRebuild]);
    rebuild.t0 = sentinel_bridge::model::time::parse_datetime_ticks("2026-11-18T01:15:00Z").unwrap();
    let o = run(&rebuild).await;
    assert_lead(&o, BenignLoad);
    assert!(signal_names(&o).contains(&"load_routine") && !signal_names(&o).contains(&"db_write_surge"), "{:?}", signal_names(&o));
    // The backup service deleting its oldest snapshot, as every week.
    let o = run(&spec(29, Story::Quiet, Entry::None, &[Confounder::BackupRotation])).await;
    assert_ne!(o.lead, DestructiveImpact, "{:?}", o.confidences);
    let change = o.signals.iter().find(|s| s.name.as_str() == "destructive_change").expect("the rotation is seen");
    assert!(change.routine, "{change:?}");
}

/// In through the host's own logon (RDP or SSH brute force), with nothing in Azure's sign-in logs: the impact
/// leads and names credential compromise as its entry; the internet's scanners knocking on the same port,
/// never getting in, are no entry at all.
#[tokio::test]
async fn a_brute_force_on_the_host_that_got_in_is_the_entry_and_scanners_are_not() {
    let o = run(&spec(31, Story::Cryptojacking, Entry::HostBruteForce, &[Confounder::PortScanners])).await;
    assert_lead(&o, Cryptojacking);
    assert_eq!(o.entry_point, Some(CredentialCompromise), "{:?} {:?}", o.confidences, signal_names(&o));
    let names = signal_names(&o);
    assert!(names.contains(&"host_brute_force") && !names.contains(&"new_location") && !names.contains(&"brute_force"), "{names:?}");
    let o = run(&spec(32, Story::Quiet, Entry::None, &[Confounder::PortScanners])).await;
    assert!(!signal_names(&o).contains(&"host_brute_force"), "{:?}", signal_names(&o));
    assert_ne!(o.lead, CredentialCompromise, "{:?}", o.confidences);
}

#[tokio::test]
async fn a_thin_baseline_is_capped_below_the_act_threshold_and_says_why() {
    let o = run(&spec(25, Story::Cryptojacking, Entry::None, &[Confounder::ThinHistory])).await;
    assert_lead(&o, Cryptojacking);
    let threshold = EnrichSettings::default().act_threshold;
    assert!(o.confidence < threshold, "{} must stay under {threshold}", o.confidence);
    assert!(!o.severity_raised);
    assert!(o.comment_html.contains("Limits:") && o.comment_html.contains("days of history"), "{}", o.comment_html);
}

#[tokio::test]
async fn entities_that_match_nothing_say_nothing_could_be_correlated() {
    let o = run(&spec(26, Story::Quiet, Entry::None, &[Confounder::Unmatched])).await;
    assert_lead(&o, NoFinding);
    assert_eq!(o.confidence, 0.0, "nothing read, nothing known");
    assert!(o.comment_html.contains("Nothing could be correlated: none of the incident&#39;s entities"), "{}", o.comment_html);
    assert!(o.comment_html.contains("matched nothing:"), "{}", o.comment_html);
}

/// The labelled suite on seeds the model was not fitted on (the fit used 1..=300): right leads, kill chains
/// named, no benign severity raised. The README's figures come from `sentinel-bridge evaluate`.
#[tokio::test]
async fn the_labelled_suite_leads_right_on_unseen_seeds() {
    let outcomes = run_suite(5001..5041, &EnrichSettings::default()).await.unwrap();
    let r = evaluation::measure(&outcomes);
    // 0.90: a benign load with no sign on the host that it is expected now leads "no corroborated threat"
    // (benign only on evidence of benign), which the suite's label counts as wrong; see the README's figures.
    assert!(r.accuracy >= 0.90, "{}", evaluation::render(&r) + &r.wrong.join("\n"));
    assert_eq!(r.benign_severity_raised, 0, "{:?}", r.wrong);
    assert!(r.kill_chains_entry_named + 1 >= r.kill_chains, "{}", evaluation::render(&r));
    assert!(r.brier_lead < 0.1, "{}", evaluation::render(&r));
}
