//! The Functions layout agrees with the handler: each function's route and methods are ones the router
//! serves, host.json starts `serve` with request forwarding, and every setting is documented.

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
    for (name, route, method) in [("webhook", "webhook/{source}", "post"), ("enrich", "enrich", "post"), ("health", "health", "get")] {
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
fn every_setting_is_in_the_example_and_the_readme() {
    let example: Value = serde_json::from_str(&strip_comments(&read("local.settings.json.example"))).unwrap();
    let readme = read("README.md");
    let config = read("src/config.rs");
    let config = config.split("#[cfg(test)]").next().unwrap();
    // Every setting the settings read: `get("NAME")` and `number("NAME", …)`.
    let mut names: Vec<&str> = Vec::new();
    for marker in ["get(\"", "number(\""] {
        for part in config.split(marker).skip(1) {
            let name = part.split('"').next().unwrap();
            if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for n in ["LOGS_INGESTION_ENDPOINT", "DCR_IMMUTABLE_ID", "WEBHOOK_MAX_BODY_BYTES", "SENTINEL_BRIDGE_DATA_DIR"] {
        assert!(names.contains(&n), "{n} should have been found in config.rs");
    }
    for n in names {
        if n == "FUNCTIONS_CUSTOMHANDLER_PORT" {
            continue; // set by the host, never by people
        }
        assert!(example["Values"].get(n).is_some(), "{n} is missing from local.settings.json.example");
        assert!(readme.contains(&format!("`{n}`")), "{n} is missing from the README");
    }
}
