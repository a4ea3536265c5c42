//! Redis faults over real processes: Redis unreachable at startup is a clear startup error;
//! Redis stopped under running nodes makes `/health` not ready while local delivery goes on
//! and cross-node sends fail visibly; restarted on the same port, the nodes reconnect by
//! themselves (the measured time is printed). Also checks the harness's Redis restart.

mod cluster_harness;
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster_harness::*;
use common::*;
use serde_json::json;

#[test]
fn redis_unreachable_at_startup_exits_2_naming_redis() {
    let port = free_port(); // nothing listens there
    let url = format!("redis://127.0.0.1:{port}/0");
    let dir = std::env::temp_dir().join(format!("wsc-cluster-noredis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let args = node_args("n1", &url, TTL_MS, &dir);
    let out = run_bounded(Command::new(BIN).args(&args));
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("unexpected argument"),
        "wsc-server knows --redis-url:\n{err}"
    );
    assert_eq!(out.status.code(), Some(2), "exit status; stderr:\n{err}");
    assert!(
        err.to_lowercase().contains("redis"),
        "stderr names Redis:\n{err}"
    );
    assert!(
        err.contains(&port.to_string()),
        "stderr names the address:\n{err}"
    );
}

#[test]
fn the_harness_restarts_redis_on_the_same_port_with_its_data() {
    let mut r = Redis::start();
    let port = r.port;
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut r.conn())
        .expect("set");
    r.stop();
    assert!(
        redis::Client::open(r.url())
            .expect("url")
            .get_connection_with_timeout(Duration::from_millis(300))
            .is_err(),
        "stopped means unreachable"
    );
    r.restart();
    assert_eq!(r.port, port);
    let v: String = redis::cmd("GET")
        .arg("k")
        .query(&mut r.conn())
        .expect("get");
    assert_eq!(v, "v", "the AOF kept the write");
}

/// Two nodes; alice and bob on n1, carol on n2, everyone visible everywhere.
async fn two_nodes_three_users() -> (Cluster, Client, Client, Client) {
    let c = Cluster::start(2).await;
    let alice = c.node(0).client("user_id=alice").await;
    let bob = c.node(0).client("user_id=bob").await;
    let carol = c.node(1).client("user_id=carol").await;
    c.node(0).wait_sessions("carol", 1).await;
    c.node(1).wait_sessions("alice", 1).await;
    (c, alice, bob, carol)
}

/// Polls `node`'s `stats.cluster.redis` until it says `want` (bounded by `wait`).
async fn wait_redis_state(node: &Node, want: &str, wait: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, stats) = node.get("/api/stats").await;
        assert_eq!(status, 200, "{stats}");
        if stats["cluster"]["redis"] == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < wait,
            "{}: stats.cluster.redis not `{want}` within {wait:?}: {stats}",
            node.id
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn redis_down_makes_health_not_ready_and_is_counted() {
    let (mut c, _alice, _bob, _carol) = two_nodes_three_users().await;
    let m = c.node(0).metrics().await;
    let errors_before = metric(&m, "wsc_cluster_redis_errors_total").unwrap_or(0.0);
    c.redis.stop();
    let stopped = Instant::now();
    for node in &c.nodes {
        node.wait_health(503, settle()).await;
        let (_, health) = node.health().await;
        assert_eq!(health["status"], "not_ready", "{}: {health}", node.id);
        wait_redis_state(node, "down", WAIT).await;
    }
    eprintln!(
        "MEASURED: Redis stopped; both nodes' /health answered 503 after {} ms",
        stopped.elapsed().as_millis()
    );
    let m = c.node(0).metrics().await;
    assert_eq!(metric(&m, "wsc_cluster_redis_up"), Some(0.0), "{m}");
    let errors = metric(&m, "wsc_cluster_redis_errors_total").unwrap_or(0.0);
    assert!(errors > errors_before, "Redis errors counted: {m}");
}

#[actix_web::test]
async fn redis_down_keeps_local_delivery_and_fails_cross_node_sends_visibly() {
    let (mut c, mut alice, mut bob, mut carol) = two_nodes_three_users().await;
    c.redis.stop();
    let n1 = c.node(0);
    wait_redis_state(n1, "down", settle()).await;

    // Local delivery keeps working.
    alice.send_json(&text_to("bob", "local while down")).await;
    let got = expect_content(&mut bob, "local while down", WAIT, "bob on n1").await;
    assert_eq!(got["from"], "alice");
    let (status, answer) = n1.send(&text_to("bob", "local api while down")).await;
    assert_eq!(status, 200, "{answer}");
    expect_content(&mut bob, "local api while down", WAIT, "bob on n1").await;

    // A cross-node send fails visibly: never a plain success (both observed, then checked).
    let (status, answer) = n1.send(&text_to("carol", "cross while down")).await;
    eprintln!(
        "OBSERVED: POST /api/send to a user on the other node, Redis down: {status} {answer}"
    );
    alice
        .send_json(&json!({"type": "text", "to": "carol", "id": "w1",
                           "content": "ws while down", "require_ack": true}))
        .await;
    let receipt = alice
        .next_matching(WAIT, |v| {
            v["id"] == "w1" && matches!(v["type"].as_str(), Some("ack") | Some("error"))
        })
        .await
        .expect("a receipt or an error for w1");
    eprintln!("OBSERVED: WS require_ack send to the other node, Redis down: {receipt}");
    assert!(
        status >= 400 || answer["status"] == "failed",
        "a cross-node send during the outage is reported as failed: {status} {answer}"
    );
    assert_ne!(answer["status"], "accepted", "{answer}");
    assert_ne!(
        receipt["status"], "accepted",
        "the sender's receipt: {receipt}"
    );
    carol
        .assert_no_app_within(Duration::from_millis(300), "nothing crossed")
        .await;
}

#[actix_web::test]
async fn redis_back_on_the_same_port_the_nodes_reconnect_by_themselves() {
    let (mut c, mut alice, _bob, mut carol) = two_nodes_three_users().await;
    c.redis.stop();
    for node in &c.nodes {
        wait_redis_state(node, "down", settle()).await;
    }
    c.redis.restart();
    let restarted = Instant::now();
    let bound = Duration::from_secs(15);
    for node in &c.nodes {
        node.wait_health(200, bound).await;
        wait_redis_state(node, "up", bound).await;
    }
    eprintln!(
        "MEASURED: Redis restarted; both nodes ready and `up` after {} ms",
        restarted.elapsed().as_millis()
    );
    let n1 = c.node(0);
    // Sessions from before the outage count again, and cross-node delivery works.
    n1.wait_sessions("carol", 1).await;
    c.node(1).wait_sessions("alice", 1).await;
    eprintln!(
        "MEASURED: presence back on both nodes {} ms after the Redis restart",
        restarted.elapsed().as_millis()
    );
    let (status, answer) = n1.send(&text_to("carol", "cross after restart")).await;
    eprintln!(
        "OBSERVED: first cross-node send {} ms after the Redis restart: {status} {answer}",
        restarted.elapsed().as_millis()
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");
    expect_content(&mut carol, "cross after restart", WAIT, "carol on n2").await;
    carol.send_json(&text_to("alice", "and back")).await;
    expect_content(&mut alice, "and back", WAIT, "alice on n1").await;
    let m = n1.metrics().await;
    assert_eq!(metric(&m, "wsc_cluster_redis_up"), Some(1.0), "{m}");
}
