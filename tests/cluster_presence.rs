//! Cluster presence over real processes: `/api/online`, `/api/stats` and `/metrics` answer
//! for the whole cluster from any node, and a node killed with SIGKILL stops counting within
//! about `node_ttl_ms` (the measured time is printed).

mod cluster_harness;
mod common;

use std::time::{Duration, Instant};

use cluster_harness::*;
use serde_json::Value;

/// `(node_id, sessions)` pairs of `stats.cluster.nodes`, sorted.
fn stat_nodes(stats: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = stats["cluster"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("stats.cluster.nodes is a list: {stats}"))
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap_or("?").to_owned(),
                n["sessions"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    v.sort();
    v
}

/// Polls `check` on `node`'s stats until it holds, bounded by [`settle`].
async fn wait_stats(node: &Node, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + settle();
    loop {
        let (status, stats) = node.get("/api/stats").await;
        assert_eq!(status, 200, "{stats}");
        if check(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "{} stats: {what} not within {:?}; last {stats}",
            node.id,
            settle()
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect()
}

#[actix_web::test]
async fn online_users_and_stats_are_cluster_wide_on_every_node() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    let _a1 = n1.client("user_id=alice&client_id=a1").await;
    let _a2 = n2.client("user_id=alice&client_id=a2").await;
    let _b = n3.client("user_id=bob").await;
    let carol = n1.client("user_id=carol").await;

    let expected = owned(&[("alice", 2), ("bob", 1), ("carol", 1)]);
    for node in &c.nodes {
        node.wait_sessions("bob", 1).await;
        node.wait_sessions("alice", 2).await;
        node.wait_sessions("carol", 1).await;
        assert_eq!(node.online().await, expected, "{}'s /api/online", node.id);
        let (_, v) = node.get("/api/online").await;
        assert_eq!(v["count"], 3, "{}: {v}", node.id);
        let stats = wait_stats(node, "4 sessions of 3 users", |s| {
            s["websocket_count"] == 4 && s["online_users"] == 3
        })
        .await;
        assert_eq!(stats["active_connections"], 4, "{stats}");
        assert_eq!(stats["cluster"]["node_id"], node.id.as_str(), "{stats}");
        assert_eq!(stats["cluster"]["redis"], "up", "{stats}");
        assert_eq!(
            stat_nodes(&stats),
            owned(&[("n1", 2), ("n2", 1), ("n3", 1)]),
            "{stats}"
        );
    }

    // A session that closes on n1 leaves every node's view.
    carol.close().await;
    for node in &c.nodes {
        node.wait_sessions("carol", 0).await;
        let stats = wait_stats(node, "3 sessions of 2 users", |s| {
            s["websocket_count"] == 3 && s["online_users"] == 2
        })
        .await;
        assert_eq!(
            stat_nodes(&stats),
            owned(&[("n1", 1), ("n2", 1), ("n3", 1)]),
            "{stats}"
        );
    }
}

#[actix_web::test]
async fn a_node_killed_with_sigkill_stops_counting_within_its_ttl() {
    let mut c = Cluster::start(2).await;
    let _alice = c.node(0).client("user_id=alice").await;
    let _b1 = c.node(1).client("user_id=bob&client_id=b1").await;
    let _b2 = c.node(1).client("user_id=bob&client_id=b2").await;
    c.node(0).wait_sessions("bob", 2).await;
    wait_stats(c.node(0), "two nodes", |s| {
        s["cluster"]["nodes"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    // Checked after the measurement, so that a missing gauge does not hide it.
    let metrics_before = c.node(0).metrics().await;

    c.nodes[1].kill9();
    let killed = Instant::now();
    let n1 = c.node(0);
    let gone = n1.wait_sessions("bob", 0).await;
    let offline_after = killed.elapsed();
    eprintln!(
        "MEASURED: node n2 killed with SIGKILL (node_ttl_ms={TTL_MS}); its user left n1's \
         /api/online after {} ms (poll took {} ms)",
        offline_after.as_millis(),
        gone.as_millis()
    );
    let stats = wait_stats(n1, "only n1 left", |s| {
        s["cluster"]["nodes"].as_array().map(Vec::len) == Some(1)
    })
    .await;
    eprintln!(
        "MEASURED: n2 left n1's stats.cluster.nodes after {} ms",
        killed.elapsed().as_millis()
    );
    assert_eq!(stat_nodes(&stats), owned(&[("n1", 1)]), "{stats}");
    assert_eq!(stats["websocket_count"], 1, "{stats}");
    assert_eq!(stats["online_users"], 1, "{stats}");
    assert_eq!(n1.online().await, owned(&[("alice", 1)]));
    assert_eq!(
        metric(&metrics_before, "wsc_cluster_nodes"),
        Some(2.0),
        "before the kill: {metrics_before}"
    );
    let m = n1.metrics().await;
    assert_eq!(metric(&m, "wsc_cluster_nodes"), Some(1.0), "{m}");

    // Gone means offline: a message for bob is stored, not handed to the dead node.
    let (status, answer) = n1.send(&text_to("bob", "are you there")).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "stored_offline", "{answer}");
}

#[actix_web::test]
async fn metrics_expose_the_cluster_gauges() {
    let c = Cluster::start(3).await;
    for node in &c.nodes {
        let deadline = Instant::now() + settle();
        loop {
            let m = node.metrics().await;
            if metric(&m, "wsc_cluster_nodes") == Some(3.0) {
                assert_eq!(metric(&m, "wsc_cluster_redis_up"), Some(1.0), "{m}");
                let errors = metric(&m, "wsc_cluster_redis_errors_total");
                assert_eq!(errors, Some(0.0), "no Redis error yet: {m}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: wsc_cluster_nodes never 3: {m}",
                node.id
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
