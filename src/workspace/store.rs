//! Durable row storage for the local workspace: one append-only JSON-lines file per table under
//! `<data-dir>/tables/`. A call's rows are written and fsynced before its 204 is sent, so an acknowledged row
//! survives a crash or kill. A torn last line (a write cut off mid-way) is found and cut off at open, never
//! read as data and never allowed to corrupt the rows before it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

pub type Record = Map<String, Value>;

struct Table {
    rows: Vec<Arc<Record>>,
    file: Option<File>,
}

/// Rows per table, in memory and (with a directory) on disk.
pub struct Store {
    dir: Option<PathBuf>,
    tables: Mutex<HashMap<String, Table>>,
}

impl Store {
    pub fn in_memory() -> Store {
        Store { dir: None, tables: Mutex::new(HashMap::new()) }
    }

    /// Opens (or creates) a store under `dir`, loading every table file found.
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        let tdir = dir.join("tables");
        std::fs::create_dir_all(&tdir)?;
        let mut tables = HashMap::new();
        for entry in std::fs::read_dir(&tdir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let (rows, file) = load_table(&path)?;
            tables.insert(name, Table { rows, file: Some(file) });
        }
        Ok(Store { dir: Some(tdir), tables: Mutex::new(tables) })
    }

    /// Appends rows to a table durably; returns once they are on disk.
    pub fn append(&self, table: &str, rows: Vec<Record>) -> std::io::Result<()> {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if !tables.contains_key(table) {
            let file = match &self.dir {
                Some(d) => Some(OpenOptions::new().create(true).append(true).open(d.join(format!("{table}.jsonl")))?),
                None => None,
            };
            tables.insert(table.to_string(), Table { rows: Vec::new(), file });
        }
        let t = tables.get_mut(table).expect("inserted above");
        if let Some(f) = t.file.as_mut() {
            let mut buf = Vec::new();
            for r in &rows {
                serde_json::to_writer(&mut buf, r).expect("a map serialises");
                buf.push(b'\n');
            }
            f.write_all(&buf)?;
            f.sync_data()?;
        }
        t.rows.extend(rows.into_iter().map(Arc::new));
        Ok(())
    }

    pub fn rows(&self, table: &str) -> Vec<Arc<Record>> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(table).map(|t| t.rows.clone()).unwrap_or_default()
    }

    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.tables.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }
}

fn load_table(path: &Path) -> std::io::Result<(Vec<Arc<Record>>, File)> {
    let mut file = OpenOptions::new().read(true).append(true).open(path)?;
    let mut rows = Vec::new();
    let mut good_len: u64 = 0;
    {
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            let complete = line.last() == Some(&b'\n');
            match serde_json::from_slice::<Record>(&line) {
                Ok(r) if complete => {
                    rows.push(Arc::new(r));
                    good_len += n as u64;
                }
                _ => {
                    tracing::warn!(file = %path.display(), offset = good_len, "cutting off a torn write at the end of a table file");
                    break;
                }
            }
        }
    }
    if file.seek(SeekFrom::End(0))? != good_len {
        file.set_len(good_len)?;
        file.sync_all()?;
    }
    Ok((rows, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rows_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", uuid::Uuid::new_v4()));
        {
            let s = Store::open(&dir).unwrap();
            s.append("T_CL", vec![rec(json!({"a": 1})), rec(json!({"a": 2}))]).unwrap();
        }
        // A crash mid-write leaves half a line.
        let path = dir.join("tables/T_CL.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"a\": 3, \"b\"").unwrap();
        drop(f);
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.rows("T_CL").len(), 2);
        s.append("T_CL", vec![rec(json!({"a": 4}))]).unwrap();
        drop(s);
        let s = Store::open(&dir).unwrap();
        let got: Vec<_> = s.rows("T_CL").iter().map(|r| r["a"].clone()).collect();
        assert_eq!(got, [json!(1), json!(2), json!(4)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
