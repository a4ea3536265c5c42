//! `[limits]` over real sockets: each limit answers with the status, error code or close code
//! the README documents.

mod common;

use actix_wsc::config::{Config, LimitsConfig, SessionOverflow};
use common::*;
use serde_json::{json, Value};

fn with_limits(f: impl FnOnce(&mut LimitsConfig)) -> Config {
    let mut c = fast_config();
    f(&mut c.limits);
    c.validate().expect("valid config");
    c
}

async fn serve(config: Config) -> TestServer {
    let limits = config.limits.clone();
    start_with(config, move |w| w.limits(limits.clone())).await
}

#[actix_web::test]
async fn max_connections_refuses_with_503_json_until_one_leaves() {
    let server = serve(with_limits(|l| l.max_connections = 2)).await;
    let (a, _) = connect(&server, "user_id=a").await;
    let (_b, _) = connect(&server, "user_id=b").await;
    let (status, v) = refused_upgrade(&server.ws_url("user_id=c")).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "too_many_connections", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("max_connections")));
    a.close().await;
    let url = server.ws_url("user_id=c");
    wait_until(WAIT, "a slot frees up after a close", || {
        let url = url.clone();
        async move { try_connect(&url).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await;
}

#[actix_web::test]
async fn sessions_per_user_refused_with_429() {
    let server = serve(with_limits(|l| {
        l.max_sessions_per_user = 2;
        l.sessions_over_limit = SessionOverflow::Refuse;
    }))
    .await;
    let (_a1, _) = connect(&server, "user_id=a&client_id=a1").await;
    let (_a2, _) = connect(&server, "user_id=a&client_id=a2").await;
    let (status, v) = refused_upgrade(&server.ws_url("user_id=a&client_id=a3")).await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"]["code"], "too_many_sessions", "{v}");
    // Another user is not affected, and reusing a client id replaces instead of counting.
    let (_b, _) = connect(&server, "user_id=b").await;
    let (_a2again, _) = connect(&server, "user_id=a&client_id=a2").await;
}

#[actix_web::test]
async fn sse_sessions_get_the_same_refusals_as_websockets() {
    let server = serve(with_limits(|l| {
        l.max_sessions_per_user = 1;
        l.sessions_over_limit = SessionOverflow::Refuse;
    }))
    .await;
    let (_a1, _) = connect(&server, "user_id=a&client_id=a1").await;
    let mut resp = awc::Client::new()
        .get(server.http_url("/sse?user_id=a&client_id=a2"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status().as_u16(), 429);
    let v: Value = serde_json::from_slice(&resp.body().await.expect("body")).expect("json");
    assert_eq!(v["error"]["code"], "too_many_sessions", "{v}");
}

#[actix_web::test]
async fn sessions_per_user_replace_the_oldest_with_4002() {
    let server = serve(with_limits(|l| {
        l.max_sessions_per_user = 2;
        l.sessions_over_limit = SessionOverflow::ReplaceOldest;
    }))
    .await;
    let (mut a1, _) = connect(&server, "user_id=a&client_id=a1").await;
    let (mut a2, _) = connect(&server, "user_id=a&client_id=a2").await;
    let (mut a3, _) = connect(&server, "user_id=a&client_id=a3").await;
    assert_eq!(
        a1.expect_close().await,
        Some(4002),
        "the oldest is replaced"
    );
    a2.assert_alive().await;
    a3.assert_alive().await;
}

async fn join(c: &mut Client, id: &str, group: &str) -> Value {
    c.send_json(&json!({"type": "join", "id": id, "group": group}))
        .await;
    c.next_json().await
}

#[actix_web::test]
async fn groups_per_session_and_members_per_group() {
    let server = serve(with_limits(|l| {
        l.max_groups_per_session = 2;
        l.max_members_per_group = 1;
    }))
    .await;
    let (mut a, _) = connect(&server, "user_id=a").await;
    let (mut b, _) = connect(&server, "user_id=b").await;
    assert_eq!(join(&mut a, "j1", "g1").await["status"], "accepted");
    assert_eq!(join(&mut a, "j2", "g2").await["status"], "accepted");
    assert_eq!(
        join(&mut a, "j2b", "g2").await["status"],
        "accepted",
        "rejoin is free"
    );
    let v = join(&mut a, "j3", "g3").await;
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["id"], "j3", "{v}");
    assert_eq!(v["error"]["code"], "forbidden", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("max_groups_per_session")));
    let v = join(&mut b, "k1", "g1").await;
    assert_eq!(v["error"]["code"], "forbidden", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("max_members_per_group")));
    a.assert_alive().await;
    b.assert_alive().await;
}

#[actix_web::test]
async fn sustained_flood_is_closed_with_1008_and_acks_pings_are_free() {
    let mut config = with_limits(|l| {
        l.rate_abuse_frames = 20;
        l.rate_abuse_window_ms = 60_000;
    });
    config.session.rate_limit_per_sec = 1;
    config.session.rate_limit_burst = 3;
    let server = serve(config).await;
    let (mut c, _) = connect(&server, "user_id=a").await;
    let msg =
        |i: usize| json!({"type": "text", "id": format!("m{i}"), "to": "nobody", "content": "x"});
    for i in 0..3 {
        c.send_json(&msg(i)).await;
    }
    c.send_json(&msg(3)).await;
    let v = c
        .next_matching(WAIT, |v| v["type"] == "error")
        .await
        .expect("a rate_limited error");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert_eq!(v["id"], "m3", "{v}");
    // The bucket is empty: pings and acks still pass, none is refused.
    for _ in 0..30 {
        c.send_json(&json!({"type": "ack", "id": "unknown"})).await;
        c.send_json(&json!({"type": "ping"})).await;
        let v = c.next_json().await;
        assert_eq!(v["type"], "pong", "pings are not rate limited: {v}");
    }
    // Sustained abuse: 1008.
    for i in 4..40 {
        c.send_json(&msg(i)).await;
    }
    assert_eq!(c.expect_close().await, Some(1008));
}

#[actix_web::test]
async fn browser_origins_are_checked() {
    let server = serve(fast_config()).await;
    let url = server.ws_url("user_id=a");
    let (status, v) = refused_upgrade_from(&url, Some("http://evil.example")).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "origin_not_allowed", "{v}");
    let same = format!("http://{}", server.addr);
    let ok = awc::Client::new()
        .ws(url.as_str())
        .origin(same.as_str())
        .connect()
        .await;
    assert!(ok.is_ok(), "same origin is allowed: {:?}", ok.err());

    let server = serve(with_limits(|l| {
        l.allowed_origins = vec!["https://app.example".into()]
    }))
    .await;
    let url = server.ws_url("user_id=a");
    let ok = awc::Client::new()
        .ws(url.as_str())
        .origin("https://app.example")
        .connect()
        .await;
    assert!(ok.is_ok(), "listed origin is allowed: {:?}", ok.err());
    let same = format!("http://{}", server.addr);
    let (status, _) = refused_upgrade_from(&url, Some(&same)).await;
    assert_eq!(status, 403, "a list replaces the same-origin rule");
}

#[actix_web::test]
async fn event_streams_check_browser_origins_too() {
    let server = serve(fast_config()).await;
    let url = server.http_url("/sse?user_id=a");
    let mut res = awc::Client::new()
        .get(url.as_str())
        .insert_header(("Origin", "http://evil.example"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 403);
    let v: Value = res.json().await.expect("json body");
    assert_eq!(v["error"]["code"], "origin_not_allowed", "{v}");
    let same = format!("http://{}", server.addr);
    let res = awc::Client::new()
        .get(url.as_str())
        .insert_header(("Origin", same.as_str()))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 200, "same origin opens the stream");
}

#[actix_web::test]
async fn api_body_over_the_limit_gets_413_json() {
    let server = serve(with_limits(|l| l.max_api_body_bytes = 1_000)).await;
    let body = json!({"type": "text", "to": "a", "content": "x".repeat(2_000)});
    let (status, v) = post_json(&server.http_url("/api/send"), &body).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    let small = json!({"type": "text", "to": "a", "content": "x"});
    let (status, v) = post_json(&server.http_url("/api/send"), &small).await;
    assert_ne!(status, 413, "{v}");
}

#[actix_web::test]
async fn api_key_checked_on_every_byte() {
    let server = start_with(fast_config(), |w| w.api_key(Some("s3cret-key".into()))).await;
    let url = server.http_url("/api/online");
    for (key, want) in [
        ("s3cret-key", 200),
        ("s3cret-kez", 401),
        ("s3cret-ke", 401),
        ("s3cret-key2", 401),
        ("", 401),
    ] {
        let resp = awc::Client::new()
            .get(url.as_str())
            .insert_header(("authorization", format!("Bearer {key}")))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), want, "key {key:?}");
    }
}

#[actix_web::test]
async fn oversized_fragmented_message_is_1009() {
    let mut config = fast_config();
    config.session.max_frame_bytes = 1_000;
    let server = serve(config).await;
    let (mut c, _) = connect(&server, "user_id=a").await;
    use actix_ws::Item;
    use awc::ws::Message;
    use bytes::Bytes;
    c.send_raw(Message::Continuation(Item::FirstText(Bytes::from(
        vec![b'a'; 600],
    ))))
    .await;
    c.send_raw(Message::Continuation(Item::Last(Bytes::from(vec![
        b'a';
        600
    ]))))
    .await;
    assert_eq!(c.expect_close().await, Some(1009));
}
