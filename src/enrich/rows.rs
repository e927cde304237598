//! The rows each correlation query answers with, as types whose fields are its columns: a reader walks these,
//! never column indexes, and a column the query stops projecting is an error naming it (a test runs every
//! query against an empty local workspace and checks its columns are these fields).
//!
//! Values come from the Query API's typed tables: a `datetime` is read as ticks, a number as `f64`, and a text
//! field takes whatever the column holds as its text (an ASN may be a `long` in one table and a `string` in
//! another). A field must be present as a column; only its value may be null.

use serde::de::value::MapDeserializer;
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::Deserialize;

use crate::model::frame::Frame;
use crate::model::value::{format_real, Value};

/// Reads every row of `frame` as a `T`; the first row that does not fit names its column. Each row is read in
/// place, column by column, with no intermediate JSON.
pub fn read<T: DeserializeOwned>(frame: &Frame) -> Result<Vec<T>, String> {
    frame
        .rows
        .iter()
        .map(|row| {
            let cells = frame.columns.iter().zip(row.iter()).map(|(c, v)| (c.name.as_str(), Cell(v)));
            T::deserialize(MapDeserializer::<_, serde::de::value::Error>::new(cells)).map_err(|e| e.to_string())
        })
        .collect()
}

/// One value as the row types read it: datetimes and timespans as ticks, numbers as numbers, a dynamic value
/// as its number or its text (what `tostring()` gives).
struct Cell<'a>(&'a Value);

impl<'de> IntoDeserializer<'de, serde::de::value::Error> for Cell<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Cell<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Long(i) | Value::DateTime(i) | Value::TimeSpan(i) => v.visit_i64(*i),
            Value::Real(f) if f.is_finite() => v.visit_f64(*f),
            Value::Real(_) => v.visit_unit(),
            Value::Dynamic(d) => match d.as_ref() {
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => v.visit_i64(i),
                    None => v.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
                },
                _ => v.visit_string(self.0.to_text()),
            },
            Value::String(s) => v.visit_str(s),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The column names a row type reads (its fields, as serde names them).
pub fn columns_of<T: DeserializeOwned>() -> Vec<&'static str> {
    struct Fields(Vec<&'static str>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
            newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut f = Fields(Vec::new());
    let _ = T::deserialize(&mut f);
    f.0
}

/// A column's value as text: a string as it is, a number or a flag written out, null as empty.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.as_i64().map_or_else(|| format_real(n.as_f64().unwrap_or(f64::NAN)), |i| i.to_string()),
        other => other.to_string(),
    })
}

/// A number, or a number written as text; null (or text that is no number) as none.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A flag: a bool, or a number or text standing for one (`1`, `"true"`); null as false.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|v| v != 0.0),
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true") || s == "1",
        _ => false,
    })
}

/// A datetime as ticks; null as none.
fn ticks<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_i64())
}

/// `high_value_assets.kql`: an entry of the High Value Assets watchlist that names one of the incident's assets.
#[derive(Debug, Clone, Deserialize)]
pub struct HighValueAsset {
    #[serde(rename = "SearchKey", deserialize_with = "text")]
    pub search_key: String,
    #[serde(rename = "AssetType", deserialize_with = "text")]
    pub asset_type: String,
    #[serde(rename = "AssetId", deserialize_with = "text")]
    pub asset_id: String,
    #[serde(rename = "AssetName", deserialize_with = "text")]
    pub asset_name: String,
    #[serde(rename = "Fqdn", deserialize_with = "text")]
    pub fqdn: String,
    #[serde(rename = "Ip", deserialize_with = "text")]
    pub ip: String,
    #[serde(rename = "Tags", deserialize_with = "text")]
    pub tags: String,
}

/// `host_processes.kql`: a process created on one of the incident's hosts by a tool that can take recovery away.
#[derive(Debug, Clone, Deserialize)]
pub struct HostProcess {
    #[serde(rename = "TimeGenerated", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "Computer", deserialize_with = "text")]
    pub computer: String,
    #[serde(rename = "Account", deserialize_with = "text")]
    pub account: String,
    #[serde(rename = "CommandLine", deserialize_with = "text")]
    pub command_line: String,
}

/// `host_logons.kql`: logons to one of the incident's hosts from one source address.
#[derive(Debug, Clone, Deserialize)]
pub struct HostLogons {
    #[serde(rename = "Host", deserialize_with = "text")]
    pub host: String,
    #[serde(rename = "Source", deserialize_with = "text")]
    pub source: String,
    #[serde(rename = "Failures", deserialize_with = "number")]
    pub failures: Option<f64>,
    #[serde(rename = "Successes", deserialize_with = "number")]
    pub successes: Option<f64>,
    #[serde(rename = "First", deserialize_with = "ticks")]
    pub first: Option<i64>,
    #[serde(rename = "Last", deserialize_with = "ticks")]
    pub last: Option<i64>,
    #[serde(rename = "Users", deserialize_with = "text")]
    pub users: String,
}

/// `host_connections.kql`: one outbound destination (address and port) of one of the incident's hosts.
#[derive(Debug, Clone, Deserialize)]
pub struct HostConnection {
    #[serde(rename = "Host", deserialize_with = "text")]
    pub host: String,
    #[serde(rename = "RemoteIp", deserialize_with = "text")]
    pub remote_ip: String,
    #[serde(rename = "DestinationPort", deserialize_with = "number")]
    pub port: Option<f64>,
    /// Rows before the window (the host's own history with this destination) and in it.
    #[serde(rename = "Before", deserialize_with = "number")]
    pub before: Option<f64>,
    #[serde(rename = "During", deserialize_with = "number")]
    pub during: Option<f64>,
    #[serde(rename = "Sent", deserialize_with = "number")]
    pub sent: Option<f64>,
    /// Bytes sent to it before the window.
    #[serde(rename = "SentBefore", deserialize_with = "number")]
    pub sent_before: Option<f64>,
    #[serde(rename = "Links", deserialize_with = "number")]
    pub links: Option<f64>,
    #[serde(rename = "Last", deserialize_with = "ticks")]
    pub last: Option<i64>,
    /// The DNS names the host resolved the address from (VMConnection's `RemoteDnsQuestions`, as written).
    #[serde(rename = "Names", deserialize_with = "text")]
    pub names: String,
    #[serde(rename = "Threat", deserialize_with = "text")]
    pub threat: String,
    #[serde(rename = "Process", deserialize_with = "text")]
    pub process: String,
}

/// `vault_access.kql`: one principal's calls to one vault from one address, before the window or in it.
#[derive(Debug, Clone, Deserialize)]
pub struct VaultAccess {
    #[serde(rename = "Caller", deserialize_with = "text")]
    pub caller: String,
    #[serde(rename = "Vault", deserialize_with = "text")]
    pub vault: String,
    #[serde(rename = "Ip", deserialize_with = "text")]
    pub ip: String,
    #[serde(rename = "During", deserialize_with = "flag")]
    pub during: bool,
    #[serde(rename = "Calls", deserialize_with = "number")]
    pub calls: Option<f64>,
    /// Distinct secrets, keys and certificates read (SecretGet, KeyDecrypt, …).
    #[serde(rename = "Items", deserialize_with = "number")]
    pub items: Option<f64>,
    /// Hours of the day (UTC) the calls came at, as a JSON array.
    #[serde(rename = "Hours", deserialize_with = "text")]
    pub hours: String,
    #[serde(rename = "Last", deserialize_with = "ticks")]
    pub last: Option<i64>,
    /// AzureDiagnostics or AZKVAuditLogs: where the vault's diagnostic setting sends its AuditEvent.
    #[serde(rename = "Table", deserialize_with = "text")]
    pub table: String,
}

/// `storage_reads.kql`: one caller address's blob reads from one storage account, before the window or in it.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageReads {
    #[serde(rename = "Account", deserialize_with = "text")]
    pub account: String,
    #[serde(rename = "Ip", deserialize_with = "text")]
    pub ip: String,
    #[serde(rename = "During", deserialize_with = "flag")]
    pub during: bool,
    #[serde(rename = "Reads", deserialize_with = "number")]
    pub reads: Option<f64>,
    #[serde(rename = "Bytes", deserialize_with = "number")]
    pub bytes: Option<f64>,
    #[serde(rename = "Days", deserialize_with = "number")]
    pub days: Option<f64>,
    #[serde(rename = "Auth", deserialize_with = "text")]
    pub auth: String,
    #[serde(rename = "Last", deserialize_with = "ticks")]
    pub last: Option<i64>,
}

/// `resolve_entities.kql`: each name an entity goes by, where it was seen, and how often.
#[derive(Debug, Clone, Deserialize)]
pub struct ResolvedName {
    #[serde(rename = "Kind", deserialize_with = "text")]
    pub kind: String,
    #[serde(rename = "Name", deserialize_with = "text")]
    pub name: String,
    #[serde(rename = "Id", deserialize_with = "text")]
    pub id: String,
    #[serde(rename = "Source", deserialize_with = "text")]
    pub source: String,
    #[serde(rename = "Rows", deserialize_with = "number")]
    pub rows: Option<f64>,
}

/// `compute_perf.kql` and `compute_metrics.kql`: one hour of a series, a Perf counter of a host or a platform
/// metric of a resource in its documented aggregation (both queries name the counter or metric `Metric`).
#[derive(Debug, Clone, Deserialize)]
pub struct MetricHour {
    #[serde(rename = "Key", deserialize_with = "text")]
    pub key: String,
    #[serde(rename = "Metric", deserialize_with = "text")]
    pub metric: String,
    #[serde(rename = "TimeGenerated", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "Value", deserialize_with = "number")]
    pub value: Option<f64>,
    #[serde(rename = "Samples", deserialize_with = "number")]
    pub samples: Option<f64>,
}

/// `signins.kql`: one user sign-in (interactive or not).
#[derive(Debug, Clone, Deserialize)]
pub struct SignIn {
    #[serde(rename = "TimeGenerated", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "UserPrincipalName", deserialize_with = "text")]
    pub user: String,
    #[serde(rename = "IPAddress", deserialize_with = "text")]
    pub ip: String,
    #[serde(rename = "Country", deserialize_with = "text")]
    pub country: String,
    #[serde(rename = "Latitude", deserialize_with = "number")]
    pub latitude: Option<f64>,
    #[serde(rename = "Longitude", deserialize_with = "number")]
    pub longitude: Option<f64>,
    #[serde(rename = "Asn", deserialize_with = "text")]
    pub asn: String,
    #[serde(rename = "ResultType", deserialize_with = "text")]
    pub result: String,
    #[serde(rename = "RiskLevelDuringSignIn", deserialize_with = "text")]
    pub risk_level: String,
    #[serde(rename = "RiskState", deserialize_with = "text")]
    pub risk_state: String,
}

/// `signin_sources.kql`: a network (IP or ASN) and how many of the organisation's users it served.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgSource {
    #[serde(rename = "Kind", deserialize_with = "text")]
    pub kind: String,
    #[serde(rename = "Value", deserialize_with = "text")]
    pub value: String,
    #[serde(rename = "BaselineUsers", deserialize_with = "number")]
    pub baseline_users: Option<f64>,
    #[serde(rename = "WindowFailedUsers", deserialize_with = "number")]
    pub window_failed_users: Option<f64>,
}

/// `sp_signins.kql`: one service principal sign-in.
#[derive(Debug, Clone, Deserialize)]
pub struct SpSignIn {
    #[serde(rename = "TimeGenerated", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "AppId", deserialize_with = "text")]
    pub app_id: String,
    #[serde(rename = "ServicePrincipalName", deserialize_with = "text")]
    pub name: String,
    #[serde(rename = "IPAddress", deserialize_with = "text")]
    pub ip: String,
    #[serde(rename = "Country", deserialize_with = "text")]
    pub country: String,
    #[serde(rename = "ResultType", deserialize_with = "text")]
    pub result: String,
}

/// `control_plane.kql`: one AzureActivity operation.
#[derive(Debug, Clone, Deserialize)]
pub struct OperationRow {
    #[serde(rename = "TimeGenerated", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "Caller", deserialize_with = "text")]
    pub caller: String,
    #[serde(rename = "CallerIpAddress", deserialize_with = "text")]
    pub caller_ip: String,
    #[serde(rename = "Operation", deserialize_with = "text")]
    pub operation: String,
    #[serde(rename = "_ResourceId", deserialize_with = "text")]
    pub resource_id: String,
    #[serde(rename = "VmSize", deserialize_with = "text")]
    pub vm_size: String,
    /// One operation's Start, Accept and Success rows share it.
    #[serde(rename = "CorrelationId", default, deserialize_with = "text")]
    pub correlation_id: String,
    /// A security rule's `sourceAddressPrefix` and `destinationPortRange`, as the request recorded them.
    #[serde(rename = "SourcePrefix", default, deserialize_with = "text")]
    pub source_prefix: String,
    #[serde(rename = "DestinationPort", default, deserialize_with = "text")]
    pub destination_port: String,
    /// A storage account's `networkAcls.defaultAction`.
    #[serde(rename = "DefaultAction", default, deserialize_with = "text")]
    pub default_action: String,
    /// A blob service change's `deleteRetentionPolicy.enabled`, where the request has one.
    #[serde(rename = "SoftDelete", default, deserialize_with = "text")]
    pub soft_delete: String,
    /// The switch a request turns to Disabled: a backup vault's `softDeleteFeatureState`, a database's
    /// transparent data encryption `state`.
    #[serde(rename = "FeatureOff", default, deserialize_with = "text")]
    pub feature_off: String,
}

/// `related_alerts.kql`: another alert that names one of the incident's entities.
#[derive(Debug, Clone, Deserialize)]
pub struct RelatedAlert {
    #[serde(rename = "TimeGenerated", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "SystemAlertId", deserialize_with = "text")]
    pub id: String,
    #[serde(rename = "DisplayName", deserialize_with = "text")]
    pub name: String,
    #[serde(rename = "AlertSeverity", deserialize_with = "text")]
    pub severity: String,
    #[serde(rename = "ProductName", deserialize_with = "text")]
    pub product: String,
    #[serde(rename = "Tactics", deserialize_with = "text")]
    pub tactics: String,
}

/// `vendor_noxys.kql`: an AI-firewall event of the incident's accounts.
#[derive(Debug, Clone, Deserialize)]
pub struct NoxysEvent {
    #[serde(rename = "EventTime", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "UserId", deserialize_with = "text")]
    pub user: String,
    #[serde(rename = "EventType", deserialize_with = "text")]
    pub event_type: String,
    #[serde(rename = "PlatformId", deserialize_with = "text")]
    pub platform: String,
    #[serde(rename = "RiskScore", deserialize_with = "text")]
    pub risk_score: String,
    #[serde(rename = "Classifications", deserialize_with = "text")]
    pub classifications: String,
    #[serde(rename = "EventId", deserialize_with = "text")]
    pub id: String,
}

/// `vendor_trapeye.kql`: a decoy touched from one of the incident's IPs.
#[derive(Debug, Clone, Deserialize)]
pub struct TrapEyeThreat {
    #[serde(rename = "EventTime", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "source_ip", deserialize_with = "text")]
    pub source_ip: String,
    #[serde(rename = "reverse_lookup", deserialize_with = "text")]
    pub reverse_lookup: String,
    #[serde(rename = "threat_uuid", deserialize_with = "text")]
    pub id: String,
}

/// `vendor_apono.kql`: a just-in-time access grant to one of the incident's accounts.
#[derive(Debug, Clone, Deserialize)]
pub struct AponoGrant {
    #[serde(rename = "EventTime", deserialize_with = "ticks")]
    pub time: Option<i64>,
    #[serde(rename = "requester_email", deserialize_with = "text")]
    pub requester: String,
    #[serde(rename = "resource_name", deserialize_with = "text")]
    pub resource: String,
    #[serde(rename = "permission", deserialize_with = "text")]
    pub permission: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::frame::Column;
    use crate::model::value::KType;

    #[test]
    fn a_row_type_names_its_columns() {
        assert_eq!(columns_of::<TrapEyeThreat>(), ["EventTime", "source_ip", "reverse_lookup", "threat_uuid"]);
    }

    #[test]
    fn values_read_as_their_fields_and_a_missing_column_is_named() {
        let col = |n: &str, k| Column { name: n.into(), ktype: k };
        let f = Frame {
            columns: vec![col("Kind", KType::String), col("Value", KType::Long), col("BaselineUsers", KType::Long), col("WindowFailedUsers", KType::Real)],
            rows: vec![vec![Value::String("asn".into()), Value::Long(8075), Value::Long(4), Value::Null].into()],
        };
        let rows: Vec<OrgSource> = read(&f).unwrap();
        assert_eq!((rows[0].kind.as_str(), rows[0].value.as_str(), rows[0].baseline_users, rows[0].window_failed_users), ("asn", "8075", Some(4.0), None));
        let short = Frame { columns: f.columns[..3].to_vec(), rows: vec![f.rows[0][..3].to_vec().into()] };
        let e = read::<OrgSource>(&short).unwrap_err();
        assert!(e.contains("WindowFailedUsers"), "{e}");
    }
}
