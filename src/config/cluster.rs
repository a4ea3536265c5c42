//! `[cluster]`: several nodes behind one Redis (off unless `redis_url` is set).

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Cluster mode: presence, routing and delivery across nodes through Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Redis every node shares (`redis://127.0.0.1:6379/0`). Setting it turns cluster
    /// mode on; records and the offline store then live in that Redis too. Defaults to unset
    /// (one node).
    pub redis_url: Option<String>,
    /// A node that has not renewed its heartbeat for this long counts as dead: its sessions
    /// leave presence and its unacked deliveries are stored for their users. Defaults to 3000.
    pub node_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            node_ttl_ms: 3_000,
        }
    }
}

impl ClusterConfig {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    /// How often a node renews its heartbeat (a third of the TTL, at least 50 ms).
    pub fn heartbeat_ms(&self) -> u64 {
        (self.node_ttl_ms / 3).max(50)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(u) = self.redis_url.as_deref() {
            if !(u.starts_with("redis://") || u.starts_with("unix://")) {
                return Err(ConfigError::new(
                    "cluster.redis_url",
                    format!(
                        "`{}` is not a redis:// or unix:// URL",
                        crate::store::redacted_url(u)
                    ),
                ));
            }
        }
        if self.node_ttl_ms < 200 {
            return Err(ConfigError::new(
                "cluster.node_ttl_ms",
                "must be at least 200 (a node renews its heartbeat every third of it)",
            ));
        }
        Ok(())
    }
}

/// The `WSC_*` variables of this section, with the field each sets.
pub const CLUSTER_ENV_VARS: &[(&str, &str)] = &[
    ("WSC_REDIS_URL", "cluster.redis_url"),
    ("WSC_NODE_TTL_MS", "cluster.node_ttl_ms"),
];

/// Applies one `WSC_*` variable of this section; `None` when `name` is not one of them.
pub(crate) fn apply_env_var(
    cluster: &mut ClusterConfig,
    name: &str,
    value: &str,
) -> Option<Result<(), ConfigError>> {
    Some(match name {
        "WSC_REDIS_URL" => {
            cluster.redis_url = Some(value.trim().to_string()).filter(|u| !u.is_empty());
            Ok(())
        }
        "WSC_NODE_TTL_MS" => value
            .trim()
            .parse()
            .map(|v| cluster.node_ttl_ms = v)
            .map_err(|_| ConfigError::new(name, format!("`{value}` is not a whole number"))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_validation() {
        let mut c = ClusterConfig::default();
        assert!(!c.enabled());
        for (name, _) in CLUSTER_ENV_VARS {
            assert!(apply_env_var(&mut c.clone(), name, "1").is_some(), "{name}");
        }
        apply_env_var(&mut c, "WSC_REDIS_URL", "redis://127.0.0.1:1/0")
            .expect("known")
            .expect("valid");
        assert!(c.enabled());
        c.validate().expect("valid");
        c.node_ttl_ms = 10;
        assert_eq!(c.validate().expect_err("ttl").field, "cluster.node_ttl_ms");
        c.node_ttl_ms = 3000;
        c.redis_url = Some("http://x".into());
        assert_eq!(c.validate().expect_err("url").field, "cluster.redis_url");
        assert!(apply_env_var(&mut c, "WSC_NODE_TTL_MS", "soon")
            .expect("known")
            .is_err());
    }
}
