//! Reliability across nodes over real processes: `require_ack` tracked across nodes with the
//! ack arriving at the recipient's node and the record readable from any node; retries and
//! the offline store shared through Redis; a recipient's node killed with SIGKILL loses
//! nothing (the measured redelivery is printed).

mod cluster_harness;
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cluster_harness::*;
use common::*;
use serde_json::{json, Value};

/// Reads application frames until every id in `want` has arrived (bounded by `wait`),
/// acking each copy when `ack`; returns the first copy of each and the number of copies.
async fn collect(
    c: &mut Client,
    want: &[String],
    ack: bool,
    wait: Duration,
    who: &str,
) -> (HashMap<String, Value>, usize) {
    let deadline = Instant::now() + wait;
    let mut got: HashMap<String, Value> = HashMap::new();
    let mut copies = 0;
    while want.iter().any(|id| !got.contains_key(id)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = match c.next_matching(left, is_app_frame).await {
            Ok(m) => m,
            Err(e) => {
                let missing: Vec<_> = want.iter().filter(|id| !got.contains_key(*id)).collect();
                panic!("{who}: missing {missing:?} after {wait:?}: {e}");
            }
        };
        let id = m["id"].as_str().unwrap_or_default().to_owned();
        copies += 1;
        if ack && m["require_ack"] == true {
            let from = m["from"].as_str().unwrap_or_default().to_owned();
            c.ack_from(&id, &from).await;
        }
        got.entry(id).or_insert(m);
    }
    (got, copies)
}

#[actix_web::test]
async fn require_ack_across_nodes_is_acked_at_the_recipients_node_and_readable_everywhere() {
    let c = Cluster::start(3).await;
    let (n1, n2) = (c.node(0), c.node(1));
    let mut alice = n1.client("user_id=alice").await;
    let mut bob = n2.client("user_id=bob").await;
    n1.wait_sessions("bob", 1).await;

    alice
        .send_json(&json!({"type": "text", "to": "bob", "id": "m1",
                           "content": "important", "require_ack": true}))
        .await;
    let receipt = alice
        .next_matching(WAIT, |v| v["type"] == "ack" && v["id"] == "m1")
        .await
        .expect("the sender's receipt");
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    let m = bob.expect_app(WAIT, "the delivery on n2").await;
    assert_eq!(m["id"], "m1", "{m}");
    assert_eq!(m["from"], "alice", "{m}");
    assert_eq!(m["require_ack"], true, "{m}");
    bob.ack_from("m1", "alice").await;

    for node in &c.nodes {
        let r = node.wait_record("m1", "alice", "acked", WAIT).await;
        assert_eq!(r["status"], "acked", "{}: {r}", node.id);
    }
    // Without `?from=`, too: a node that does not hold the record finds it in the shared
    // store (n3 never saw m1; n2 only delivered it).
    for node in &c.nodes {
        let (status, r) = node.get("/api/messages/m1").await;
        assert_eq!(status, 200, "GET /api/messages/m1 on {}: {r}", node.id);
        assert_eq!(r["status"], "acked", "{}: {r}", node.id);
        assert_eq!(r["from"], "alice", "{}: {r}", node.id);
    }
    let (status, r) = c.node(2).get("/api/messages/no-such-id").await;
    assert_eq!(status, 404, "{r}");
    assert_eq!(r["error"]["code"], "not_found", "{r}");
    // Acked: no resend after the ack timeout (1.5 s).
    bob.assert_no_app_within(
        Duration::from_millis(c.opts.ack_timeout_ms + 700),
        "bob: no resend once acked",
    )
    .await;
    alice.assert_quiet_as("alice").await;
}

#[actix_web::test]
async fn an_unacked_cross_node_delivery_is_retried_then_stored_and_delivered_elsewhere() {
    let opts = Opts {
        ack_timeout_ms: 300,
        max_retries: 2,
        ..Opts::default()
    };
    let c = Cluster::start_with(3, opts).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut bob = n2.client("user_id=bob").await;
    n1.wait_sessions("bob", 1).await;
    let (status, answer) = n1
        .send(&json!({"from": "ops", "to": "bob", "id": "r1",
                      "content": "ack me", "require_ack": true}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");

    // 1 + max_retries copies with the same id, none acked.
    let mut copies = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(r) = n3.record("r1", "ops").await {
            if r["status"] == "ack_timeout" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "record r1 never ack_timeout");
        if let Ok(m) = bob
            .next_matching(Duration::from_millis(50), is_app_frame)
            .await
        {
            assert_eq!(m["id"], "r1", "{m}");
            assert_eq!(m["from"], "ops", "{m}");
            copies += 1;
        }
    }
    while let Ok(m) = bob
        .next_matching(Duration::from_millis(200), is_app_frame)
        .await
    {
        assert_eq!(m["id"], "r1", "{m}");
        copies += 1;
    }
    assert_eq!(copies, 3, "the first attempt and two retries");
    let r = n1.record("r1", "ops").await.expect("record on n1");
    assert_eq!(r["status"], "ack_timeout", "{r}");

    // Stored: bob gets it on another node, from the offline store.
    bob.close().await;
    n3.wait_sessions("bob", 0).await;
    let mut bob = n3.client("user_id=bob").await;
    let m = bob.expect_app(WAIT, "the stored copy on n3").await;
    assert_eq!(m["id"], "r1", "{m}");
    assert_eq!(m["from"], "ops", "{m}");
    assert_eq!(m["source"], "offline", "{m}");
    bob.ack_from("r1", "ops").await;
    n2.wait_record("r1", "ops", "acked", WAIT).await;
}

#[actix_web::test]
async fn a_message_stored_through_one_node_is_delivered_on_another() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let mut ids = Vec::new();
    for (i, ack) in [(0, true), (1, false), (2, true)] {
        let (status, answer) = n1
            .send(&json!({"from": "ops", "to": "carol", "id": format!("o{i}"),
                          "content": format!("offline {i}"), "require_ack": ack}))
            .await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "stored_offline", "{answer}");
        ids.push(format!("o{i}"));
    }
    let mut carol = n2.client("user_id=carol").await;
    for (i, id) in ids.iter().enumerate() {
        let m = carol.expect_app(WAIT, "a stored message on n2").await;
        assert_eq!(&m["id"], id.as_str(), "oldest first: {m}");
        assert_eq!(m["content"], format!("offline {i}"), "{m}");
        assert_eq!(m["from"], "ops", "{m}");
        assert_eq!(m["source"], "offline", "{m}");
        if m["require_ack"] == true {
            carol.ack_from(id, "ops").await;
        }
    }
    for id in ["o0", "o2"] {
        n3.wait_record(id, "ops", "acked", WAIT).await;
        n1.wait_record(id, "ops", "acked", WAIT).await;
    }
    carol
        .assert_no_app_within(Duration::from_millis(300), "nothing more")
        .await;
    carol.close().await;
    n3.wait_sessions("carol", 0).await;
    // Delivered once: nothing waits for carol on a third node.
    let mut carol = n3.client("user_id=carol").await;
    carol
        .assert_no_app_within(Duration::from_millis(500), "carol on n3: nothing replayed")
        .await;
}

/// Sends `n` `require_ack` messages to bob through `via`, from `from`, with ids `{tag}{i}`.
async fn send_unacked(via: &Node, from: &str, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{tag}{i}");
        let (status, answer) = via
            .send(&json!({"from": from, "to": "bob", "id": id,
                          "content": format!("keep {id}"), "require_ack": true}))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "accepted", "{answer}");
        ids.push(id);
    }
    ids
}

#[actix_web::test]
async fn sigkill_of_the_recipients_node_loses_no_unacked_delivery_it_accepted() {
    let mut c = Cluster::start(2).await;
    let mut bob = c.node(1).client("user_id=bob").await;
    // Accepted by the node that is about to die, for a session on it.
    let ids = send_unacked(c.node(1), "ops", "k", 3).await;
    let (first, _) = collect(&mut bob, &ids, false, WAIT, "bob on n2").await;
    assert_eq!(first.len(), 3);
    // The records are in Redis: the surviving node reads them.
    for id in &ids {
        let deadline = Instant::now() + WAIT;
        while c.node(0).record(id, "ops").await.is_none() {
            assert!(
                Instant::now() < deadline,
                "record {id} never readable on n1"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
    c.nodes[1].kill9();
    let killed = Instant::now();
    drop(bob);

    let mut bob = c.node(0).client("user_id=bob").await;
    let (again, copies) = collect(&mut bob, &ids, true, settle() + WAIT, "bob on n1").await;
    eprintln!(
        "MEASURED: n2 killed with {} unacked deliveries; bob reconnected to n1 and received \
         {} of them ({copies} copies) within {} ms of the kill",
        ids.len(),
        again.len(),
        killed.elapsed().as_millis()
    );
    for id in &ids {
        let m = &again[id];
        assert_eq!(m["from"], "ops", "{m}");
        assert_eq!(m["content"], format!("keep {id}"), "{m}");
        assert_eq!(m["require_ack"], true, "{m}");
    }
    for id in &ids {
        c.node(0)
            .wait_record(id, "ops", "acked", settle() + WAIT)
            .await;
    }
}

#[actix_web::test]
async fn sigkill_of_the_recipients_node_with_a_sender_on_another_node_loses_nothing() {
    let mut c = Cluster::start(3).await;
    let mut alice = c.node(0).client("user_id=alice").await;
    let mut bob = c.node(1).client("user_id=bob").await;
    c.node(0).wait_sessions("bob", 1).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = format!("x{i}");
        alice
            .send_json(&json!({"type": "text", "to": "bob", "id": id,
                               "content": format!("keep {id}"), "require_ack": true}))
            .await;
        let receipt = alice
            .next_matching(WAIT, |v| v["type"] == "ack" && v["id"] == id.as_str())
            .await
            .expect("receipt");
        assert_eq!(receipt["status"], "accepted", "{receipt}");
        ids.push(id);
    }
    collect(&mut bob, &ids, false, WAIT, "bob on n2").await;
    c.nodes[1].kill9();
    let killed = Instant::now();
    drop(bob);

    let mut bob = c.node(2).client("user_id=bob").await;
    let (again, copies) = collect(&mut bob, &ids, true, settle() + WAIT, "bob on n3").await;
    eprintln!(
        "MEASURED: n2 killed with {} unacked deliveries from alice on n1; bob on n3 received \
         {} of them ({copies} copies) within {} ms of the kill",
        ids.len(),
        again.len(),
        killed.elapsed().as_millis()
    );
    for id in &ids {
        assert_eq!(again[id]["from"], "alice", "{}", again[id]);
        c.node(2)
            .wait_record(id, "alice", "acked", settle() + WAIT)
            .await;
    }
    alice.assert_alive().await;
}
