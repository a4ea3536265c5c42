//! The hub's answer to a `/metrics` scrape: gauges read from the routing table and the
//! record book, counters from the shared atomics.

use actix::prelude::*;

use super::Hub;
use crate::metrics::exposition::MetricsSnapshot;

/// Asks for everything `/metrics` shows.
#[derive(Debug, Message)]
#[rtype(result = "MetricsSnapshot")]
pub struct GetMetrics;

impl Handler<GetMetrics> for Hub {
    type Result = ResponseFuture<MetricsSnapshot>;

    fn handle(&mut self, _: GetMetrics, _: &mut Context<Self>) -> Self::Result {
        let table = self.router.read();
        let queued: usize = table
            .sessions()
            .map(|e| e.handle.inbox.lock().queue.bytes())
            .sum();
        let delivery = self.rel.records().delivery_stats();
        let snapshot = MetricsSnapshot {
            sessions: table.session_count() as u64,
            users: table.user_count() as u64,
            connections_opened: self
                .router
                .counters()
                .total_connections
                .load(std::sync::atomic::Ordering::Relaxed),
            outbound_queue_bytes: queued as u64,
            awaiting_acks: delivery.awaiting_acks as u64,
            scheduled_retries: delivery.scheduled_retries as u64,
            delayed: self.delayed.len() as u64,
            ..Default::default()
        };
        drop(table);
        let mut snapshot = snapshot.with_counters(&self.router.counters().metrics);
        snapshot.cluster = self.router.remote().map(|r| r.status());
        let store = self.rel.store().cloned();
        Box::pin(async move {
            if let Some(store) = store {
                match store.offline_total().await {
                    Ok(n) => snapshot.offline_depth = Some(n as u64),
                    Err(e) => log::warn!("metrics: offline store depth unknown: {e}"),
                }
            }
            snapshot
        })
    }
}
