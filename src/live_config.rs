//! The configuration in force, shared by the hub, its sessions, the delivery layer and the
//! HTTP routes, and replaceable at runtime ([`crate::hub::UpdateConfig`]).
//!
//! Readers take a cheap snapshot (`Arc<Config>`); nothing on the per-frame path reads it:
//! sessions keep their own snapshot and are told when it changes, and the delivery layer
//! keeps the few per-message values (ACK timeout, retries) in atomics.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::error::ConfigError;

/// A handle on the configuration in force. Cheap to clone; every clone sees updates.
#[derive(Clone)]
pub struct LiveConfig {
    tx: Arc<watch::Sender<Arc<Config>>>,
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveConfig").field(&self.get()).finish()
    }
}

impl LiveConfig {
    /// A handle holding `config`.
    pub fn new(config: Config) -> Self {
        let (tx, _) = watch::channel(Arc::new(config));
        LiveConfig { tx: Arc::new(tx) }
    }

    /// The configuration in force now.
    pub fn get(&self) -> Arc<Config> {
        self.tx.borrow().clone()
    }

    /// A receiver that wakes on every change (the binary uses it to reload its log filter).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.tx.subscribe()
    }

    /// Replaces the configuration (the hub does this after validating an update).
    pub(crate) fn replace(&self, config: Arc<Config>) {
        self.tx.send_replace(config);
    }
}

/// Settings that only take effect at startup: an update that changes one is refused with
/// the field's name, so nobody believes a change took effect when it did not.
pub(crate) fn check_restart_only(old: &Config, new: &Config) -> Result<(), ConfigError> {
    let (o, n) = (&old.store, &new.store);
    let fixed: [(&str, bool); 21] = [
        ("server.bind", old.server.bind != new.server.bind),
        (
            "server.ws_transport",
            old.server.ws_transport != new.server.ws_transport,
        ),
        (
            "server.data_dir",
            old.server.data_dir != new.server.data_dir,
        ),
        ("hub.node_id", old.hub.node_id != new.hub.node_id),
        (
            "hub.max_records_in_memory",
            old.hub.max_records_in_memory != new.hub.max_records_in_memory,
        ),
        (
            "session.max_frame_bytes",
            old.session.max_frame_bytes != new.session.max_frame_bytes,
        ),
        (
            "session.write_timeout_ms",
            old.session.write_timeout_ms != new.session.write_timeout_ms,
        ),
        ("store.backend", old.store.backend != new.store.backend),
        (
            "store.batch_window_ms",
            old.store.batch_window_ms != new.store.batch_window_ms,
        ),
        (
            "store.max_batch",
            old.store.max_batch != new.store.max_batch,
        ),
        ("store.per_user_cap", o.per_user_cap != n.per_user_cap),
        ("store.max_db_bytes", o.max_db_bytes != n.max_db_bytes),
        (
            "store.persist_delay_ms",
            o.persist_delay_ms != n.persist_delay_ms,
        ),
        ("store.persist_acked", o.persist_acked != n.persist_acked),
        ("store.redis_url", o.redis_url != n.redis_url),
        // The limits are read where connections are accepted, at startup.
        (
            "limits",
            serde_json::to_value(&old.limits).ok() != serde_json::to_value(&new.limits).ok(),
        ),
        ("store.redis_prefix", o.redis_prefix != n.redis_prefix),
        (
            "store.redis_require_aof",
            o.redis_require_aof != n.redis_require_aof,
        ),
        (
            "hub.records_retention_ms",
            old.hub.records_retention_ms != new.hub.records_retention_ms,
        ),
        (
            "cluster.redis_url",
            old.cluster.redis_url != new.cluster.redis_url,
        ),
        (
            "cluster.node_ttl_ms",
            old.cluster.node_ttl_ms != new.cluster.node_ttl_ms,
        ),
    ];
    for (field, changed) in fixed {
        if changed {
            return Err(ConfigError::new(
                field,
                "cannot change at runtime; restart the server to change it",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_see_replacements() {
        let live = LiveConfig::new(Config::default());
        let other = live.clone();
        let mut c = Config::default();
        c.ack.ack_timeout_ms = 42;
        live.replace(Arc::new(c));
        assert_eq!(other.get().ack.ack_timeout_ms, 42);
    }

    #[test]
    fn restart_only_fields_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        new.session.client_timeout_ms = 1234;
        check_restart_only(&old, &new).expect("a runtime field");
        new.server.bind = "0.0.0.0:1".into();
        let err = check_restart_only(&old, &new).expect_err("bind is fixed");
        assert_eq!(err.field, "server.bind");
        let mut new = old.clone();
        new.server.ws_transport = crate::config::WsTransport::ActixWeb;
        let err = check_restart_only(&old, &new).expect_err("the transport is fixed");
        assert_eq!(err.field, "server.ws_transport");
    }
}
