//! Runtime configuration: `PUT /api/config` reaching live sessions, refused updates keeping
//! the old config, `GET /api/config` redacting the key, and SIGHUP in the real binary.

mod common;

use actix_wsc::hub::{GetConfig, UpdateConfig};
use common::*;
use serde_json::json;

#[actix_web::test]
async fn shortened_client_timeout_closes_a_live_silent_session_with_4001() {
    let server = start(fast_config()).await; // 25 s heartbeat, 60 s timeout
    let (mut c, _) = connect(&server, "user_id=silent").await;
    c.auto_pong = false;
    c.assert_quiet().await;
    let patch = json!({"session": {"heartbeat_interval_ms": 100, "client_timeout_ms": 300}});
    let (status, body) =
        http_json("PUT", &server.http_url("/api/config"), None, Some(&patch)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["client_timeout_ms"], 300);
    // The session connected under the old config; it applies the new one.
    let code = loop {
        match c.next_within(WAIT).await {
            Some(Got::Ping) => {}
            Some(Got::Close(code)) => break code,
            other => panic!("expected the 4001 close, got {other:?}"),
        }
    };
    assert_eq!(code, Some(4001));
    // New sessions are told the new values in their welcome.
    let (_, welcome) = connect(&server, "user_id=next").await;
    assert_eq!(welcome["data"]["client_timeout_ms"], 300);
}

#[actix_web::test]
async fn invalid_updates_are_refused_naming_the_field_and_the_old_config_stays() {
    let server = start(fast_config()).await;
    let url = server.http_url("/api/config");
    let cases = [
        (
            json!({"session": {"client_timeout_ms": 0}}),
            "session.client_timeout_ms",
        ),
        (
            json!({"retry": {"backoff_factor": 0.5}}),
            "retry.backoff_factor",
        ),
        (json!({"server": {"bind": "0.0.0.0:1"}}), "server.bind"),
        (
            json!({"server": {"log_level": "chatty"}}),
            "server.log_level",
        ),
        (json!({"session": {"client_timeout": 5}}), "client_timeout"),
        (json!({"ack": {"ack_timeout_ms": "soon"}}), "invalid type"),
    ];
    for (patch, field) in cases {
        let (status, body) = http_json("PUT", &url, None, Some(&patch)).await;
        assert_eq!(status, 400, "{patch} -> {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "{patch}: `{message}` names {field}"
        );
    }
    let (status, body) = http_json("PUT", &url, None, Some(&json!([1]))).await;
    assert_eq!(status, 400, "{body}");
    let (status, now) = http_json("GET", &url, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(now["session"]["client_timeout_ms"], 60_000);
    assert_eq!(now["retry"]["backoff_factor"], 2.0);
    // The typed message refuses the same way.
    let mut bad = (*server.hub.send(GetConfig).await.expect("hub")).clone();
    bad.session.heartbeat_interval_ms = 0;
    let err = server
        .hub
        .send(UpdateConfig { config: bad })
        .await
        .expect("hub")
        .expect_err("refused");
    assert_eq!(err.field, "session.heartbeat_interval_ms");
    let kept = server.hub.send(GetConfig).await.expect("hub");
    assert_eq!(kept.session.heartbeat_interval_ms, 25_000);
}

#[actix_web::test]
async fn config_api_needs_the_hubs_api_key_and_redacts_it() {
    let mut config = fast_config();
    config.server.api_key = Some("s3cret".into());
    let server = start(config).await; // WscServer::new: the key comes from the hub's config
    let url = server.http_url("/api/config");
    let (status, body) = http_json("GET", &url, None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = http_json("GET", &server.http_url("/api/stats"), None, None).await;
    assert_eq!(status, 401, "the embedding app's api_key guards /api/*");
    let (status, body) = http_json("GET", &url, Some("wrong"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http_json("GET", &url, Some("s3cret"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["server"]["api_key"], "<redacted>");
    assert!(!body.to_string().contains("s3cret"));
    let (status, _) = http_json(
        "PUT",
        &url,
        None,
        Some(&json!({"ack": {"ack_timeout_ms": 10}})),
    )
    .await;
    assert_eq!(status, 401);
    // Sending the redacted config back keeps the key; a new key takes effect at once.
    let mut back = body.clone();
    back["ack"]["ack_timeout_ms"] = json!(1234);
    let (status, now) = http_json("PUT", &url, Some("s3cret"), Some(&back)).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["ack"]["ack_timeout_ms"], 1234);
    let (status, _) = http_json("GET", &url, Some("s3cret"), None).await;
    assert_eq!(status, 200, "the key was kept");
    let rotate = json!({"server": {"api_key": "next"}});
    let (status, _) = http_json("PUT", &url, Some("s3cret"), Some(&rotate)).await;
    assert_eq!(status, 200);
    assert_eq!(http_json("GET", &url, Some("s3cret"), None).await.0, 401);
    assert_eq!(http_json("GET", &url, Some("next"), None).await.0, 200);
}

#[cfg(unix)]
#[actix_web::test]
async fn sighup_rereads_the_config_file() {
    let dir = std::env::temp_dir().join(format!("wsc-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("wsc.toml");
    std::fs::write(&file, "[session]\nheartbeat_interval_ms = 25000\n").expect("write");
    let path = file.to_string_lossy().into_owned();
    let r = spawn_server(
        &["--bind", "127.0.0.1:0", "--config", &path],
        &[("WSC_STORE", "memory")],
    );
    let mut c = try_connect(&format!("ws://{}/ws?user_id=quiet", r.addr))
        .await
        .expect("connect");
    c.auto_pong = false;
    assert_eq!(c.next_json().await["data"]["client_timeout_ms"], 60_000);
    let hup = |r: &Running| {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &r.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(ok.success());
    };
    // An invalid file is refused: the old config stays (checked after the valid reload
    // below, which proves the server handled the first signal and kept running).
    std::fs::write(&file, "[session]\nheartbeat_interval_ms = \"fast\"\n").expect("write");
    hup(&r);
    let url = format!("http://{}/api/config", r.addr);
    std::fs::write(
        &file,
        "[session]\nheartbeat_interval_ms = 100\nclient_timeout_ms = 300\n[server]\nlog_level = \"debug\"\n",
    )
    .expect("write");
    hup(&r);
    let code = loop {
        match c.next_within(WAIT).await {
            Some(Got::Ping) => {}
            Some(Got::Close(code)) => break code,
            other => panic!("expected the 4001 close after SIGHUP, got {other:?}"),
        }
    };
    assert_eq!(code, Some(4001));
    let (status, now) = http_json("GET", &url, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(now["session"]["client_timeout_ms"], 300);
    assert_eq!(now["server"]["log_level"], "debug");
    terminate(&r);
    assert!(wait_exit(r).success());
    let _ = std::fs::remove_dir_all(&dir);
}
