//! The `wsc-server` binary: flags, config errors, the `listening on` line, and graceful
//! shutdown closing every session with 1001.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[actix_web::test]
async fn sigterm_closes_sessions_with_1001_and_exits_cleanly() {
    let r = spawn_server(&["--bind", "127.0.0.1:0"], &[("WSC_STORE", "memory")]);
    let url = |q: &str| format!("ws://{}/ws?{q}", r.addr);
    let mut a = try_connect(&url("user_id=a")).await.expect("connect a");
    let mut b = try_connect(&url("user_id=b")).await.expect("connect b");
    assert_eq!(a.next_json().await["type"], "system");
    assert_eq!(b.next_json().await["type"], "system");
    a.send_json(&json!({"type":"text","to":"b","content":"before shutdown"}))
        .await;
    assert_eq!(b.next_json().await["content"], "before shutdown");
    terminate(&r);
    assert_eq!(a.expect_close().await, Some(1001));
    assert_eq!(b.expect_close().await, Some(1001));
    let status = wait_exit(r);
    assert!(status.success(), "exit status {status}");
}

#[test]
fn bad_config_is_a_clear_startup_error() {
    let out = run_bounded(
        Command::new(BIN)
            .args(["--bind", "127.0.0.1:0"])
            .env("WSC_CLIENT_TIMEOUT_MS", "soon"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WSC_CLIENT_TIMEOUT_MS"), "{err}");

    let dir = std::env::temp_dir().join(format!("wsc-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[session]\nheartbeat_interval_ms = 5000\nclient_timeout_ms = 1000\n",
    )
    .expect("write");
    let out = run_bounded(
        Command::new(BIN)
            .env_remove("WSC_CLIENT_TIMEOUT_MS")
            .args(["--bind", "127.0.0.1:0", "--config"])
            .arg(&file),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("session.client_timeout_ms"), "{err}");
    std::fs::write(&file, "[session]\nheartbeat_interval = 5000\n").expect("write");
    let out = run_bounded(
        Command::new(BIN)
            .args(["--bind", "127.0.0.1:0", "--config"])
            .arg(&file),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat_interval"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_the_flags() {
    let out = run_bounded(Command::new(BIN).arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--config", "--bind", "--data-dir", "--api-key", "WSC_BIND"] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[actix_web::test]
async fn config_file_and_env_reach_the_welcome() {
    let dir = std::env::temp_dir().join(format!("wsc-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("ok.toml");
    std::fs::write(
        &file,
        "[hub]\nnode_id = \"from-file\"\n[session]\nheartbeat_interval_ms = 7000\n",
    )
    .expect("write");
    let mut cmd_args = vec!["--bind", "127.0.0.1:0", "--config"];
    let path = file.to_string_lossy().into_owned();
    cmd_args.push(&path);
    let r = spawn_server(
        &cmd_args,
        &[("WSC_CLIENT_TIMEOUT_MS", "9000"), ("WSC_STORE", "memory")],
    );
    let mut c = try_connect(&format!("ws://{}/ws?user_id=x", r.addr))
        .await
        .expect("connect");
    let w = c.next_json().await;
    assert_eq!(w["data"]["node_id"], "from-file");
    assert_eq!(w["data"]["heartbeat_interval_ms"], 7000);
    assert_eq!(w["data"]["client_timeout_ms"], 9000);
    terminate(&r);
    assert_eq!(c.expect_close().await, Some(1001));
    assert!(wait_exit(r).success());
    let _ = std::fs::remove_dir_all(&dir);
}
