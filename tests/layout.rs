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
    for (name, route, method) in
        [("webhook", "webhook/{source}", "post"), ("enrich", "enrich", "post"), ("health", "health", "get"), ("doctor", "doctor", "get")]
    {
        let f: Value = serde_json::from_str(&read(&format!("functions/{name}/function.json"))).unwrap();
        let b = f["bindings"].as_array().unwrap();
        assert_eq!(b.len(), 2, "{name}");
        assert_eq!(b[0]["type"], "httpTrigger");
        assert_eq!(b[0]["authLevel"], "function");
        assert_eq!(b[0]["route"], route);
        assert_eq!(b[0]["methods"], serde_json::json!([method]));
        assert_eq!(b[1]["type"], "http");
        assert_eq!(b[1]["direction"], "out");
    }
}

#[test]
fn redeliver_is_the_spill_queue_trigger() {
    let f: Value = serde_json::from_str(&read("functions/redeliver/function.json")).unwrap();
    let b = &f["bindings"][0];
    assert_eq!((b["type"].as_str(), b["name"].as_str(), b["queueName"].as_str()), (Some("queueTrigger"), Some("item"), Some("sentinel-bridge-spill")));
    assert_eq!(b["connection"], "AzureWebJobsStorage");
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

/// Product code reaches the local stand-in of Azure only over HTTP: only start-up's local backend, the
/// commands and the benchmarks may name it (the tests too, being outside `src/`).
#[test]
fn product_modules_do_not_import_the_stand_in() {
    let root = format!("{}/src", env!("CARGO_MANIFEST_DIR"));
    let allowed = ["local_azure/", "cli/", "bench/", "app/local_backend.rs", "lib.rs"];
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(&root)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if !rel.ends_with(".rs") || allowed.iter().any(|a| rel.starts_with(a)) {
                continue;
            }
            let code = strip_comments(&std::fs::read_to_string(&path).unwrap());
            if code.contains("local_azure") {
                offenders.push(rel);
            }
        }
    }
    assert!(offenders.is_empty(), "product modules that name the stand-in (reach it over HTTP instead): {offenders:?}");
}
