//! Durable row storage for the local workspace: one append-only JSON-lines file per table under
//! `<data-dir>/tables/`, and typed rows in memory for queries. A call's rows are written and fsynced before
//! its 204 is sent, so an acknowledged row survives a crash or kill. A torn last line (a write cut off
//! mid-way) is found and cut off at open, never read as data and never allowed to corrupt the rows before it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value as Json};

use super::tables::{TableDef, SYSTEM_COLUMNS};
use crate::kql::{Frame, Row, Value};

pub type Record = Map<String, Json>;

struct Table {
    def: Arc<TableDef>,
    rows: Vec<Row>,
    file: Option<File>,
}

/// Rows per table, typed in memory and (with a directory) as JSON lines on disk.
pub struct Store {
    dir: Option<PathBuf>,
    tenant: Arc<str>,
    read_only: bool,
    tables: RwLock<HashMap<String, Table>>,
}

impl Store {
    /// Opens the store for the given tables; with a directory, loads what is there and appends to it. A
    /// table's file is created on its first row, not at open: the workspace knows Azure Monitor's ~700
    /// tables, and a run touches a handful. `read_only` opens files without ever writing (for a second
    /// process reading a live workspace).
    pub fn open(dir: Option<&Path>, defs: &[Arc<TableDef>], tenant: &str, read_only: bool) -> std::io::Result<Store> {
        let tdir = dir.map(|d| d.join("tables"));
        if let (Some(d), false) = (&tdir, read_only) {
            std::fs::create_dir_all(d)?;
        }
        let tenant: Arc<str> = Arc::from(tenant);
        let mut tables: HashMap<String, Table> = defs.iter().map(|d| (d.name.clone(), Table { def: d.clone(), rows: Vec::new(), file: None })).collect();
        if let Some(d) = &tdir {
            let entries = match std::fs::read_dir(d) {
                Ok(e) => e.collect::<Result<Vec<_>, _>>()?,
                Err(e) if read_only && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) else { continue };
                let Some(t) = tables.get_mut(name) else {
                    tracing::warn!(file = %path.display(), "a table file for a table this workspace does not define is left alone");
                    continue;
                };
                let records = load_file(&path, read_only)?;
                t.rows = records.iter().map(|r| typed_row(&t.def, r, &tenant)).collect();
            }
        }
        Ok(Store { dir: tdir, tenant, read_only, tables: RwLock::new(tables) })
    }

    pub fn def(&self, table: &str) -> Option<Arc<TableDef>> {
        self.tables.read().unwrap_or_else(|e| e.into_inner()).get(table).map(|t| t.def.clone())
    }

    /// Appends records (already checked against the table) durably; returns once they are on disk.
    pub fn append(&self, table: &str, records: &[Record]) -> std::io::Result<()> {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        let t = tables.get_mut(table).ok_or_else(|| std::io::Error::other(format!("no table {table}")))?;
        // Nothing to keep (every record of a call dropped): no file for a table that has no rows.
        if records.is_empty() {
            return Ok(());
        }
        if let (Some(dir), false, None) = (&self.dir, self.read_only, &t.file) {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            // Rows are vendors' events: the owner's alone.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            t.file = Some(options.open(dir.join(format!("{table}.jsonl")))?);
        }
        if let Some(f) = t.file.as_mut() {
            let mut buf = Vec::new();
            for r in records {
                serde_json::to_writer(&mut buf, r).expect("a map serialises");
                buf.push(b'\n');
            }
            f.write_all(&buf)?;
            f.sync_data()?;
        }
        let def = t.def.clone();
        t.rows.extend(records.iter().map(|r| typed_row(&def, r, &self.tenant)));
        Ok(())
    }

    /// The table as a query frame (rows shared, not copied).
    pub fn frame(&self, table: &str) -> Option<Frame> {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        let t = tables.get(table)?;
        Some(Frame { columns: t.def.query_columns(), rows: t.rows.clone() })
    }

    /// Rows as JSON objects, without null columns (for inspection and tests).
    pub fn rows_json(&self, table: &str) -> Vec<Json> {
        let Some(f) = self.frame(table) else { return Vec::new() };
        f.rows
            .iter()
            .map(|r| {
                let m: Map<String, Json> = f
                    .columns
                    .iter()
                    .zip(r.iter())
                    .filter(|(c, v)| !v.is_null() && !SYSTEM_COLUMNS.iter().any(|(n, _)| *n == c.name))
                    .map(|(c, v)| (c.name.clone(), v.to_json()))
                    .collect();
                Json::Object(m)
            })
            .collect()
    }

    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.tables.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }

    pub fn row_count(&self, table: &str) -> usize {
        self.tables.read().unwrap_or_else(|e| e.into_inner()).get(table).map(|t| t.rows.len()).unwrap_or(0)
    }

    pub fn is_durable(&self) -> bool {
        self.dir.is_some()
    }
}

/// The record key under which the time a row was ingested is kept (not a column: only `ingestion_time()`
/// reads it).
pub const INGESTED_AT: &str = "_ingestedAt";

fn typed_row(def: &TableDef, r: &Record, tenant: &Arc<str>) -> Row {
    let mut row: Vec<Value> = def.columns.iter().map(|c| r.get(&c.name).and_then(|v| Value::from_json(v, c.ktype)).unwrap_or(Value::Null)).collect();
    row.push(Value::String(tenant.clone()));
    row.push(Value::str(&def.name));
    // Past the columns, the time the row was ingested (`ingestion_time()`): the workspace's receipt time, or
    // for rows staged as history (and older files), their TimeGenerated.
    let received = r.get(INGESTED_AT).or_else(|| r.get("TimeGenerated")).and_then(|v| v.as_str()).and_then(crate::model::time::parse_datetime_ticks);
    row.push(received.map_or(Value::Null, Value::DateTime));
    row.into()
}

/// Reads a table file. Appends are whole lines, so only the last line can be torn (a write cut off by a crash):
/// a final fragment without its newline is cut. A complete line that does not parse is outside damage: it is
/// reported with its line number and skipped, and everything after it is kept.
fn load_file(path: &Path, read_only: bool) -> std::io::Result<Vec<Record>> {
    let file = File::open(path)?;
    let mut records = Vec::new();
    let mut good_len: u64 = 0;
    let mut reader = BufReader::new(&file);
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            tracing::warn!(file = %path.display(), line = number, "a torn write at the end of a table file is ignored");
            break;
        }
        good_len += n as u64;
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) => records.push(r),
            Err(e) => {
                tracing::error!(file = %path.display(), line = number, error = %e, "a damaged line in a table file is skipped; the lines after it are kept")
            }
        }
    }
    if !read_only {
        let mut f = OpenOptions::new().write(true).open(path)?;
        if f.seek(SeekFrom::End(0))? != good_len {
            f.set_len(good_len)?;
            f.sync_all()?;
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kql::{Column, KType};
    use serde_json::json;

    fn def() -> TableDef {
        TableDef { name: "T_CL".into(), columns: vec![Column { name: "a".into(), ktype: KType::Long }] }
    }

    fn rec(v: Json) -> Record {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rows_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", uuid::Uuid::new_v4()));
        {
            let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
            s.append("T_CL", &[rec(json!({"a": 1})), rec(json!({"a": 2}))]).unwrap();
        }
        // A crash mid-write leaves half a line.
        let path = dir.join("tables/T_CL.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"a\": 3, \"b\"").unwrap();
        drop(f);
        let ro = Store::open(Some(&dir), &[Arc::new(def())], "ws", true).unwrap();
        assert_eq!(ro.row_count("T_CL"), 2);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("\"b\""), "read-only never writes");
        let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
        assert_eq!(s.row_count("T_CL"), 2);
        s.append("T_CL", &[rec(json!({"a": 4}))]).unwrap();
        drop(s);
        let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
        let got: Vec<_> = s.rows_json("T_CL").iter().map(|r| r["a"].clone()).collect();
        assert_eq!(got, [json!(1), json!(2), json!(4)]);
        let f = s.frame("T_CL").unwrap();
        assert_eq!(f.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["a", "TenantId", "Type"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_table_s_file_is_made_by_its_first_row_not_by_opening_the_store() {
        let dir = std::env::temp_dir().join(format!("sb-store-lazy-{}", uuid::Uuid::new_v4()));
        let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
        let path = dir.join("tables/T_CL.jsonl");
        assert!(!path.exists());
        s.append("T_CL", &[]).unwrap();
        assert!(!path.exists(), "no rows, no file");
        s.append("T_CL", &[rec(json!({"a": 1}))]).unwrap();
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_skipped_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", uuid::Uuid::new_v4()));
        {
            let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
            s.append("T_CL", &[rec(json!({"a": 1}))]).unwrap();
        }
        let path = dir.join("tables/T_CL.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"\x00\x00 bit rot \xff\n{\"a\": 2}\n{\"a\": 3}\n").unwrap();
        drop(f);
        let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
        let got: Vec<_> = s.rows_json("T_CL").iter().map(|r| r["a"].clone()).collect();
        assert_eq!(got, [json!(1), json!(2), json!(3)], "nothing after the damage is lost");
        s.append("T_CL", &[rec(json!({"a": 4}))]).unwrap();
        drop(s);
        let s = Store::open(Some(&dir), &[Arc::new(def())], "ws", false).unwrap();
        assert_eq!(s.row_count("T_CL"), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
