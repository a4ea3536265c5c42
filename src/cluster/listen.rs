//! The listener thread: subscribed to this node's channel and the cluster-wide one, it hands
//! every message to the cluster actor, reads the other nodes' presence in full after each
//! (re)subscribe, and reconnects by itself.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::Connection;

use super::wire::{SessionWire, Wire};
use super::{Inbound, NodeSnapshot, Shared, Snapshot};
use crate::model::now_ms;

/// How long one read waits before checking whether to stop.
const POLL: Duration = Duration::from_millis(500);

pub(crate) fn run(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    while !shared.stop.load(Ordering::Acquire) {
        match session(&shared) {
            Ok(()) => return,
            Err(e) => {
                shared.stale.store(true, Ordering::Release);
                if shared.listen_up.swap(false, Ordering::AcqRel) {
                    log::error!(
                        "cluster: lost Redis at {} (listener): {e}; reconnecting",
                        crate::store::redacted_url(&shared.url)
                    );
                }
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Reads every live node's sessions (except this node's).
pub(crate) fn read_presence(
    shared: &Shared,
    conn: &mut Connection,
) -> redis::RedisResult<Vec<(String, Vec<SessionWire>)>> {
    let cutoff = now_ms().saturating_sub(shared.ttl_ms);
    let nodes: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(shared.key_nodes())
        .arg(cutoff)
        .arg("+inf")
        .query(conn)?;
    let mut out = Vec::new();
    for n in nodes.into_iter().filter(|n| *n != *shared.node) {
        let sessions = read_node(shared, conn, &n)?;
        out.push((n, sessions));
    }
    Ok(out)
}

fn read_node(
    shared: &Shared,
    conn: &mut Connection,
    node: &str,
) -> redis::RedisResult<Vec<SessionWire>> {
    let all: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(shared.key_sessions(node))
        .query(conn)?;
    Ok(all
        .into_iter()
        .filter_map(|(client, json)| match serde_json::from_str(&json) {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("cluster: unreadable presence of client {client} on node {node}: {e}");
                None
            }
        })
        .collect())
}

/// One subscribed session: returns `Ok` when told to stop, an error when Redis went away.
fn session(shared: &Arc<Shared>) -> redis::RedisResult<()> {
    let mut reader = super::connect(&shared.url)?;
    let mut sub = super::connect(&shared.url)?;
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe(&[shared.chan_node(&shared.node), shared.chan_all()])?;
    pubsub.set_read_timeout(Some(POLL))?;
    // Subscribed first, then read: a change made meanwhile arrives after the snapshot.
    let nodes = read_presence(shared, &mut reader)?;
    shared.to_inbound(Snapshot { nodes });
    shared.listen_up.store(true, Ordering::Release);
    log::info!(
        "cluster: listening on Redis at {} as node {}",
        crate::store::redacted_url(&shared.url),
        shared.node
    );
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let msg = match pubsub.get_message() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        let payload: Vec<u8> = match msg.get_payload() {
            Ok(p) => p,
            Err(e) => {
                log::error!(
                    "cluster: unreadable message on {}: {e}",
                    msg.get_channel_name()
                );
                continue;
            }
        };
        if payload.first() == Some(&super::wire::DELIVERY_TAG) {
            // Straight to the local sessions from this thread (routing is thread-safe): no
            // hop through an actor on the hot path. A node never delivers to itself.
            shared.received.fetch_add(1, Ordering::Relaxed);
            super::deliver_here(shared, &payload);
            continue;
        }
        let wire: Wire = match serde_json::from_slice(&payload) {
            Ok(w) => w,
            Err(e) => {
                log::error!(
                    "cluster: malformed message on {} ({} bytes): {e}",
                    msg.get_channel_name(),
                    payload.len()
                );
                continue;
            }
        };
        if wire.origin() == &*shared.node {
            continue;
        }
        if let Wire::Resync { node } = &wire {
            let sessions = read_node(shared, &mut reader, node)?;
            shared.to_inbound(NodeSnapshot {
                node: node.clone(),
                sessions,
            });
            continue;
        }
        shared.to_inbound(Inbound(wire));
    }
}
