//! The workspace's Microsoft Sentinel watchlists API (`Watchlists.json`, api-version 2025-12-01; contract
//! `seed004-surfaces.md` §10), at `…/providers/Microsoft.SecurityInsights/watchlists/{alias}`, kept where
//! Sentinel keeps watchlists: in the `Watchlist` table, one row per change.
//!
//! - `PUT` with `rawContent` (CSV or TSV text, after `numberOfLinesToSkip` lines) writes a `watchlist` row and
//!   a `watchlist-item` row per line (`_DTItemStatus` `Create`); a second `PUT` marks the old items `Delete`;
//!   201 when created, 200 when replaced. `displayName`, `provider` and `itemsSearchKey` are required, and the
//!   search key must be one of the header's columns.
//! - `GET` one (without items) or the list; `GET …/watchlistItems` (items, `itemsKeyValue`), `PUT`/`GET`/`DELETE`
//!   one item by its GUID.
//! - `DELETE` answers 202 with an `Azure-AsyncOperation` status URL (already `Succeeded`), or 204 when there was
//!   nothing to delete (the spec's `DeleteWatchlist.json`).
//!
//! `_GetWatchlist('alias')` reads these rows (`_DTItemType == 'watchlist-item'`, the latest row per
//! `_DTItemId`, not `Delete`); the enrichment's `high_value_assets.kql` reads them the same way.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{azure_error, Workspace};

/// `rawContent` is for small watchlists: "below about 3.8 MB" (Azure CLI reference, `az sentinel watchlist
/// create`); larger ones come from Azure Storage.
pub const MAX_RAW_CONTENT_BYTES: usize = 3_800_000;

/// The paths this module serves: the workspace's `Microsoft.SecurityInsights` base, then `watchlists`.
pub struct WatchlistPath {
    /// `/subscriptions/…/providers/Microsoft.SecurityInsights/watchlists`
    pub base: String,
    pub alias: Option<String>,
    /// `watchlistItems` and an item id, or `watchlistStatuses` and an operation id.
    pub child: Option<(String, Option<String>)>,
}

pub fn parse(path: &str) -> Option<WatchlistPath> {
    let (base, rest) = super::sentinel_endpoint::workspace_collection(path, "watchlists")?;
    if rest.len() > 3 {
        return None;
    }
    Some(WatchlistPath {
        base,
        alias: rest.first().map(|s| s.to_string()),
        child: rest.get(1).map(|c| (c.to_ascii_lowercase(), rest.get(2).map(|s| s.to_string()))),
    })
}

fn bad(message: &str) -> Response {
    azure_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn now() -> String {
    crate::model::time::format_datetime(time::OffsetDateTime::now_utc())
}

/// The latest row of every watchlist and item, by `_DTItemId` (rows in the order they were written).
fn latest(ws: &Workspace) -> BTreeMap<String, Map<String, Value>> {
    let mut out = BTreeMap::new();
    for r in ws.store.rows_json("Watchlist") {
        if let Value::Object(row) = r {
            if let Some(id) = row.get("_DTItemId").and_then(Value::as_str) {
                out.insert(id.to_string(), row);
            }
        }
    }
    out
}

fn text<'a>(row: &'a Map<String, Value>, k: &str) -> &'a str {
    row.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn live(row: &Map<String, Value>) -> bool {
    text(row, "_DTItemStatus") != "Delete"
}

/// The watchlist of this alias (case-insensitive, as ARM names are), if it is not deleted.
fn watchlist(ws: &Workspace, alias: &str) -> Option<Map<String, Value>> {
    latest(ws).into_values().find(|r| text(r, "_DTItemType") == "watchlist" && text(r, "WatchlistAlias").eq_ignore_ascii_case(alias) && live(r))
}

fn items(ws: &Workspace, watchlist_id: &str) -> Vec<Map<String, Value>> {
    latest(ws).into_values().filter(|r| text(r, "_DTItemType") == "watchlist-item" && text(r, "WatchlistId") == watchlist_id && live(r)).collect()
}

/// What the watchlist row keeps of its request beyond the table's columns (`itemsSearchKey`, `description`,
/// `sourceType`), in its `Notes`.
fn extra(row: &Map<String, Value>) -> Value {
    row.get("Notes").and_then(Value::as_str).and_then(|n| serde_json::from_str::<Value>(n).ok()).unwrap_or(json!({}))
}

fn search_key(row: &Map<String, Value>) -> String {
    extra(row)["itemsSearchKey"].as_str().unwrap_or_default().to_string()
}

fn watchlist_json(base: &str, row: &Map<String, Value>) -> Value {
    let alias = text(row, "WatchlistAlias");
    let extra = extra(row);
    json!({
        "id": format!("{base}/{alias}"),
        "name": alias,
        "etag": format!("\"{}\"", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text(row, "LastUpdatedTimeUTC").as_bytes())),
        "type": "Microsoft.SecurityInsights/Watchlists",
        "properties": {
            "watchlistId": text(row, "WatchlistId"),
            "displayName": text(row, "WatchlistName"),
            "provider": text(row, "Provider"),
            "source": text(row, "Source"),
            "sourceType": extra.get("sourceType").cloned().unwrap_or(json!("Local")),
            "description": extra.get("description").cloned().unwrap_or(Value::Null),
            "itemsSearchKey": extra.get("itemsSearchKey").cloned().unwrap_or(Value::Null),
            "created": row.get("CreatedTimeUTC").cloned().unwrap_or(Value::Null),
            "updated": row.get("LastUpdatedTimeUTC").cloned().unwrap_or(Value::Null),
            "createdBy": row.get("CreatedBy").cloned().unwrap_or(Value::Null),
            "updatedBy": row.get("UpdatedBy").cloned().unwrap_or(Value::Null),
            "watchlistType": "watchlist",
            "watchlistAlias": alias,
            "isDeleted": false,
            "uploadStatus": "Complete",
            "provisioningState": "Succeeded",
        }
    })
}

fn item_json(base: &str, row: &Map<String, Value>) -> Value {
    let id = text(row, "WatchlistItemId");
    json!({
        "id": format!("{base}/{}/watchlistItems/{id}", text(row, "WatchlistAlias")),
        "name": id,
        "type": "Microsoft.SecurityInsights/Watchlists/WatchlistItems",
        "properties": {
            "watchlistItemType": "watchlist-item",
            "watchlistItemId": id,
            "isDeleted": false,
            "created": row.get("CreatedTimeUTC").cloned().unwrap_or(Value::Null),
            "updated": row.get("LastUpdatedTimeUTC").cloned().unwrap_or(Value::Null),
            "itemsKeyValue": row.get("WatchlistItem").cloned().unwrap_or(json!({})),
            "entityMapping": row.get("EntityMapping").cloned().unwrap_or(json!({})),
        }
    })
}

/// Splits CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes) or TSV text into records.
pub fn split_records(text: &str, separator: char) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            c if c == separator => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                any = false;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    if any {
        record.push(field);
        records.push(record);
    }
    // Blank lines carry no item.
    records.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    Ok(records)
}

/// A content's header, and its items (each line's values by the header's names).
type Content = (Vec<String>, Vec<Map<String, Value>>);

/// The items of a `rawContent`: each line's columns by the header's names.
fn parse_content(props: &Map<String, Value>) -> Result<Content, String> {
    let raw = props.get("rawContent").and_then(Value::as_str).unwrap_or_default();
    if raw.len() > MAX_RAW_CONTENT_BYTES {
        return Err(format!("rawContent is {} bytes; at most {MAX_RAW_CONTENT_BYTES} are taken inline (larger watchlists come from Azure Storage)", raw.len()));
    }
    let separator = match props.get("contentType").and_then(Value::as_str).unwrap_or("text/csv") {
        t if t.eq_ignore_ascii_case("text/csv") => ',',
        t if t.eq_ignore_ascii_case("text/tsv") => '\t',
        other => return Err(format!("contentType '{other}' is not one of 'text/csv', 'text/tsv'")),
    };
    let skip = props.get("numberOfLinesToSkip").and_then(Value::as_u64).unwrap_or(0) as usize;
    let lines: Vec<&str> = raw.splitn(skip + 1, '\n').collect();
    let body = if skip == 0 { raw } else { lines.get(skip).copied().unwrap_or_default() };
    let mut records = split_records(body, separator)?.into_iter();
    let Some(header) = records.next() else { return Ok((Vec::new(), Vec::new())) };
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    if let Some(i) = header.iter().position(String::is_empty) {
        return Err(format!("column {} of the header has no name", i + 1));
    }
    let mut out = Vec::new();
    for (n, r) in records.enumerate() {
        if r.len() != header.len() {
            return Err(format!("line {} has {} fields; the header has {}", n + 2 + skip, r.len(), header.len()));
        }
        out.push(header.iter().cloned().zip(r.into_iter().map(Value::String)).collect());
    }
    Ok((header, out))
}

fn item_row(wl: &Map<String, Value>, item_id: &str, key: &str, values: &Map<String, Value>, status: &str, created: &str) -> Map<String, Value> {
    let t = now();
    let search = values.get(key).and_then(Value::as_str).unwrap_or_default();
    let mut row = Map::new();
    for k in ["WatchlistAlias", "WatchlistName", "WatchlistId", "Provider", "Source"] {
        row.insert(k.into(), wl.get(k).cloned().unwrap_or(Value::Null));
    }
    row.insert("TimeGenerated".into(), json!(t));
    row.insert("_DTTimestamp".into(), json!(t));
    row.insert("_DTItemId".into(), json!(item_id));
    row.insert("_DTItemType".into(), json!("watchlist-item"));
    row.insert("_DTItemStatus".into(), json!(status));
    row.insert("WatchlistItemId".into(), json!(item_id));
    row.insert("WatchlistItem".into(), Value::Object(values.clone()));
    row.insert("SearchKey".into(), json!(search));
    row.insert("CreatedTimeUTC".into(), json!(created));
    row.insert("LastUpdatedTimeUTC".into(), json!(t));
    row.insert("CreatedBy".into(), super::sentinel_endpoint::local_identity());
    row.insert("UpdatedBy".into(), super::sentinel_endpoint::local_identity());
    row
}

fn store(ws: &Workspace, rows: Vec<Map<String, Value>>) -> Result<(), Response> {
    ws.store
        .append("Watchlist", &rows)
        .map_err(|_| azure_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The local workspace could not store the watchlist."))
}

fn put_watchlist(ws: &Workspace, base: &str, alias: &str, body: &Value) -> Response {
    let Some(props) = body.get("properties").and_then(Value::as_object) else { return bad("The request body needs 'properties'.") };
    for k in ["displayName", "provider", "itemsSearchKey"] {
        if props.get(k).and_then(Value::as_str).is_none_or(|v| v.trim().is_empty()) {
            return bad(&format!("properties.{k} is required."));
        }
    }
    let key = text(props, "itemsSearchKey").to_string();
    let (header, new_items) = match parse_content(props) {
        Ok(x) => x,
        Err(why) => return bad(&format!("properties.rawContent: {why}")),
    };
    if !header.is_empty() && !header.contains(&key) {
        return bad(&format!("The itemsSearchKey '{key}' is not a column of the content (columns: {}).", header.join(", ")));
    }
    let t = now();
    let existing = watchlist(ws, alias);
    // ARM keeps the name a resource was created with, whatever case a later call spells it in.
    let alias = existing.as_ref().map_or(alias, |w| text(w, "WatchlistAlias"));
    let created = existing.as_ref().map_or(t.clone(), |w| text(w, "CreatedTimeUTC").to_string());
    let id = existing.as_ref().map_or_else(|| uuid::Uuid::new_v4().to_string(), |w| text(w, "WatchlistId").to_string());
    let notes =
        json!({"itemsSearchKey": key, "description": props.get("description"), "sourceType": props.get("sourceType").cloned().unwrap_or(json!("Local"))});
    let mut wl = Map::new();
    wl.insert("TimeGenerated".into(), json!(t));
    wl.insert("_DTTimestamp".into(), json!(t));
    wl.insert("_DTItemId".into(), json!(id));
    wl.insert("_DTItemType".into(), json!("watchlist"));
    wl.insert("_DTItemStatus".into(), json!(if existing.is_some() { "Update" } else { "Create" }));
    wl.insert("WatchlistAlias".into(), json!(alias));
    wl.insert("WatchlistName".into(), json!(text(props, "displayName")));
    wl.insert("WatchlistId".into(), json!(id));
    wl.insert("Provider".into(), json!(text(props, "provider")));
    wl.insert("Source".into(), json!(text(props, "source")));
    wl.insert("Notes".into(), json!(notes.to_string()));
    wl.insert("CreatedTimeUTC".into(), json!(created));
    wl.insert("LastUpdatedTimeUTC".into(), json!(t));
    wl.insert("CreatedBy".into(), super::sentinel_endpoint::local_identity());
    wl.insert("UpdatedBy".into(), super::sentinel_endpoint::local_identity());
    let mut rows = vec![wl.clone()];
    // New content replaces the old items: they are written as deleted, the new ones as created.
    if props.contains_key("rawContent") {
        for old in items(ws, &id) {
            let values = old.get("WatchlistItem").and_then(Value::as_object).cloned().unwrap_or_default();
            rows.push(item_row(&wl, text(&old, "_DTItemId"), &key, &values, "Delete", text(&old, "CreatedTimeUTC")));
        }
        for values in &new_items {
            rows.push(item_row(&wl, &uuid::Uuid::new_v4().to_string(), &key, values, "Create", &t));
        }
    }
    if let Err(r) = store(ws, rows) {
        return r;
    }
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    (status, Json(watchlist_json(base, &wl))).into_response()
}

fn item_op(ws: &Workspace, base: &str, alias: &str, item: Option<&str>, method: &Method, body: &Value) -> Response {
    let Some(wl) = watchlist(ws, alias) else { return azure_error(StatusCode::NOT_FOUND, "NotFound", &format!("Watchlist '{alias}' not found")) };
    let all = items(ws, text(&wl, "WatchlistId"));
    let key = search_key(&wl);
    match (method, item) {
        (&Method::GET, None) => Json(json!({"value": all.iter().map(|r| item_json(base, r)).collect::<Vec<_>>()})).into_response(),
        (_, Some(id)) if uuid::Uuid::parse_str(id).is_err() => bad(&format!("The watchlist item id '{id}' is not a GUID.")),
        (&Method::GET, Some(id)) => match all.iter().find(|r| text(r, "WatchlistItemId").eq_ignore_ascii_case(id)) {
            Some(r) => Json(item_json(base, r)).into_response(),
            None => azure_error(StatusCode::NOT_FOUND, "NotFound", &format!("Watchlist item '{id}' not found")),
        },
        (&Method::PUT, Some(id)) => {
            let Some(values) = body.pointer("/properties/itemsKeyValue").and_then(Value::as_object) else {
                return bad("properties.itemsKeyValue is required.");
            };
            let found = all.iter().find(|r| text(r, "WatchlistItemId").eq_ignore_ascii_case(id));
            let created = found.map_or_else(now, |r| text(r, "CreatedTimeUTC").to_string());
            let row = item_row(&wl, &id.to_ascii_lowercase(), &key, values, if found.is_some() { "Update" } else { "Create" }, &created);
            if let Err(r) = store(ws, vec![row.clone()]) {
                return r;
            }
            (if found.is_some() { StatusCode::OK } else { StatusCode::CREATED }, Json(item_json(base, &row))).into_response()
        }
        (&Method::DELETE, Some(id)) => match all.iter().find(|r| text(r, "WatchlistItemId").eq_ignore_ascii_case(id)) {
            Some(r) => {
                let values = r.get("WatchlistItem").and_then(Value::as_object).cloned().unwrap_or_default();
                match store(ws, vec![item_row(&wl, text(r, "_DTItemId"), &key, &values, "Delete", text(r, "CreatedTimeUTC"))]) {
                    Ok(()) => StatusCode::OK.into_response(),
                    Err(r) => r,
                }
            }
            None => StatusCode::NO_CONTENT.into_response(),
        },
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &format!("{method} is not supported on watchlist items")),
    }
}

/// Serves one watchlists call (authorised and api-version checked by the caller).
pub fn handle(ws: &Workspace, t: WatchlistPath, method: &Method, body: &Value) -> Response {
    let _guard = ws.sentinel_lock.lock().unwrap_or_else(|e| e.into_inner());
    let base = t.base.as_str();
    match (method, t.alias.as_deref(), t.child.as_ref()) {
        (&Method::GET, None, None) => {
            let all: Vec<Value> = latest(ws).values().filter(|r| text(r, "_DTItemType") == "watchlist" && live(r)).map(|r| watchlist_json(base, r)).collect();
            Json(json!({"value": all})).into_response()
        }
        (_, Some(alias), _) if alias.is_empty() || alias.len() > 64 => bad("The watchlist alias must have 1 to 64 characters."),
        (&Method::GET, Some(alias), None) => match watchlist(ws, alias) {
            Some(r) => Json(watchlist_json(base, &r)).into_response(),
            None => azure_error(StatusCode::NOT_FOUND, "NotFound", &format!("Watchlist '{alias}' not found")),
        },
        (&Method::PUT, Some(alias), None) => put_watchlist(ws, base, alias, body),
        (&Method::DELETE, Some(alias), None) => match watchlist(ws, alias) {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(wl) => {
                let key = search_key(&wl);
                let mut rows: Vec<Map<String, Value>> = items(ws, text(&wl, "WatchlistId"))
                    .iter()
                    .map(|r| {
                        let values = r.get("WatchlistItem").and_then(Value::as_object).cloned().unwrap_or_default();
                        item_row(&wl, text(r, "_DTItemId"), &key, &values, "Delete", text(r, "CreatedTimeUTC"))
                    })
                    .collect();
                let mut gone = wl.clone();
                gone.insert("_DTItemStatus".into(), json!("Delete"));
                gone.insert("TimeGenerated".into(), json!(now()));
                gone.insert("_DTTimestamp".into(), json!(now()));
                rows.push(gone);
                if let Err(r) = store(ws, rows) {
                    return r;
                }
                let op = uuid::Uuid::new_v4();
                let mut r = StatusCode::ACCEPTED.into_response();
                if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{base}/{alias}/watchlistStatuses/{op}?api-version=2025-12-01")) {
                    r.headers_mut().insert("azure-asyncoperation", v);
                }
                r
            }
        },
        // The deletion is done before the 202 is answered: its status is already final.
        (&Method::GET, Some(_), Some((child, Some(op)))) if child == "watchliststatuses" => {
            Json(json!({"id": op, "name": op, "status": "Succeeded"})).into_response()
        }
        (_, Some(alias), Some((child, item))) if child == "watchlistitems" => item_op(ws, base, alias, item.as_deref(), method, body),
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &format!("{method} is not supported here")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_quoted_separators_quotes_and_newlines() {
        let r = split_records("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\"multi\nline\",z\n\n", ',').unwrap();
        assert_eq!(r, vec![vec!["a", "b"], vec!["x, y", "say \"hi\""], vec!["multi\nline", "z"]]);
        assert!(split_records("a,\"open", ',').is_err());
        assert_eq!(split_records("a\tb\n1\t2", '\t').unwrap(), vec![vec!["a", "b"], vec!["1", "2"]]);
    }

    proptest::proptest! {
        /// Any table written as RFC 4180 CSV (quoted when it must be) reads back as it was.
        #[test]
        fn csv_reads_back_what_was_written(rows in proptest::collection::vec(proptest::collection::vec("[a-z ,\"\n\r\t]{0,6}", 3), 1..6)) {
            let quote = |f: &String| if f.contains([',', '"', '\n', '\r']) || f.trim().is_empty() { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() };
            let text: String = rows.iter().map(|r| r.iter().map(quote).collect::<Vec<_>>().join(",") + "\r\n").collect();
            proptest::prop_assert_eq!(split_records(&text, ',').unwrap(), rows);
        }
    }
}
