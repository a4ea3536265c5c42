//! The HTTP API: /api/send, /api/online, /api/stats, /health and the API key.

mod common;

use actix_wsc::supervision::MessageKey;
use common::*;
use serde_json::{json, Value};

async fn post(url: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = awc::Client::new()
        .post(url)
        .content_type("application/json");
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let mut resp = req.send_body(body.to_owned()).await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("body");
    (status, serde_json::from_slice(&body).expect("json body"))
}

async fn get(url: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = awc::Client::new().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let mut resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("body");
    (status, serde_json::from_slice(&body).expect("json body"))
}

#[actix_web::test]
async fn send_routes_and_reports() {
    let server = start(fast_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let url = server.http_url("/api/send");

    let (status, body) = post(
        &url,
        None,
        r#"{"to":"alice","content":"from api","require_ack":true,"id":"api-1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["id"], "api-1");
    assert_eq!(body["delivered"], 1);
    let m = alice.next_json().await;
    assert_eq!(m["content"], "from api");
    assert_eq!(m["from"], "system");
    assert_eq!(m["require_ack"], true);

    let (status, body) = post(&url, None, r#"{"to":"nobody","content":"x"}"#).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "stored_offline");
    assert_eq!(body["stored_offline"], json!(["nobody"]));
    assert!(body["id"].as_str().is_some());

    let (status, body) = post(&url, None, r#"{"group":"no-such-group","content":"x"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["code"], "unknown_group");

    let (status, body) = post(
        &url,
        None,
        r#"{"broadcast":true,"type":"notice","content":"all"}"#,
    )
    .await;
    assert_eq!((status, body["delivered"].clone()), (200, json!(1)));
    assert_eq!(alice.next_json().await["type"], "notice");

    for (bad, code) in [
        ("not json", "invalid_json"),
        (r#"{"content":"no target"}"#, "invalid_frame"),
        (r#"{"to":"a","group":"g"}"#, "invalid_frame"),
        (r#"{"to":"a","broadcast":true}"#, "invalid_frame"),
        (r#"{"to":"a","type":"warp"}"#, "unknown_type"),
        (r#"{"to":"a","type":"ack"}"#, "invalid_frame"),
    ] {
        let (status, body) = post(&url, None, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], code, "{bad}");
    }
    alice.assert_quiet().await;
}

#[actix_web::test]
async fn online_stats_health() {
    let server = start(fast_config()).await;
    let (_a1, _) = connect(&server, "user_id=alice").await;
    let (_a2, _) = connect(&server, "user_id=alice").await;
    let (_b, _) = connect(&server, "user_id=bob").await;
    let (status, body) = get(&server.http_url("/api/online"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"count": 2, "users": [{"user_id":"alice","sessions":2},{"user_id":"bob","sessions":1}]})
    );
    let (status, stats) = get(&server.http_url("/api/stats"), None).await;
    assert_eq!(status, 200);
    for key in [
        "node_id",
        "websocket_count",
        "total_connections",
        "active_connections",
        "messages_sent",
        "messages_received",
        "broadcasts_sent",
        "online_users",
        "uptime",
    ] {
        assert!(stats.get(key).is_some(), "stats has {key}");
    }
    assert_eq!(stats["websocket_count"], 3);
    assert_eq!(stats["online_users"], 2);
    let (status, health) = get(&server.http_url("/health"), None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
}

#[actix_web::test]
async fn api_key_guards_the_api() {
    let server = start_with(fast_config(), |w| w.api_key(Some("s3cret".into()))).await;
    let (status, body) = get(&server.http_url("/api/stats"), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        get(&server.http_url("/api/stats"), Some("wrong")).await.0,
        401
    );
    assert_eq!(
        get(&server.http_url("/api/stats"), Some("s3cret")).await.0,
        200
    );
    let url = server.http_url("/api/send");
    assert_eq!(post(&url, None, r#"{"to":"a"}"#).await.0, 401);
    assert_eq!(post(&url, Some("s3cret"), r#"{"to":"a"}"#).await.0, 202);
    // /health stays open for probes.
    assert_eq!(get(&server.http_url("/health"), None).await.0, 200);
}

#[actix_web::test]
async fn message_records_show_what_happened() {
    let server = start(fast_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (status, body) = post(
        &server.http_url("/api/send"),
        None,
        r#"{"id":"rec-1","to":"alice","content":"track me","require_ack":true}"#,
    )
    .await;
    assert_eq!((status, body["id"].clone()), (200, json!("rec-1")));
    let rel = server
        .hub
        .send(actix_wsc::hub::GetReliability)
        .await
        .expect("hub");
    let done = rel
        .records()
        .wait_final(&MessageKey::new("system", "rec-1"));
    let m = alice.next_json().await;
    assert_eq!(m["require_ack"], true);
    alice.send_json(&json!({"type":"ack","id":"rec-1"})).await;
    tokio::time::timeout(WAIT, done)
        .await
        .expect("acked in time")
        .expect("record");
    let (status, record) = get(&server.http_url("/api/messages/rec-1"), None).await;
    assert_eq!(status, 200);
    assert_eq!(record["status"], "acked");
    assert_eq!(record["attempts"][0]["number"], 1);
    assert_eq!(record["attempts"][0]["success"], true);
    assert!(record["attempts"][0]["started_at"].is_string());

    let (status, body) = post(
        &server.http_url("/api/send"),
        None,
        r#"{"id":"rec-2","to":"ghost"}"#,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body["id"], "rec-2");
    // The classifier settles the record asynchronously; wait for its outcome.
    let settled = rel
        .records()
        .wait_final(&MessageKey::new("system", "rec-2"));
    tokio::time::timeout(WAIT, settled)
        .await
        .expect("settled")
        .expect("record");
    let (status, record) = get(&server.http_url("/api/messages/rec-2"), None).await;
    assert_eq!(status, 200);
    assert_eq!(record["status"], "user_offline");
    assert_eq!(record["failure_reason"], "user_offline");
    assert_eq!(record["stored_offline"], true);

    let (status, body) = get(&server.http_url("/api/messages/nope"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[actix_web::test]
async fn tags_expiry_and_record_queries() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 150;
    let server = start(config).await;
    let rel = server
        .hub
        .send(actix_wsc::hub::GetReliability)
        .await
        .expect("hub");
    let url = server.http_url("/api/send");
    let (status, _) = post(
        &url,
        None,
        r#"{"id":"t-1","to":"away","tags":["order-42","vip"]}"#,
    )
    .await;
    assert_eq!(status, 202);
    let settled = rel.records().wait_final(&MessageKey::new("system", "t-1"));
    tokio::time::timeout(WAIT, settled)
        .await
        .expect("settled")
        .expect("record");
    let (_, record) = get(&server.http_url("/api/messages/t-1"), None).await;
    assert_eq!(record["tags"], json!(["order-42", "vip"]));

    // Expiry: an unacknowledged message past its lifetime is not resent; it ends `expired`.
    let (mut u, _) = connect(&server, "user_id=slowpoke").await;
    let done = rel.records().wait_final(&MessageKey::new("system", "e-1"));
    let (status, _) = post(
        &url,
        None,
        r#"{"id":"e-1","to":"slowpoke","require_ack":true,"expires_in_ms":50}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(u.next_json().await["id"], "e-1");
    let record = tokio::time::timeout(WAIT, done)
        .await
        .expect("settled")
        .expect("record");
    assert_eq!(
        record.status,
        actix_wsc::supervision::MessageStatus::Expired
    );
    assert_eq!(record.attempts.len(), 1, "not resent after expiry");

    let (status, list) = get(&server.http_url("/api/messages?status=user_offline"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 1);
    assert_eq!(list["messages"][0]["id"], "t-1");
    let (_, failed) = get(&server.http_url("/api/messages?status=failed"), None).await;
    assert_eq!(failed["count"], 2, "{failed}");
    let (_, retryable) = get(&server.http_url("/api/messages?status=retryable"), None).await;
    assert_eq!(retryable["count"], 1, "expired ones are not retryable");
    let (status, body) = get(&server.http_url("/api/messages?status=bogus"), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_frame");
}
