//! Prometheus metrics: counters the hot path bumps with relaxed atomic increments (no lock,
//! no allocation, no label lookup per frame), read and encoded only when `/metrics` is
//! scraped ([`exposition`]).
//!
//! Encoding uses `prometheus-client` (the Prometheus project's own Rust client): it writes
//! the OpenMetrics text format and lets a collector encode values we already keep, so the
//! per-frame counters stay plain atomics instead of going through a global recorder and a
//! label-keyed map on every increment (what the `metrics` facade does).

pub mod exposition;
mod histogram;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub use histogram::AtomicHistogram;

use crate::error::FailureKind;
use crate::model::{DisconnectReason, Target};
use crate::protocol::MessageType;

/// Slots for message types (the wire enum has 58 today; a new type past the last slot is
/// counted in the last one rather than lost).
const TYPE_SLOTS: usize = 64;

/// Route kinds for `wsc_deliveries_total{route=..}`.
pub const ROUTES: [&str; 9] = [
    "user",
    "users",
    "group",
    "broadcast",
    "user_type",
    "role",
    "client",
    "clients",
    "matching",
];

/// Failure kinds, in the order of the `failures` slots.
pub const FAILURE_KINDS: [FailureKind; 10] = [
    FailureKind::QueueFull,
    FailureKind::UserOffline,
    FailureKind::ConnectionError,
    FailureKind::WriteTimeout,
    FailureKind::AckTimeout,
    FailureKind::Validation,
    FailureKind::Permission,
    FailureKind::RetriesExhausted,
    FailureKind::Expired,
    FailureKind::Internal,
];

fn zeroes<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The hub's metrics (one set per hub, shared through its router).
#[derive(Debug)]
pub struct Metrics {
    frames_in: [AtomicU64; TYPE_SLOTS],
    frames_out: [AtomicU64; TYPE_SLOTS],
    deliveries: [AtomicU64; ROUTES.len()],
    failures: [AtomicU64; FAILURE_KINDS.len()],
    retries: AtomicU64,
    connections_closed: Mutex<BTreeMap<String, u64>>,
    restarts: Mutex<BTreeMap<&'static str, u64>>,
    /// ACK latency: first send (or resend) of an attempt to the client's ack.
    pub ack_latency: AtomicHistogram,
    /// How long each store commit (one transaction or Redis script) takes.
    pub store_commit: std::sync::Arc<AtomicHistogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            frames_in: zeroes(),
            frames_out: zeroes(),
            deliveries: zeroes(),
            failures: zeroes(),
            retries: AtomicU64::new(0),
            connections_closed: Mutex::new(BTreeMap::new()),
            restarts: Mutex::new(BTreeMap::new()),
            ack_latency: AtomicHistogram::latency(),
            store_commit: std::sync::Arc::new(AtomicHistogram::latency()),
        }
    }
}

fn type_slot(t: MessageType) -> usize {
    (t as usize).min(TYPE_SLOTS - 1)
}

fn route_slot(t: &Target) -> usize {
    match t {
        Target::User(_) => 0,
        Target::Users(_) => 1,
        Target::Group(_) => 2,
        Target::Broadcast => 3,
        Target::UserType(_) => 4,
        Target::Role(_) => 5,
        Target::Client(_) => 6,
        Target::Clients(_) => 7,
        Target::Matching(_) => 8,
    }
}

fn failure_slot(k: FailureKind) -> usize {
    match k {
        FailureKind::QueueFull => 0,
        FailureKind::UserOffline => 1,
        FailureKind::ConnectionError => 2,
        FailureKind::WriteTimeout => 3,
        FailureKind::AckTimeout => 4,
        FailureKind::Validation => 5,
        FailureKind::Permission => 6,
        FailureKind::RetriesExhausted => 7,
        FailureKind::Expired => 8,
        FailureKind::Internal => 9,
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// A client sent an application frame of this type.
    pub(crate) fn frame_in(&self, t: MessageType) {
        bump(&self.frames_in[type_slot(t)], 1);
    }

    /// A frame of this type was queued to `n` sessions, routed by `target`.
    pub(crate) fn routed(&self, t: MessageType, target: &Target, n: u64) {
        if n > 0 {
            bump(&self.frames_out[type_slot(t)], n);
        }
        bump(&self.deliveries[route_slot(target)], 1);
    }

    /// A delivery failed.
    pub(crate) fn failed(&self, k: FailureKind) {
        bump(&self.failures[failure_slot(k)], 1);
    }

    /// A resend was scheduled.
    pub(crate) fn retried(&self) {
        bump(&self.retries, 1);
    }

    /// A session closed: counted by its close code (`none`: the connection was lost without
    /// one; `write_timeout`: the socket stopped taking writes).
    pub(crate) fn closed(&self, reason: &DisconnectReason) {
        let code = match reason {
            DisconnectReason::ServerClosed(code, _) => code.code().to_string(),
            DisconnectReason::ClientClosed(Some(code)) => code.to_string(),
            DisconnectReason::ClientClosed(None) | DisconnectReason::ConnectionLost => {
                "none".to_owned()
            }
            DisconnectReason::WriteTimeout => "write_timeout".to_owned(),
        };
        let mut m = self
            .connections_closed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *m.entry(code).or_default() += 1;
    }

    /// A supervised actor restarted.
    pub(crate) fn restarted(&self, actor: &'static str) {
        let mut m = self.restarts.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(actor).or_default() += 1;
    }

    fn load(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Frames in per message type (non-zero ones).
    pub fn frames_in(&self) -> Vec<(&'static str, u64)> {
        per_type(&self.frames_in)
    }

    /// Frames out per message type (non-zero ones).
    pub fn frames_out(&self) -> Vec<(&'static str, u64)> {
        per_type(&self.frames_out)
    }

    /// Sends per route kind.
    pub fn deliveries(&self) -> Vec<(&'static str, u64)> {
        ROUTES
            .iter()
            .zip(&self.deliveries)
            .map(|(r, c)| (*r, Self::load(c)))
            .collect()
    }

    /// Failures per kind.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        FAILURE_KINDS
            .iter()
            .zip(&self.failures)
            .map(|(k, c)| (k.as_str(), Self::load(c)))
            .collect()
    }

    /// Resends scheduled.
    pub fn retries(&self) -> u64 {
        Self::load(&self.retries)
    }

    /// Closed sessions per close code.
    pub fn connections_closed(&self) -> Vec<(String, u64)> {
        let m = self
            .connections_closed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Restarts per supervised actor.
    pub fn restarts(&self) -> Vec<(&'static str, u64)> {
        let m = self.restarts.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

fn per_type(slots: &[AtomicU64; TYPE_SLOTS]) -> Vec<(&'static str, u64)> {
    MessageType::ALL
        .iter()
        .map(|t| (t.as_str(), slots[type_slot(*t)].load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let m = Metrics::default();
        m.frame_in(MessageType::Text);
        m.frame_in(MessageType::Text);
        m.routed(MessageType::Image, &Target::Broadcast, 3);
        m.failed(FailureKind::AckTimeout);
        assert_eq!(m.frames_in(), vec![("text", 2)]);
        assert_eq!(m.frames_out(), vec![("image", 3)]);
        assert!(m.deliveries().contains(&("broadcast", 1)));
        assert!(m.failures().contains(&("ack_timeout", 1)));
        assert!(MessageType::ALL.len() <= TYPE_SLOTS);
    }
}
