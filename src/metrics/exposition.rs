//! The `/metrics` body: a snapshot of the hub's numbers encoded in the OpenMetrics text
//! format (which Prometheus scrapes) by `prometheus-client`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::Metrics;

/// The `Content-Type` of [`MetricsSnapshot::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything `/metrics` shows, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// Live sessions.
    pub sessions: u64,
    /// Users with at least one session.
    pub users: u64,
    /// Sessions accepted since start.
    pub connections_opened: u64,
    /// Closed sessions per close code.
    pub connections_closed: Vec<(String, u64)>,
    /// Application frames received per type.
    pub frames_in: Vec<(&'static str, u64)>,
    /// Application frames queued to sessions per type.
    pub frames_out: Vec<(&'static str, u64)>,
    /// Sends per route kind.
    pub deliveries: Vec<(&'static str, u64)>,
    /// Delivery failures per kind.
    pub failures: Vec<(&'static str, u64)>,
    /// Resends scheduled.
    pub retries: u64,
    /// ACK latency `(sum seconds, count, per-bucket counts)`.
    pub ack_latency: (f64, u64, Vec<(f64, u64)>),
    /// Bytes queued in sessions' outbound queues.
    pub outbound_queue_bytes: u64,
    /// Deliveries awaiting an ack.
    pub awaiting_acks: u64,
    /// Resends scheduled and not yet due.
    pub scheduled_retries: u64,
    /// Delayed messages waiting.
    pub delayed: u64,
    /// Supervised actor restarts per actor.
    pub restarts: Vec<(&'static str, u64)>,
    /// Items in the offline store, all users (`None`: the store could not say).
    pub offline_depth: Option<u64>,
    /// Store commit latency `(sum seconds, count, per-bucket counts)`.
    pub store_commit: (f64, u64, Vec<(f64, u64)>),
    /// Cluster mode: how this node sees the cluster.
    pub cluster: Option<crate::routing::ClusterStatus>,
}

impl MetricsSnapshot {
    /// Fills the counter parts from `m`.
    pub fn with_counters(mut self, m: &Metrics) -> Self {
        self.connections_closed = m.connections_closed();
        self.frames_in = m.frames_in();
        self.frames_out = m.frames_out();
        self.deliveries = m.deliveries();
        self.failures = m.failures();
        self.retries = m.retries();
        self.ack_latency = m.ack_latency.snapshot();
        self.store_commit = m.store_commit.snapshot();
        self.restarts = m.restarts();
        self
    }

    /// The OpenMetrics text (ends with `# EOF`).
    pub fn encode(self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn labelled<L: AsRef<str>>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(L, u64)],
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in values {
        let labels = [(label, l.as_ref())];
        family
            .encode_family(&labels.as_slice())?
            .encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

impl Collector for MetricsSnapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut enc;
        gauge(e, "wsc_sessions", "Live WebSocket sessions", self.sessions)?;
        gauge(
            e,
            "wsc_users_online",
            "Users with at least one session",
            self.users,
        )?;
        counter(
            e,
            "wsc_connections_opened",
            "Sessions accepted",
            self.connections_opened,
        )?;
        let closed = "Sessions closed, by close code (none: connection lost without one)";
        labelled(
            e,
            "wsc_connections_closed",
            closed,
            "code",
            &self.connections_closed,
        )?;
        let fin = "Application frames received from clients, by message type";
        labelled(e, "wsc_frames_in", fin, "type", &self.frames_in)?;
        let fout = "Application frames queued to sessions, by message type";
        labelled(e, "wsc_frames_out", fout, "type", &self.frames_out)?;
        let dl = "Messages routed, by route (user, group, broadcast, ...)";
        labelled(e, "wsc_deliveries", dl, "route", &self.deliveries)?;
        let fl = "Delivery failures, by failure kind";
        labelled(e, "wsc_delivery_failures", fl, "kind", &self.failures)?;
        counter(e, "wsc_retries", "Resends scheduled", self.retries)?;
        let (sum, count, buckets) = &self.ack_latency;
        e.encode_descriptor(
            "wsc_ack_latency",
            "From a delivery attempt to the client's ack",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        e.encode_descriptor(
            "wsc_outbound_queue",
            "Bytes queued in sessions' outbound queues",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?
        .encode_gauge(&self.outbound_queue_bytes)?;
        let aw = "Deliveries awaiting an ack";
        gauge(e, "wsc_awaiting_acks", aw, self.awaiting_acks)?;
        let sr = "Resends scheduled and not yet due";
        gauge(e, "wsc_scheduled_retries", sr, self.scheduled_retries)?;
        gauge(
            e,
            "wsc_delayed_messages",
            "Delayed messages waiting",
            self.delayed,
        )?;
        if let Some(depth) = self.offline_depth {
            let od = "Messages waiting in the offline store, all users";
            gauge(e, "wsc_offline_store_depth", od, depth)?;
        }
        let (sum, count, buckets) = &self.store_commit;
        e.encode_descriptor(
            "wsc_store_commit",
            "One store commit (a group-commit transaction or Redis script)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        if let Some(c) = &self.cluster {
            let up = u64::from(c.redis == "up");
            gauge(
                e,
                "wsc_cluster_redis_up",
                "1 while Redis answers (cluster mode)",
                up,
            )?;
            let re = "Redis connection failures since start (cluster mode)";
            counter(e, "wsc_cluster_redis_errors", re, c.redis_errors)?;
            let n = c.nodes.len() as u64;
            gauge(e, "wsc_cluster_nodes", "Live nodes, this one included", n)?;
            let p = "Deliveries published to other nodes that a subscriber received";
            counter(e, "wsc_cluster_published", p, c.published)?;
            let r = "Deliveries received from other nodes";
            counter(e, "wsc_cluster_received", r, c.received)?;
        }
        let rs = "Supervised actor restarts, by actor";
        labelled(e, "wsc_supervision_restarts", rs, "actor", &self.restarts)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_prometheus_names() {
        let m = Metrics::default();
        m.frame_in(crate::protocol::MessageType::Text);
        m.ack_latency.observe_us(2_000);
        let text = MetricsSnapshot {
            sessions: 2,
            ..Default::default()
        }
        .with_counters(&m)
        .encode()
        .expect("encodes");
        assert!(text.contains("wsc_sessions 2"), "{text}");
        assert!(
            text.contains("wsc_frames_in_total{type=\"text\"} 1"),
            "{text}"
        );
        assert!(text.contains("wsc_ack_latency_seconds_count 1"), "{text}");
        assert!(
            text.contains("wsc_ack_latency_seconds_bucket{le=\"+Inf\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
