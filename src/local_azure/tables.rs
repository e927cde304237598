//! What the local workspace holds: tables with typed columns, the DCR streams that feed them (custom tables as
//! `Custom-<Table>`, Azure's standard tables as `Microsoft-<Table>`, as DCRs name them), optional stream
//! transformations (`transformKql`), and the system columns every Log Analytics table has.

use std::sync::Arc;

use crate::kql::{Column, KType};
use crate::model::schema::TableSchema;

/// Columns Log Analytics adds to every table; not ingestible.
pub const SYSTEM_COLUMNS: &[(&str, KType)] = &[("TenantId", KType::String), ("Type", KType::String)];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    /// Ingestible columns, in order; the system columns follow them in every row.
    pub columns: Vec<Column>,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns.iter().enumerate().find(|(_, c)| c.name == name)
    }

    /// Columns as queries see them: ingestible ones, then the system columns.
    pub fn query_columns(&self) -> Vec<Column> {
        let mut cols = self.columns.clone();
        cols.extend(SYSTEM_COLUMNS.iter().map(|(n, t)| Column { name: n.to_string(), ktype: *t }));
        cols
    }
}

/// A DCR stream: its declared input columns, the table it lands in, and its transformation.
#[derive(Debug, Clone)]
pub struct StreamDecl {
    pub name: String,
    pub columns: Vec<Column>,
    pub table: String,
    pub transform: Option<String>,
}

impl From<&TableSchema> for TableDef {
    fn from(t: &TableSchema) -> Self {
        TableDef { name: t.name.clone(), columns: t.columns.iter().map(|c| Column { name: c.name.clone(), ktype: c.kind.ktype() }).collect() }
    }
}

pub fn custom_tables(schemas: &[Arc<TableSchema>]) -> Vec<TableDef> {
    schemas.iter().map(|s| TableDef::from(&**s)).collect()
}

fn def(name: &str, cols: &[(&str, KType)]) -> TableDef {
    TableDef { name: name.into(), columns: cols.iter().map(|(n, t)| Column { name: n.to_string(), ktype: *t }).collect() }
}

/// Azure's standard tables that correlation reads, with their documented columns (a faithful subset: the
/// columns the product and the demo use, plus their close neighbours).
pub fn standard_tables() -> Vec<TableDef> {
    use KType::*;
    vec![
        def(
            "Perf",
            &[
                ("TimeGenerated", DateTime),
                ("Computer", String),
                ("ObjectName", String),
                ("CounterName", String),
                ("InstanceName", String),
                ("CounterValue", Real),
                ("CounterPath", String),
                ("SourceSystem", String),
                ("_ResourceId", String),
            ],
        ),
        def(
            "AzureMetrics",
            &[
                ("TimeGenerated", DateTime),
                ("ResourceId", String),
                ("_ResourceId", String),
                ("SubscriptionId", String),
                ("ResourceGroup", String),
                ("ResourceProvider", String),
                ("Resource", String),
                ("MetricName", String),
                ("Total", Real),
                ("Count", Real),
                ("Maximum", Real),
                ("Minimum", Real),
                ("Average", Real),
                ("TimeGrain", String),
                ("UnitName", String),
            ],
        ),
        def(
            "SigninLogs",
            &[
                ("TimeGenerated", DateTime),
                ("OperationName", String),
                ("Category", String),
                ("ResultType", String),
                ("ResultDescription", String),
                ("Id", String),
                ("CorrelationId", String),
                ("UserPrincipalName", String),
                ("UserDisplayName", String),
                ("UserId", String),
                ("UserType", String),
                ("AppDisplayName", String),
                ("AppId", String),
                ("ResourceDisplayName", String),
                ("IPAddress", String),
                ("Location", String),
                ("LocationDetails", Dynamic),
                ("AutonomousSystemNumber", Int),
                ("ClientAppUsed", String),
                ("DeviceDetail", Dynamic),
                ("IsInteractive", Bool),
                ("ConditionalAccessStatus", String),
                ("AuthenticationRequirement", String),
                ("RiskLevelAggregated", String),
                ("RiskLevelDuringSignIn", String),
                ("RiskState", String),
                ("RiskDetail", String),
                ("RiskEventTypes_V2", String),
                ("Status", Dynamic),
                ("SourceSystem", String),
            ],
        ),
        // Non-interactive user sign-ins and service principal sign-ins (azure-monitor reference, tables/
        // aadnoninteractiveusersigninlogs and aadserviceprincipalsigninlogs). Unlike SigninLogs, their
        // LocationDetails, DeviceDetail and Status are strings holding JSON, the non-interactive table's
        // AutonomousSystemNumber is a string, and the service principal table has no ASN at all: queries parse
        // them with todynamic() and never assume SigninLogs' types.
        def(
            "AADNonInteractiveUserSignInLogs",
            &[
                ("TimeGenerated", DateTime),
                ("OperationName", String),
                ("Category", String),
                ("ResultType", String),
                ("ResultDescription", String),
                ("Id", String),
                ("CorrelationId", String),
                ("UserPrincipalName", String),
                ("UserDisplayName", String),
                ("UserId", String),
                ("UserType", String),
                ("AppDisplayName", String),
                ("AppId", String),
                ("ResourceDisplayName", String),
                ("IPAddress", String),
                ("Location", String),
                ("LocationDetails", String),
                ("AutonomousSystemNumber", String),
                ("ClientAppUsed", String),
                ("DeviceDetail", String),
                ("IsInteractive", Bool),
                ("IsRisky", Bool),
                ("ConditionalAccessStatus", String),
                ("AuthenticationRequirement", String),
                ("RiskLevelAggregated", String),
                ("RiskLevelDuringSignIn", String),
                ("RiskState", String),
                ("RiskDetail", String),
                ("RiskEventTypes_V2", String),
                ("Status", String),
                ("SignInEventTypes", String),
                ("UserAgent", String),
                ("SourceSystem", String),
            ],
        ),
        def(
            "AADServicePrincipalSignInLogs",
            &[
                ("TimeGenerated", DateTime),
                ("OperationName", String),
                ("Category", String),
                ("ResultType", String),
                ("ResultDescription", String),
                ("ResultSignature", String),
                ("Id", String),
                ("CorrelationId", String),
                ("AppId", String),
                ("ServicePrincipalId", String),
                ("ServicePrincipalName", String),
                ("ServicePrincipalCredentialKeyId", String),
                ("ServicePrincipalCredentialThumbprint", String),
                ("FederatedCredentialId", String),
                ("IPAddress", String),
                ("Location", String),
                ("LocationDetails", String),
                ("ResourceDisplayName", String),
                ("ResourceIdentity", String),
                ("ResourceServicePrincipalId", String),
                ("ConditionalAccessStatus", String),
                ("UniqueTokenIdentifier", String),
                ("SourceSystem", String),
            ],
        ),
        def(
            "AzureActivity",
            &[
                ("TimeGenerated", DateTime),
                ("OperationNameValue", String),
                ("OperationName", String),
                ("ActivityStatusValue", String),
                ("ActivityStatus", String),
                ("ActivitySubstatusValue", String),
                ("Level", String),
                ("Caller", String),
                ("CallerIpAddress", String),
                ("CategoryValue", String),
                ("Category", String),
                ("CorrelationId", String),
                ("EventSubmissionTimestamp", DateTime),
                ("_ResourceId", String),
                ("ResourceGroup", String),
                ("ResourceProviderValue", String),
                ("SubscriptionId", String),
                ("Properties", String),
                ("Properties_d", Dynamic),
                ("Authorization", String),
                ("Authorization_d", Dynamic),
                ("Claims_d", Dynamic),
                ("Hierarchy", String),
                ("SourceSystem", String),
            ],
        ),
        def(
            "SecurityAlert",
            &[
                ("TimeGenerated", DateTime),
                ("DisplayName", String),
                ("AlertName", String),
                ("AlertSeverity", String),
                ("Description", String),
                ("ProviderName", String),
                ("VendorName", String),
                ("VendorOriginalId", String),
                ("SystemAlertId", String),
                ("ResourceId", String),
                ("SourceComputerId", String),
                ("AlertType", String),
                ("ConfidenceLevel", String),
                ("ConfidenceScore", Real),
                ("IsIncident", Bool),
                ("StartTime", DateTime),
                ("EndTime", DateTime),
                ("ProcessingEndTime", DateTime),
                ("RemediationSteps", String),
                ("ExtendedProperties", String),
                ("Entities", String),
                ("SourceSystem", String),
                ("WorkspaceSubscriptionId", String),
                ("WorkspaceResourceGroup", String),
                ("ExtendedLinks", String),
                ("ProductName", String),
                ("ProductComponentName", String),
                ("AlertLink", String),
                ("Status", String),
                ("CompromisedEntity", String),
                ("Tactics", String),
                ("Techniques", String),
                ("SubTechniques", String),
            ],
        ),
        def(
            "SecurityIncident",
            &[
                ("TimeGenerated", DateTime),
                ("IncidentName", String),
                ("Title", String),
                ("Description", String),
                ("Severity", String),
                ("Status", String),
                ("Classification", String),
                ("ClassificationComment", String),
                ("ClassificationReason", String),
                ("Owner", Dynamic),
                ("ProviderName", String),
                ("ProviderIncidentId", String),
                ("FirstActivityTime", DateTime),
                ("LastActivityTime", DateTime),
                ("FirstModifiedTime", DateTime),
                ("LastModifiedTime", DateTime),
                ("CreatedTime", DateTime),
                ("ClosedTime", DateTime),
                ("IncidentNumber", Int),
                ("RelatedAnalyticRuleIds", Dynamic),
                ("AlertIds", Dynamic),
                ("BookmarkIds", Dynamic),
                ("Comments", Dynamic),
                ("Tasks", Dynamic),
                ("Labels", Dynamic),
                ("IncidentUrl", String),
                ("AdditionalData", Dynamic),
                ("ModifiedBy", String),
                ("SourceSystem", String),
            ],
        ),
        // Columns as the Query API's official example returns them (fixture loganalytics-query-v1-oms-post-example).
        // What a DCR's diagnostic setting (category LogErrors) records of the rows it could not take
        // (azure-monitor reference, tables/dcrlogerrors).
        def(
            "DCRLogErrors",
            &[
                ("TimeGenerated", DateTime),
                ("ClientRequestId", String),
                ("CorrelationId", String),
                ("InputStreamId", String),
                ("Message", String),
                ("OperationName", String),
                ("_ResourceId", String),
                ("SourceSystem", String),
            ],
        ),
        def(
            "Usage",
            &[
                ("Computer", String),
                ("TimeGenerated", DateTime),
                ("SourceSystem", String),
                ("StartTime", DateTime),
                ("EndTime", DateTime),
                ("ResourceUri", String),
                ("LinkedResourceUri", String),
                ("DataType", String),
                ("Solution", String),
                ("BatchesWithinSla", Long),
                ("BatchesOutsideSla", Long),
                ("BatchesCapped", Long),
                ("TotalBatches", Long),
                ("AvgLatencyInSeconds", Real),
                ("Quantity", Real),
                ("QuantityUnit", String),
                ("IsBillable", Bool),
                ("MeterId", String),
                ("LinkedMeterId", String),
            ],
        ),
        // Windows security events from the agent (azure-monitor reference, tables/securityevent); 4688 is a
        // process created, with its command line when the audit policy records it; 4624 and 4625 a logon
        // that succeeded or failed, with its type and source address.
        def(
            "SecurityEvent",
            &[
                ("TimeGenerated", DateTime),
                ("Computer", String),
                ("EventID", Int),
                ("Activity", String),
                ("Account", String),
                ("AccountType", String),
                ("CommandLine", String),
                ("NewProcessName", String),
                ("NewProcessId", String),
                ("ParentProcessName", String),
                ("Process", String),
                ("SubjectUserName", String),
                ("SubjectDomainName", String),
                ("EventSourceName", String),
                ("Channel", String),
                ("IpAddress", String),
                ("LogonType", Int),
                ("TargetUserName", String),
                ("Status", String),
                ("_ResourceId", String),
                ("SourceSystem", String),
            ],
        ),
        // Linux hosts' syslog from the agent (azure-monitor reference, tables/syslog).
        def(
            "Syslog",
            &[
                ("TimeGenerated", DateTime),
                ("Computer", String),
                ("EventTime", DateTime),
                ("Facility", String),
                ("HostIP", String),
                ("HostName", String),
                ("ProcessID", Int),
                ("ProcessName", String),
                ("SeverityLevel", String),
                ("SyslogMessage", String),
                ("_ResourceId", String),
                ("SourceSystem", String),
            ],
        ),
        def(
            "AzureDiagnostics",
            &[
                ("TimeGenerated", DateTime),
                ("ResourceId", String),
                ("Category", String),
                ("OperationName", String),
                ("ResultType", String),
                ("CallerIPAddress", String),
                ("Resource", String),
                ("ResourceGroup", String),
                ("ResourceProvider", String),
                ("ResourceType", String),
                ("SubscriptionId", String),
                ("identity_claim_upn_s", String),
                ("requestUri_s", String),
                ("id_s", String),
                ("clientIP_s", String),
                ("httpStatusCode_d", Real),
                ("_ResourceId", String),
            ],
        ),
    ]
}

/// Tables the service writes itself, which no data collection rule may feed (the Logs Ingestion API does not
/// take them: `logsIngestionApi: false` in the table catalog): Sentinel's `Watchlist`, with its documented
/// columns (azure-monitor reference, tables/watchlist).
pub fn service_tables() -> Vec<TableDef> {
    use KType::*;
    vec![def(
        "Watchlist",
        &[
            ("TimeGenerated", DateTime),
            ("AzureTenantId", String),
            ("CorrelationId", String),
            ("CreatedBy", Dynamic),
            ("CreatedTimeUTC", DateTime),
            ("DefaultDuration", String),
            ("_DTItemId", String),
            ("_DTItemStatus", String),
            ("_DTItemType", String),
            ("_DTTimestamp", DateTime),
            ("EntityMapping", Dynamic),
            ("LastUpdatedTimeUTC", DateTime),
            ("Notes", String),
            ("Provider", String),
            ("SearchKey", String),
            ("Source", String),
            ("SourceSystem", String),
            ("Tags", String),
            ("TimeToLive", DateTime),
            ("UpdatedBy", Dynamic),
            ("WatchlistAlias", String),
            ("WatchlistCategory", String),
            ("WatchlistId", String),
            ("WatchlistItem", Dynamic),
            ("WatchlistItemId", String),
            ("WatchlistName", String),
        ],
    )]
}

/// The default streams: one per table, with no transformation.
pub fn default_streams(custom: &[TableDef], standard: &[TableDef]) -> Vec<StreamDecl> {
    let mut out = Vec::new();
    for t in custom {
        out.push(StreamDecl { name: format!("Custom-{}", t.name), columns: t.columns.clone(), table: t.name.clone(), transform: None });
    }
    for t in standard {
        out.push(StreamDecl { name: format!("Microsoft-{}", t.name), columns: t.columns.clone(), table: t.name.clone(), transform: None });
    }
    out
}

/// Whether a JSON value is one Azure stores faithfully in a column of this type (null always is). Stricter
/// than Azure, which quietly stores null for a value that does not convert: here that is refused.
pub fn accepts(t: KType, v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (t, v) {
        (_, J::Null) | (KType::Dynamic, _) => true,
        (KType::String | KType::Guid, J::String(_)) => true,
        (KType::Int, J::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        (KType::Long, J::Number(n)) => n.as_i64().is_some(),
        (KType::Real, J::Number(_)) => true,
        (KType::Bool, J::Bool(_)) => true,
        (KType::DateTime, J::String(s)) => crate::model::time::parse_datetime_ticks(s).is_some(),
        (KType::TimeSpan, J::String(s)) => crate::kql::value::parse_timespan_text(s).is_some(),
        _ => false,
    }
}
