//! Hub counters (atomics shared by sessions and the hub) and the statistics snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::model::DeliveryStats;

/// Counters updated on the hot path without a lock.
#[derive(Debug)]
pub struct Counters {
    pub(crate) started: Instant,
    pub(crate) total_connections: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) broadcasts_sent: AtomicU64,
    /// The Prometheus metrics (`/metrics`).
    pub(crate) metrics: crate::metrics::Metrics,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            started: Instant::now(),
            total_connections: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            broadcasts_sent: AtomicU64::new(0),
            metrics: crate::metrics::Metrics::default(),
        }
    }
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Hub statistics with the go-wsc names.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HubStats {
    /// This node.
    pub node_id: String,
    /// Live WebSocket sessions.
    pub websocket_count: u64,
    /// Sessions accepted since start.
    pub total_connections: u64,
    /// Live sessions (WebSocket; SSE would add here).
    pub active_connections: u64,
    /// Application frames handed to sessions.
    pub messages_sent: u64,
    /// Application frames received from clients.
    pub messages_received: u64,
    /// Broadcasts (to everyone, a user type or a role) sent.
    pub broadcasts_sent: u64,
    /// Users with at least one session.
    pub online_users: u64,
    /// Seconds since the hub started.
    pub uptime: u64,
    /// Groups with at least one member session.
    pub groups: u64,
    /// What the delivery layer has in flight.
    pub delivery: DeliveryStats,
    /// Cluster mode: this node, Redis, the live nodes (sessions, users and online counts
    /// above are then the whole cluster's; message counters stay this node's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::ClusterStatus>,
}

impl HubStats {
    pub(crate) fn snapshot(node_id: &str, c: &Counters, sessions: usize, users: usize) -> Self {
        HubStats {
            node_id: node_id.to_owned(),
            websocket_count: sessions as u64,
            total_connections: c.total_connections.load(Ordering::Relaxed),
            active_connections: sessions as u64,
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
            broadcasts_sent: c.broadcasts_sent.load(Ordering::Relaxed),
            online_users: users as u64,
            uptime: c.started.elapsed().as_secs(),
            groups: 0,
            delivery: DeliveryStats::default(),
            cluster: None,
        }
    }
}
