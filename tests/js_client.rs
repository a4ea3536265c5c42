//! Runs the JavaScript client's `node --test` suite (clients/js/test) against this build's
//! `wsc-server` binary. Needs Node.js 18+ and npm: `apt-get install nodejs npm`.

use std::path::Path;
use std::process::Command;

fn need(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` not found: the JS client tests need Node.js 18+ and npm \
         (Debian: `apt-get install nodejs npm`; .ci/run installs them)"
    );
}

#[test]
fn js_client_node_test_suite() {
    need("node");
    need("npm");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js");
    if !dir.join("node_modules/ws").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .env("PUPPETEER_SKIP_DOWNLOAD", "1")
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in clients/js failed ({status})");
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.join("test"))
        .expect("clients/js/test")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.js"))
        .map(|n| format!("test/{n}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test.js files in clients/js/test");
    let out = Command::new("node")
        // A failed test may leave a socket or a server child open: exit anyway (the
        // harness kills the servers it started when the process exits).
        .args(["--test", "--test-force-exit"])
        .args(&files)
        .env("WSC_SERVER_BIN", env!("CARGO_BIN_EXE_wsc-server"))
        .current_dir(&dir)
        .output()
        .expect("run node --test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
