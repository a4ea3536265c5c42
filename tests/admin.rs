//! The admin HTTP API: every route does its job over a real socket, answers 401 without the
//! API key and 400 naming the field on bad input.

mod common;

use actix_wsc::hub::{SendTracked, Target};
use actix_wsc::protocol::Envelope;
use common::*;
use serde_json::{json, Value};

const KEY: &str = "admin-key";

async fn server() -> TestServer {
    let mut config = fast_config();
    config.server.api_key = Some(KEY.into());
    start(config).await
}

async fn call(s: &TestServer, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    http_json(method, &s.http_url(path), Some(KEY), body).await
}

/// 401 without the key (and nothing done), 400 naming `field` for `bad_body`/`bad_path`.
async fn refuses(s: &TestServer, method: &str, path: &str, body: Option<&Value>) {
    let (status, v) = http_json(method, &s.http_url(path), None, body).await;
    assert_eq!(status, 401, "{method} {path} without the key: {v}");
    assert_eq!(v["error"]["code"], "unauthorized");
}

fn names(v: &Value, field: &str) {
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(field), "`{m}` names `{field}`");
}

#[actix_web::test]
async fn kick_closes_every_session_of_the_user_with_4500() {
    let s = server().await;
    let (mut a1, _) = connect(&s, "user_id=a&client_id=a1").await;
    let (mut a2, _) = connect(&s, "user_id=a&client_id=a2").await;
    refuses(&s, "POST", "/api/admin/users/a/kick", None).await;
    a1.assert_alive().await;
    let (status, v) = call(
        &s,
        "POST",
        "/api/admin/users/a/kick",
        Some(&json!({"code": 4000})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    names(&v, "code");
    let (status, v) = call(
        &s,
        "POST",
        "/api/admin/users/a/kick",
        Some(&json!({"reason": "bye"})),
    )
    .await;
    assert_eq!((status, v["closed"].clone()), (200, json!(2)), "{v}");
    assert_eq!(a1.expect_close().await, Some(4500));
    assert_eq!(a2.expect_close().await, Some(4500));
    let (status, v) = call(&s, "POST", "/api/admin/users/nobody/kick", None).await;
    assert_eq!(status, 404, "{v}");
}

#[actix_web::test]
async fn disconnect_closes_one_client_with_the_given_code() {
    let s = server().await;
    let (mut c1, _) = connect(&s, "user_id=b&client_id=b1").await;
    let (mut c2, _) = connect(&s, "user_id=b&client_id=b2").await;
    refuses(&s, "POST", "/api/admin/clients/b1/disconnect", None).await;
    let (status, v) = call(
        &s,
        "POST",
        "/api/admin/clients/b1/disconnect",
        Some(&json!({"code": 3000})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    names(&v, "code");
    let (status, v) = call(
        &s,
        "POST",
        "/api/admin/clients/b1/disconnect",
        Some(&json!({"cod": 4000})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    names(&v, "cod");
    let (status, v) = call(
        &s,
        "POST",
        "/api/admin/clients/b1/disconnect",
        Some(&json!({"code": 4100})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(c1.expect_close().await, Some(4100));
    c2.assert_alive().await;
    let (status, _) = call(&s, "POST", "/api/admin/clients/b1/disconnect", None).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn group_membership_by_user_and_listing() {
    let s = server().await;
    let (mut c1, _) = connect(&s, "user_id=carl&client_id=c1").await;
    let (_c2, _) = connect(&s, "user_id=carl&client_id=c2").await;
    let (_d, _) = connect(&s, "user_id=dora&client_id=d1").await;
    let path = "/api/admin/groups/ops/members";
    refuses(&s, "POST", path, Some(&json!({"user_id": "carl"}))).await;
    refuses(&s, "GET", path, None).await;
    refuses(&s, "DELETE", "/api/admin/groups/ops/members/carl", None).await;
    let (status, v) = call(&s, "POST", path, Some(&json!({}))).await;
    assert_eq!(status, 400, "{v}");
    names(&v, "user_id");
    let (status, v) = call(&s, "POST", path, Some(&json!({"user_id": 7}))).await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = call(&s, "GET", path, None).await;
    assert_eq!(status, 404, "no such group yet");
    let (status, v) = call(&s, "POST", path, Some(&json!({"user_id": "carl"}))).await;
    assert_eq!((status, v["joined"].clone()), (200, json!(2)), "{v}");
    let (status, v) = call(&s, "POST", path, Some(&json!({"user_id": "ghost"}))).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = call(&s, "GET", path, None).await;
    assert_eq!(status, 200);
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["members"][0],
        json!({"client_id": "c1", "user_id": "carl"})
    );
    // The membership is real: a group message reaches carl's sessions.
    let (status, _) = http_json(
        "POST",
        &s.http_url("/api/send"),
        Some(KEY),
        Some(&json!({"group": "ops", "content": "to ops", "id": "g-1"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(c1.next_json().await["id"], "g-1");
    let (status, v) = call(&s, "DELETE", "/api/admin/groups/ops/members/carl", None).await;
    assert_eq!((status, v["left"].clone()), (200, json!(2)), "{v}");
    let (status, v) = call(&s, "GET", path, None).await;
    assert!(status == 404 || v["count"] == 0, "{status} {v}");
}

#[actix_web::test]
async fn retry_one_and_all_failed_messages_and_list_records() {
    let s = server().await;
    for i in 0..3 {
        let env = Envelope::system_text(format!("m{i}")).with_id(format!("f-{i}"));
        let r = s
            .hub
            .send(SendTracked::new(Target::User("eve".into()), env))
            .await
            .expect("hub");
        assert_eq!(r.stored_offline.len(), 1);
    }
    refuses(
        &s,
        "POST",
        "/api/admin/messages/f-0/retry?from=system",
        None,
    )
    .await;
    refuses(&s, "POST", "/api/admin/messages/retry-failed", None).await;
    refuses(&s, "GET", "/api/admin/messages", None).await;
    let (status, v) = call(&s, "POST", "/api/admin/messages/f-0/retry", None).await;
    assert_eq!(status, 400, "{v}");
    names(&v, "from");
    let (status, _) = call(
        &s,
        "POST",
        "/api/admin/messages/nope/retry?from=system",
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Listing: by status and user, paged.
    let (status, v) = call(
        &s,
        "GET",
        "/api/admin/messages?status=failed&user=eve&limit=2",
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 3);
    assert_eq!(v["count"], 2);
    assert_eq!(v["messages"][0]["id"], "f-0");
    let (_, v) = call(
        &s,
        "GET",
        "/api/admin/messages?status=failed&user=eve&limit=2&offset=2",
        None,
    )
    .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["messages"][0]["id"], "f-2");
    let (_, v) = call(&s, "GET", "/api/admin/messages?user=someone_else", None).await;
    assert_eq!(v["total"], 0);
    let (_, v) = call(&s, "GET", "/api/admin/messages?since_ms=0&until_ms=1", None).await;
    assert_eq!(v["total"], 0, "nothing was created in 1970");
    for (q, field) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("offset=-1", "offset"),
        ("since_ms=9&until_ms=1", "since_ms"),
        ("colour=red", "colour"),
    ] {
        let (status, v) = call(&s, "GET", &format!("/api/admin/messages?{q}"), None).await;
        assert_eq!(status, 400, "{q}: {v}");
        names(&v, field);
    }
    // eve comes online, then the failed records are retried live.
    let (mut eve, _) = connect(&s, "user_id=eve").await;
    for _ in 0..3 {
        assert_eq!(eve.next_json().await["source"], "offline");
    }
    let (status, v) = call(
        &s,
        "POST",
        "/api/admin/messages/f-0/retry?from=system",
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(eve.next_json().await["id"], "f-0");
    let (status, v) = call(&s, "POST", "/api/admin/messages/retry-failed", None).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["retried"].as_u64().is_some(), "{v}");
}
