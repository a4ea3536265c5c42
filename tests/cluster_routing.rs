//! Cluster routing over real processes: a `redis-server` and three `wsc-server` nodes on
//! 127.0.0.1. p2p reaches every session of the recipient on every node exactly once; group
//! messages reach members on every node (the sending session excluded); broadcast reaches
//! every session of every node; a user who moves between nodes gets each frame once.

mod cluster_harness;
mod common;

use std::time::Duration;

use cluster_harness::*;
use common::*;
use serde_json::json;

/// How long a test listens to show that no extra copy arrives.
const QUIET: Duration = Duration::from_millis(400);

#[actix_web::test]
async fn p2p_reaches_every_session_of_the_user_on_every_node_once() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut alice = n1.client("user_id=alice&client_id=a1").await;
    let mut alice_other = n2.client("user_id=alice&client_id=a2").await;
    let mut bob_n2a = n2.client("user_id=bob&client_id=b1").await;
    let mut bob_n2b = n2.client("user_id=bob&client_id=b2").await;
    let mut bob_n3 = n3.client("user_id=bob&client_id=b3").await;
    n1.wait_sessions("bob", 3).await;

    alice.send_json(&text_to("bob", "hello bob")).await;
    for (who, s) in [
        ("bob on n2 (b1)", &mut bob_n2a),
        ("bob on n2 (b2)", &mut bob_n2b),
        ("bob on n3 (b3)", &mut bob_n3),
    ] {
        let m = expect_content(s, "hello bob", WAIT, who).await;
        assert_eq!(m["from"], "alice", "{who}: {m}");
        assert_eq!(m["to"], "bob", "{who}: {m}");
        assert_eq!(m["source"], "live", "{who}: {m}");
    }
    for (who, s) in [
        ("bob b1", &mut bob_n2a),
        ("bob b2", &mut bob_n2b),
        ("bob b3", &mut bob_n3),
        ("alice a2", &mut alice_other),
    ] {
        s.assert_no_app_within(QUIET, &format!("{who}: one copy only"))
            .await;
    }

    // The HTTP API of a node holding none of the recipient's sessions routes there too.
    n1.wait_sessions("alice", 2).await;
    let (status, answer) = n3.send(&json!({"to": "alice", "content": "via n3"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");
    for (who, s) in [
        ("alice a1 on n1", &mut alice),
        ("alice a2 on n2", &mut alice_other),
    ] {
        let m = expect_content(s, "via n3", WAIT, who).await;
        assert_eq!(m["from"], "system", "{who}: {m}");
        s.assert_no_app_within(QUIET, &format!("{who}: one copy"))
            .await;
    }
    bob_n2a.assert_quiet_as("bob b1").await;
    bob_n3.assert_quiet_as("bob b3").await;
}

#[actix_web::test]
async fn p2p_between_nodes_in_both_directions_keeps_order() {
    let c = Cluster::start(2).await;
    let (n1, n2) = (c.node(0), c.node(1));
    let mut alice = n1.client("user_id=alice").await;
    let mut bob = n2.client("user_id=bob").await;
    n1.wait_sessions("bob", 1).await;
    n2.wait_sessions("alice", 1).await;
    for i in 0..20 {
        alice.send_json(&text_to("bob", &format!("a{i}"))).await;
        bob.send_json(&text_to("alice", &format!("b{i}"))).await;
    }
    for i in 0..20 {
        let m = bob.expect_app(WAIT, "alice's message on n2").await;
        assert_eq!(m["content"], format!("a{i}"), "in order: {m}");
        assert_eq!(m["from"], "alice");
        let m = alice.expect_app(WAIT, "bob's message on n1").await;
        assert_eq!(m["content"], format!("b{i}"), "in order: {m}");
        assert_eq!(m["from"], "bob");
    }
    bob.assert_no_app_within(QUIET, "bob: nothing more").await;
    alice.assert_quiet_as("alice").await;
}

/// `stats.cluster.{published,received}` of `node`: deliveries sent to and taken from other
/// nodes.
async fn delivery_counts(node: &Node) -> (u64, u64) {
    let (status, v) = node.get("/api/stats").await;
    assert_eq!(status, 200, "GET /api/stats: {v}");
    let c = &v["cluster"];
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("stats.cluster.{k} in {v}"))
    };
    (n("published"), n("received"))
}

#[actix_web::test]
async fn p2p_goes_only_to_the_nodes_that_hold_the_recipient() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut alice = n1.client("user_id=alice").await;
    let mut bob = n2.client("user_id=bob").await;
    let mut carol = n3.client("user_id=carol").await;
    for n in [n1, n2, n3] {
        n.wait_sessions("bob", 1).await;
        n.wait_sessions("carol", 1).await;
    }
    let before = [
        delivery_counts(n1).await,
        delivery_counts(n2).await,
        delivery_counts(n3).await,
    ];
    const N: u64 = 25;
    for i in 0..N {
        alice.send_json(&text_to("bob", &format!("p{i}"))).await;
    }
    for i in 0..N {
        let m = bob.expect_app(WAIT, "alice's message on n2").await;
        assert_eq!(m["content"], format!("p{i}"), "{m}");
    }
    carol.assert_quiet_as("carol on n3").await;
    let after = [
        delivery_counts(n1).await,
        delivery_counts(n2).await,
        delivery_counts(n3).await,
    ];
    assert_eq!(
        after[0].0 - before[0].0,
        N,
        "n1 published each message once"
    );
    assert_eq!(after[1].1 - before[1].1, N, "n2 received each message once");
    assert_eq!(
        after[2], before[2],
        "n3 holds no session of bob: it neither received nor sent a delivery"
    );
}

async fn join(c: &mut Client, group: &str, id: &str) {
    c.send_json(&json!({"type": "join", "group": group, "id": id}))
        .await;
    let receipt = c
        .next_matching(WAIT, |v| v["type"] == "ack" && v["id"] == id)
        .await
        .unwrap_or_else(|e| panic!("join receipt {id}: {e}"));
    assert_eq!(receipt["status"], "accepted", "join {id}: {receipt}");
}

/// Waits (bounded by [`settle`]) until `node`'s `GET /api/admin/groups/{group}/members`
/// lists `n` member sessions (cluster-wide).
async fn wait_members(node: &Node, group: &str, n: u64) {
    let deadline = std::time::Instant::now() + settle();
    loop {
        let (status, v) = node
            .get(&format!("/api/admin/groups/{group}/members"))
            .await;
        let count = if status == 404 {
            0
        } else {
            v["count"].as_u64().unwrap_or(u64::MAX)
        };
        if count == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: group {group} has {count} member sessions, expected {n}: {status} {v}",
            node.id
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn group_messages_reach_members_on_every_node_but_not_the_sending_session() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut alice = n1.client("user_id=alice&client_id=a1").await;
    let mut alice_n2 = n2.client("user_id=alice&client_id=a2").await;
    let mut bob = n2.client("user_id=bob").await;
    let mut carol = n3.client("user_id=carol").await;
    let mut dave = n1.client("user_id=dave").await; // not a member
    let mut erin = n3.client("user_id=erin").await; // not a member
    join(&mut alice, "room", "j1").await;
    join(&mut alice_n2, "room", "j2").await;
    join(&mut bob, "room", "j3").await;
    join(&mut carol, "room", "j4").await;
    // Membership is cluster-wide: every node lists the four member sessions.
    for node in &c.nodes {
        wait_members(node, "room", 4).await;
    }

    alice
        .send_json(&json!({"type": "text", "group": "room", "content": "hi room"}))
        .await;
    for (who, s) in [
        ("alice's other session on n2", &mut alice_n2),
        ("bob on n2", &mut bob),
        ("carol on n3", &mut carol),
    ] {
        let m = expect_content(s, "hi room", WAIT, who).await;
        assert_eq!(m["from"], "alice", "{who}: {m}");
        assert_eq!(m["group"], "room", "{who}: {m}");
    }
    alice
        .assert_no_app_within(QUIET, "the sending session gets no copy")
        .await;
    for (who, s) in [
        ("alice a2", &mut alice_n2),
        ("bob", &mut bob),
        ("carol", &mut carol),
        ("dave (not a member)", &mut dave),
        ("erin (not a member)", &mut erin),
    ] {
        s.assert_no_app_within(QUIET, &format!("{who}: one copy at most"))
            .await;
    }

    // The HTTP API has no sending session: every member session gets it, on every node.
    let (status, answer) = n1
        .send(&json!({"group": "room", "content": "from the api"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");
    for (who, s) in [
        ("alice a1", &mut alice),
        ("alice a2", &mut alice_n2),
        ("bob", &mut bob),
        ("carol", &mut carol),
    ] {
        expect_content(s, "from the api", WAIT, who).await;
        s.assert_no_app_within(QUIET, &format!("{who}: one copy"))
            .await;
    }

    // A member who leaves on n3 gets nothing more from n1.
    carol
        .send_json(&json!({"type": "leave", "group": "room", "id": "l1"}))
        .await;
    let receipt = carol
        .next_matching(WAIT, |v| v["type"] == "ack" && v["id"] == "l1")
        .await
        .expect("leave receipt");
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    wait_members(n3, "room", 3).await;
    let (status, answer) = n3
        .send(&json!({"group": "room", "content": "after leave"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    expect_content(&mut bob, "after leave", WAIT, "bob").await;
    carol
        .assert_no_app_within(QUIET, "carol left the room")
        .await;

    // The admin API of any node adds a user whose sessions are elsewhere.
    let (status, answer) = n1
        .post(
            "/api/admin/groups/room/members",
            &json!({"user_id": "erin"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["joined"], 1, "erin's session on n3: {answer}");
    wait_members(n2, "room", 4).await;
    let (status, answer) = n2
        .send(&json!({"group": "room", "content": "erin is in"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    expect_content(&mut erin, "erin is in", WAIT, "erin on n3").await;
    erin.assert_no_app_within(QUIET, "erin: one copy").await;
}

#[actix_web::test]
async fn broadcast_reaches_every_session_on_every_node_once() {
    let c = Cluster::start(3).await;
    let mut clients = Vec::new();
    for (i, node) in c.nodes.iter().enumerate() {
        for u in 0..2 {
            let user = format!("u{i}{u}");
            clients.push((user.clone(), node.client(&format!("user_id={user}")).await));
        }
    }
    // One user with a session on two nodes gets one copy per session.
    clients.push(("multi@n1".into(), c.node(0).client("user_id=multi").await));
    clients.push(("multi@n3".into(), c.node(2).client("user_id=multi").await));
    c.node(1).wait_sessions("multi", 2).await;
    for (i, node) in c.nodes.iter().enumerate() {
        for u in 0..2 {
            node.wait_sessions(&format!("u{i}{u}"), 1).await;
        }
    }

    let (status, answer) = c
        .node(1)
        .send(&json!({"broadcast": true, "content": "to everyone"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");
    for (who, s) in clients.iter_mut() {
        let m = expect_content(s, "to everyone", WAIT, who).await;
        assert_eq!(m["from"], "system", "{who}: {m}");
    }
    for (who, s) in clients.iter_mut() {
        s.assert_no_app_within(QUIET, &format!("{who}: one copy"))
            .await;
    }
}

#[actix_web::test]
async fn a_user_moving_between_nodes_gets_each_message_once_where_they_are() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut bob = n1.client("user_id=bob&client_id=phone").await;
    n3.wait_sessions("bob", 1).await;
    let (status, answer) = n3.send(&text_to("bob", "on n1")).await;
    assert_eq!(status, 200, "{answer}");
    expect_content(&mut bob, "on n1", WAIT, "bob on n1").await;
    bob.close().await;
    n3.wait_sessions("bob", 0).await;

    let mut bob = n2.client("user_id=bob&client_id=phone").await;
    n3.wait_sessions("bob", 1).await;
    let (status, answer) = n3.send(&text_to("bob", "on n2")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], 1, "one live session: {answer}");
    let m = expect_content(&mut bob, "on n2", WAIT, "bob on n2").await;
    assert_eq!(m["source"], "live");
    bob.assert_no_app_within(QUIET, "bob on n2: one copy, nothing replayed")
        .await;
}
