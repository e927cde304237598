//! The Functions layout agrees with the handler: each function's route and methods are ones the router
//! serves, host.json starts `serve` with request forwarding, and every setting is documented.

use sentinel_bridge::settings::{lookup, markdown_table, Kind, SetBy, Settings, REGISTRY};
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn strip_comments(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

#[test]
fn host_json_runs_the_custom_handler() {
    let host: Value = serde_json::from_str(&read("host.json")).unwrap();
    assert_eq!(host["version"], "2.0");
    let ch = &host["customHandler"];
    assert_eq!(ch["description"]["defaultExecutablePath"], "sentinel-bridge");
    assert_eq!(ch["description"]["arguments"], serde_json::json!(["serve"]));
    assert_eq!(ch["enableForwardingHttpRequest"], true);
}

#[test]
fn functions_are_http_in_and_out_only() {
    // Forwarding applies only to functions with exactly one httpTrigger in and one http out (contract §5).
    for (name, route, method) in [
        ("webhook", "webhook/{source}", "post"),
        ("enrich", "enrich", "post"),
        ("enrich-runs", "enrich/runs/{id}", "get"),
        ("health", "health", "get"),
        ("doctor", "doctor", "get"),
    ] {
        let f: Value = serde_json::from_str(&read(&format!("functions/{name}/function.json"))).unwrap();
        let b = f["bindings"].as_array().unwrap();
        assert_eq!(b.len(), 2, "{name}");
        assert_eq!(b[0]["type"], "httpTrigger");
        // The playbook's route checks ENRICH_KEY itself (no host key is read at deployment time); the others
        // also need the host's function key.
        // (The poll URL of a run is a capability: a random id only the playbook that started the run holds.)
        assert_eq!(b[0]["authLevel"], if name.starts_with("enrich") { "anonymous" } else { "function" }, "{name}");
        assert_eq!(b[0]["route"], route);
        assert_eq!(b[0]["methods"], serde_json::json!([method]));
        assert_eq!(b[1]["type"], "http");
        assert_eq!(b[1]["direction"], "out");
    }
}

/// The queue triggers read the queue the bridge writes: both name it through the `SPILL_QUEUE` app setting
/// (`%SPILL_QUEUE%`), which infra/ sets to the queue storage.bicep creates, so they cannot disagree; the
/// poison queue's trigger keeps what reaches it.
#[test]
fn redeliver_and_deadletter_are_the_spill_queues_triggers() {
    let f: Value = serde_json::from_str(&read("functions/redeliver/function.json")).unwrap();
    let b = &f["bindings"][0];
    assert_eq!((b["type"].as_str(), b["name"].as_str(), b["queueName"].as_str()), (Some("queueTrigger"), Some("item"), Some("%SPILL_QUEUE%")));
    assert_eq!(b["connection"], "AzureWebJobsStorage");
    let f: Value = serde_json::from_str(&read("functions/deadletter/function.json")).unwrap();
    let d = &f["bindings"][0];
    assert_eq!((d["type"].as_str(), d["name"].as_str(), d["queueName"].as_str()), (Some("queueTrigger"), Some("item"), Some("%SPILL_QUEUE%-poison")));
    let app = read("infra/modules/functionapp.bicep");
    let storage = read("infra/modules/storage.bicep");
    let setting =
        app.split("name: 'SPILL_QUEUE'").nth(1).and_then(|r| r.split("value: '").nth(1)).and_then(|r| r.split('\'').next()).expect("infra sets SPILL_QUEUE");
    assert!(
        storage.contains(&format!("name: '{setting}'")) && storage.contains(&format!("name: '{setting}-poison'")),
        "storage.bicep creates {setting} and its poison queue"
    );
    assert!(Settings::from_vars([("SPILL_QUEUE".to_string(), "a".repeat(57))]).is_err(), "a queue name leaves room for -poison");
    let host: Value = serde_json::from_str(&read("host.json")).unwrap();
    assert_eq!(host["extensions"]["queues"]["messageEncoding"], "base64", "the spill writes base64 message text");
}

#[test]
fn the_readme_settings_table_is_the_registry() {
    let readme = read("README.md");
    let start = readme.find("<!-- settings:start -->").expect("README has a <!-- settings:start --> marker");
    let end = readme.find("<!-- settings:end -->").expect("README has a <!-- settings:end --> marker");
    let table = readme[start + "<!-- settings:start -->".len()..end].trim();
    assert_eq!(table, markdown_table().trim(), "the README's settings table differs from the registry: paste `cargo run -- settings`");
}

#[test]
fn the_example_settings_are_the_registry() {
    let example: Value = serde_json::from_str(&strip_comments(&read("local.settings.json.example"))).unwrap();
    let values = example["Values"].as_object().unwrap();
    for (name, _) in values {
        assert!(lookup(name).is_some(), "local.settings.json.example sets {name}, which the registry does not declare");
    }
    for def in REGISTRY.iter().filter(|d| d.set_by == SetBy::Operator) {
        let present = match def.kind {
            Kind::PerSource { .. } => values.keys().any(|k| lookup(k).is_some_and(|d| d.name == def.name)),
            _ => values.contains_key(def.name),
        };
        assert!(present, "{} is missing from local.settings.json.example", def.name);
    }
}

#[test]
fn every_declared_number_is_read_with_its_declared_range() {
    for def in REGISTRY {
        assert!(!def.doc.is_empty(), "{} has no doc line", def.name);
        let Kind::Number { default, max, .. } = def.kind else { continue };
        let over = (max + 1).to_string();
        let err = Settings::from_vars([(def.name.to_string(), over)]).expect_err(def.name);
        assert_eq!(err.setting, def.name, "{err}");
        let at_default = Settings::from_vars([(def.name.to_string(), default.to_string())]);
        assert!(at_default.is_ok(), "{}: {:?}", def.name, at_default.err());
    }
}

#[test]
fn a_mistyped_setting_of_ours_stops_start_up_naming_the_one_meant() {
    for (typo, meant) in [
        ("LOGS_INGESTON_ENDPOINT", "LOGS_INGESTION_ENDPOINT"),
        ("DCR_IMUTABLE_ID", "DCR_IMMUTABLE_ID"),
        ("SPILL_QUEU", "SPILL_QUEUE"),
        ("SOURCE_NOXYS_SECRET", "SOURCE_<NAME>_SECRETS"),
    ] {
        let err = Settings::from_vars([(typo.to_string(), "x".to_string())]).expect_err(typo);
        assert_eq!(err.setting, typo);
        assert!(err.message.contains(meant), "{typo}: {err}");
    }
    // Settings that are not ours are none of our business.
    assert!(Settings::from_vars([("LOGNAME".to_string(), "x".to_string())]).is_ok());
}

/// Which room may name which. Dependencies point down: a room names only the rooms on its line, and the
/// table itself has no cycle. The commands, the benchmarks and the lab may name anything below them; no
/// product room names the lab (what only simulates or measures) or the stand-in of Azure, which product code
/// reaches only over HTTP (start-up's `app/local_backend.rs` alone starts it, see below).
const ROOMS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("metrics", &[]),
    ("kql", &["model"]),
    ("mapping", &["model"]),
    ("azure", &["model", "metrics"]),
    ("sekoia", &["azure", "mapping", "model", "metrics"]),
    ("delivery", &["azure", "mapping", "model", "metrics", "sekoia"]),
    ("enrich", &["azure", "mapping", "model", "metrics"]),
    ("settings", &["azure", "delivery", "enrich", "mapping", "model", "metrics"]),
    ("doctor", &["settings", "azure", "delivery", "enrich", "mapping", "model", "metrics", "sekoia"]),
    ("functions", &["doctor", "settings", "azure", "delivery", "enrich", "mapping", "model", "metrics", "sekoia"]),
    ("local_azure", &["kql", "model"]),
    ("app", &["functions", "doctor", "settings", "azure", "delivery", "enrich", "mapping", "model", "metrics", "sekoia", "local_azure"]),
    ("lab", &["app", "functions", "doctor", "settings", "azure", "delivery", "enrich", "mapping", "model", "metrics", "sekoia", "kql", "local_azure"]),
    ("bench", &["lab", "app", "functions", "doctor", "settings", "azure", "delivery", "enrich", "mapping", "model", "metrics", "sekoia", "kql", "local_azure"]),
    (
        "cli",
        &[
            "bench",
            "lab",
            "app",
            "functions",
            "doctor",
            "settings",
            "azure",
            "delivery",
            "enrich",
            "mapping",
            "model",
            "metrics",
            "sekoia",
            "kql",
            "local_azure",
        ],
    ),
];

/// The rooms a piece of code names: `crate::x`, and each path of a `crate::{x, y::z}` group.
fn rooms_named(code: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0usize, 0usize);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

/// Every `.rs` file under a room (a folder or a single file), with its path relative to `src/`.
fn room_files(room: &str) -> Vec<(String, String)> {
    let root = std::path::PathBuf::from(format!("{}/src", env!("CARGO_MANIFEST_DIR")));
    let mut files = Vec::new();
    let single = root.join(format!("{room}.rs"));
    let mut stack = if single.is_file() { vec![single] } else { vec![root.join(room)] };
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            files.push((rel, strip_comments(&std::fs::read_to_string(&path).unwrap())));
        }
    }
    files
}

#[test]
fn the_room_table_is_a_dag_and_names_every_room() {
    let lib = read("src/lib.rs");
    let declared: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|l| l.trim_end_matches(';')).collect();
    let mut listed: Vec<&str> = ROOMS.iter().map(|(r, _)| *r).collect();
    listed.sort();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort();
    assert_eq!(declared_sorted, listed, "src/lib.rs declares rooms the table does not list, or the other way round");
    // Each room names only rooms listed before it: the table is in topological order, so it has no cycle.
    for (i, (room, may)) in ROOMS.iter().enumerate() {
        for m in *may {
            let at = ROOMS.iter().position(|(r, _)| r == m).unwrap_or_else(|| panic!("{room} may name {m}, which is not a room"));
            assert!(at < i, "{room} may name {m}, which is listed after it: the table would allow a cycle");
        }
    }
}

#[test]
fn each_room_names_only_the_rooms_below_it() {
    let mut offenders = Vec::new();
    for (room, may) in ROOMS {
        for (file, code) in room_files(room) {
            for named in rooms_named(&code) {
                if named != *room && !may.contains(&named.as_str()) && ROOMS.iter().any(|(r, _)| *r == named) {
                    offenders.push(format!("{file} names {named}"));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "names that break the room table (tests/layout.rs ROOMS): {offenders:#?}");
}

/// Product code reaches the local stand-in of Azure only over HTTP: within `app`, only start-up's local backend
/// may name it (the table lets `app` name it for that one file).
#[test]
fn only_the_local_backend_starts_the_stand_in() {
    let offenders: Vec<String> =
        room_files("app").into_iter().filter(|(f, code)| f != "app/local_backend.rs" && rooms_named(code).contains("local_azure")).map(|(f, _)| f).collect();
    assert!(offenders.is_empty(), "app files other than local_backend.rs name the stand-in: {offenders:?}");
}

#[test]
fn grouped_imports_are_read_path_by_path() {
    let named = rooms_named("use crate::{azure::http::Driver, model::{frame::Frame, value::Value}};\nlet x = crate::kql::run(q);");
    assert_eq!(named.into_iter().collect::<Vec<_>>(), ["azure", "kql", "model"]);
}
