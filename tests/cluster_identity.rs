//! Identity across nodes over real processes: a client id is one session in the whole
//! cluster (replaced with 4002 from another node, refused with 409 to another user), and the
//! admin API's kick and disconnect reach sessions on every node.

mod cluster_harness;
mod common;

use std::time::Duration;

use cluster_harness::*;
use common::*;
use serde_json::json;

#[actix_web::test]
async fn the_same_client_id_on_another_node_replaces_the_first_with_4002() {
    let c = Cluster::start(2).await;
    let (n1, n2) = (c.node(0), c.node(1));
    let mut first = n1.client("user_id=alice&client_id=phone").await;
    n2.wait_sessions("alice", 1).await;
    let (mut second, welcome) = n2.connect("user_id=alice&client_id=phone").await;
    assert_eq!(welcome["data"]["client_id"], "phone", "{welcome}");
    assert_eq!(welcome["data"]["node_id"], "n2", "{welcome}");
    assert_eq!(
        first.expect_close().await,
        Some(4002),
        "the session on n1 is replaced"
    );
    second.assert_alive().await;
    for node in &c.nodes {
        node.wait_sessions("alice", 1).await;
    }
    // Messages now reach the new session only.
    let (status, answer) = n1.send(&text_to("alice", "after replace")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], 1, "{answer}");
    expect_content(&mut second, "after replace", WAIT, "alice on n2").await;
    second
        .assert_no_app_within(Duration::from_millis(300), "one copy")
        .await;
}

#[actix_web::test]
async fn another_users_client_id_is_refused_with_409_on_any_node() {
    let c = Cluster::start(2).await;
    let (n1, n2) = (c.node(0), c.node(1));
    let mut alice = n1.client("user_id=alice&client_id=shared").await;
    n2.wait_sessions("alice", 1).await;
    let (status, body) = refused_upgrade(&n2.ws_url("user_id=mallory&client_id=shared")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "client_id_in_use", "{body}");
    // On the owner's node too, and the owner keeps the session.
    let (status, body) = refused_upgrade(&n1.ws_url("user_id=mallory&client_id=shared")).await;
    assert_eq!(status, 409, "{body}");
    alice.assert_alive().await;
    assert_eq!(n2.sessions_of("mallory").await, 0);
    // Once the owner leaves, the id is free on the other node.
    alice.close().await;
    n2.wait_sessions("alice", 0).await;
    let (_m, welcome) = n2.connect("user_id=mallory&client_id=shared").await;
    assert_eq!(welcome["data"]["client_id"], "shared");
}

#[actix_web::test]
async fn kick_from_any_node_closes_the_users_sessions_on_every_node_with_4500() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut b1 = n1.client("user_id=bob&client_id=b1").await;
    let mut b2 = n2.client("user_id=bob&client_id=b2").await;
    let mut alice = n2.client("user_id=alice").await;
    n3.wait_sessions("bob", 2).await;
    // n3 holds none of bob's sessions.
    let (status, answer) = n3
        .post("/api/admin/users/bob/kick", &json!({"reason": "bye"}))
        .await;
    assert_eq!(status, 200, "kick from n3: {answer}");
    assert_eq!(b1.expect_close().await, Some(4500), "bob on n1");
    assert_eq!(b2.expect_close().await, Some(4500), "bob on n2");
    for node in &c.nodes {
        node.wait_sessions("bob", 0).await;
    }
    alice.assert_alive().await;
    assert_eq!(n1.sessions_of("alice").await, 1);
}

#[actix_web::test]
async fn disconnect_client_from_another_node_closes_that_session_only() {
    let c = Cluster::start(2).await;
    let (n1, n2) = (c.node(0), c.node(1));
    let mut phone = n2.client("user_id=bob&client_id=phone").await;
    let mut laptop = n2.client("user_id=bob&client_id=laptop").await;
    n1.wait_sessions("bob", 2).await;
    let (status, answer) = n1
        .post("/api/admin/clients/phone/disconnect", &json!({}))
        .await;
    assert_eq!(status, 200, "disconnect from n1: {answer}");
    assert_eq!(phone.expect_close().await, Some(4500), "default code 4500");
    laptop.assert_alive().await;
    n1.wait_sessions("bob", 1).await;

    // With a code of the caller's choosing.
    let (status, answer) = n1
        .post(
            "/api/admin/clients/laptop/disconnect",
            &json!({"code": 4001, "reason": "idle"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(laptop.expect_close().await, Some(4001));
    n1.wait_sessions("bob", 0).await;
    // An unknown client id is still a 404 cluster-wide.
    let (status, answer) = n1
        .post("/api/admin/clients/nobody/disconnect", &json!({}))
        .await;
    assert_eq!(status, 404, "{answer}");
}
