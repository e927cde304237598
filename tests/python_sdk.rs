//! Conformance with Microsoft's Python SDKs (`azure-monitor-ingestion`, `azure-monitor-query`): they upload
//! to and query `sentinel-bridge workspace`, run as a child process like any other program would. The SDKs are
//! installed from PyPI into `target/sdk-venv` on first run (pinned in tests/conformance/requirements.txt).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/sdk-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    let reqs = root.join("tests/conformance/requirements.txt");
    let wanted = std::fs::read_to_string(&reqs).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let ok = Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).status().expect("python3 is needed for the SDK conformance test");
        assert!(ok.success(), "python3 -m venv failed");
        let ok = Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"]).arg(&reqs).status().unwrap();
        assert!(ok.success(), "pip install of the Azure SDKs failed");
        std::fs::write(&stamp, wanted).unwrap();
    }
    python
}

#[test]
fn the_azure_python_sdks_round_trip_through_the_workspace() {
    let python = venv_python();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("sb-sdk-{}", uuid::Uuid::new_v4()));
    let mut ws = Command::new(env!("CARGO_BIN_EXE_sentinel-bridge"))
        .args(["workspace", "--port", &port.to_string(), "--data-dir"])
        .arg(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "workspace did not start");
        std::thread::sleep(Duration::from_millis(25));
    }
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/sdk_roundtrip.py"))
        .args([&url, sentinel_bridge::local_azure::LOCAL_WORKSPACE_ID])
        .output()
        .unwrap();
    let _ = ws.kill();
    let _ = ws.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK conformance failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("sdk conformance: all checks passed"), "{stdout}");
}
