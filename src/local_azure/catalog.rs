//! Azure Monitor's tables, as the local workspace knows them: every documented Log Analytics table with its
//! columns and types, and whether the Logs Ingestion API may target it. Generated into `azure_tables.tsv`
//! from `../shared/azure-monitor-tables/tables.json` (Microsoft's table reference and its Logs table feature
//! matrix); the test below regenerates it (`UPDATE_CATALOG=1`) and fails when the two differ, so the repo
//! builds without `../shared` and never drifts from it.
//!
//! Azure Monitor Logs table reference and Logs table feature support reference, © Microsoft, from
//! MicrosoftDocs/azure-reference-other (bea53845fe) and MicrosoftDocs/azure-monitor-docs (18ed39a1ec),
//! licensed CC BY 4.0; columns, types and attributes extracted and normalised, descriptions removed.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use super::tables::{TableDef, SYSTEM_COLUMNS};
use crate::kql::{Column, KType};

/// The generated catalog: a header of `#` lines (the attribution), then one line per table:
/// `Name<TAB>ingestible (1/0)<TAB>column:type,column:type,…` in the reference's column order.
const CATALOG: &str = include_str!("azure_tables.tsv");

/// One documented table.
#[derive(Debug)]
pub struct CatalogTable {
    pub def: Arc<TableDef>,
    /// The Logs Ingestion API may target it (the feature matrix's "Logs ingestion API" column).
    pub ingestible: bool,
}

/// Columns a resource type writes into AzureDiagnostics that its reference page does not list. AzureDiagnostics
/// takes each resource's fields as it finds them, nested ones flattened with `_` and suffixed by type (`_s`,
/// `_d`, `_g`, `_b`, `_t`): Key Vault's AuditEvent records carry the caller's claims under `identity.claim`
/// (Key Vault logging, "Interpret your Key Vault logs"), which land as these. The page also leaves out the
/// `TimeGenerated` every Log Analytics table has.
const AZURE_DIAGNOSTICS_EXTRA: &[(&str, KType)] = &[
    ("TimeGenerated", KType::DateTime),
    ("identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g", KType::Guid),
    ("identity_claim_http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn_s", KType::String),
    ("identity_claim_oid_g", KType::Guid),
    ("identity_claim_upn_s", KType::String),
    ("SubscriptionId", KType::String),
];

static TABLES: LazyLock<Vec<CatalogTable>> = LazyLock::new(|| parse(CATALOG).expect("the committed catalog parses"));
static BY_NAME: LazyLock<HashMap<&'static str, &'static CatalogTable>> = LazyLock::new(|| TABLES.iter().map(|t| (t.def.name.as_str(), t)).collect());

/// Every documented table, by name.
pub fn tables() -> &'static [CatalogTable] {
    &TABLES
}

pub fn table(name: &str) -> Option<&'static CatalogTable> {
    BY_NAME.get(name).copied()
}

fn parse(text: &str) -> Result<Vec<CatalogTable>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.is_empty()) {
        let mut parts = line.split('\t');
        let (Some(name), Some(flag), Some(cols), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {}: three tab-separated fields expected", i + 1));
        };
        let mut columns = Vec::new();
        for c in cols.split(',') {
            let (n, t) = c.split_once(':').ok_or_else(|| format!("line {}: column {c:?} has no type", i + 1))?;
            let ktype = KType::parse(t).ok_or_else(|| format!("line {}: unknown type {t:?}", i + 1))?;
            // TenantId and Type are the system columns every row ends with (tables::SYSTEM_COLUMNS).
            if !SYSTEM_COLUMNS.iter().any(|(s, _)| *s == n) {
                columns.push(Column { name: n.to_string(), ktype });
            }
        }
        if name == "AzureDiagnostics" {
            for (n, t) in AZURE_DIAGNOSTICS_EXTRA {
                if !columns.iter().any(|c| c.name == *n) {
                    columns.push(Column { name: n.to_string(), ktype: *t });
                }
            }
        }
        out.push(CatalogTable { def: Arc::new(TableDef { name: name.to_string(), columns }), ingestible: flag == "1" });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog as `azure_tables.tsv` holds it, built from the shared table reference.
    fn generate(json: &serde_json::Value) -> String {
        let mut out = String::new();
        out.push_str("# Generated from ../shared/azure-monitor-tables/tables.json by `UPDATE_CATALOG=1 cargo test --lib catalog`. Do not edit.\n");
        out.push_str(&format!("# {}\n", json["source"]["attribution"].as_str().expect("attribution")));
        out.push_str("# Name\tLogs Ingestion API (1/0)\tcolumn:type,…\n");
        let tables = json["tables"].as_object().expect("tables");
        let mut names: Vec<&String> = tables.keys().collect();
        names.sort();
        for name in names {
            let t = &tables[name];
            let cols: Vec<String> = t["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| format!("{}:{}", c[0].as_str().expect("name"), c[1].as_str().expect("type")))
                .collect();
            let ingestible = t["logsIngestionApi"].as_bool() == Some(true);
            out.push_str(&format!("{name}\t{}\t{}\n", u8::from(ingestible), cols.join(",")));
        }
        out
    }

    #[test]
    fn the_committed_catalog_is_the_shared_reference() {
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/azure-monitor-tables/tables.json");
        let Ok(text) = std::fs::read_to_string(&source) else {
            eprintln!("{} is not here: the committed catalog is checked where the reference is", source.display());
            return;
        };
        let expected = generate(&serde_json::from_str(&text).expect("tables.json is JSON"));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/local_azure/azure_tables.tsv");
        if std::env::var_os("UPDATE_CATALOG").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        assert!(CATALOG == expected, "src/local_azure/azure_tables.tsv differs from {}: run UPDATE_CATALOG=1 cargo test --lib catalog", source.display());
    }

    #[test]
    fn every_documented_table_is_there_with_its_columns_and_types() {
        assert_eq!(tables().len(), 696);
        let vmc = table("VMConnection").unwrap();
        assert!(!vmc.ingestible);
        let col = |t: &CatalogTable, n: &str| t.def.column(n).map(|(_, c)| c.ktype);
        assert_eq!(col(vmc, "DestinationPort"), Some(KType::Int));
        assert_eq!(col(vmc, "BytesSent"), Some(KType::Long));
        assert_eq!(col(vmc, "_ResourceId"), Some(KType::String));
        assert_eq!(col(vmc, "TenantId"), None, "a system column, appended to every row");
        assert!(table("SecurityEvent").unwrap().ingestible && table("Syslog").unwrap().ingestible);
        assert!(!table("Perf").unwrap().ingestible && !table("Watchlist").unwrap().ingestible);
        let diag = table("AzureDiagnostics").unwrap();
        assert_eq!(col(diag, "TimeGenerated"), Some(KType::DateTime));
        assert_eq!(col(diag, "CallerIPAddress"), Some(KType::String));
        assert_eq!(col(diag, "identity_claim_http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn_s"), Some(KType::String));
        assert!(CATALOG.lines().take(3).any(|l| l.contains("CC BY 4.0")), "the attribution travels with the data");
    }

    #[test]
    fn a_damaged_catalog_is_an_error_not_a_table() {
        assert!(parse("T\t1\n").is_err());
        assert!(parse("T\t1\tA:nosuchtype\n").is_err());
        assert!(parse("T\t1\tA\n").is_err());
    }
}
