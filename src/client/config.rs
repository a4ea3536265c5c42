//! [`ClientConfig`]: where to connect, as whom, and every timing the client uses.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::protocol::UserType;

/// Where the client puts its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenPlacement {
    /// `Authorization: Bearer <token>` (the default; keeps the token out of access logs).
    #[default]
    Header,
    /// `?token=<token>` in the URL (for servers behind proxies that drop the header).
    Query,
}

/// Who acknowledges frames the server sent with `require_ack: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AckMode {
    /// The client acks once the application's `MessageReceived` handler returned `true`
    /// (at once when no handler is registered).
    #[default]
    Auto,
    /// The application acks with [`super::Acknowledge`] (by the message's `from` and `id`).
    Manual,
}

/// The client's settings. Durations are in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// The server's WebSocket endpoint (`ws://` or `wss://`, path included).
    /// Defaults to `ws://127.0.0.1:8080/ws`.
    pub url: String,
    /// The user to connect as (sent as `user_id`). Required: validation refuses an empty one.
    /// Defaults to empty.
    pub user_id: String,
    /// The session's client id. When absent the server assigns one, and the client reuses the
    /// assigned id when it reconnects (so the server replaces a half-dead old session instead
    /// of keeping two). Defaults to none.
    pub client_id: Option<String>,
    /// The user type (`user_type`). Defaults to none (the server's default, `customer`).
    pub user_type: Option<UserType>,
    /// A token for the server's authenticator. Defaults to none.
    pub token: Option<String>,
    /// Where the token goes. Defaults to `header` (`Authorization: Bearer`).
    pub token_placement: TokenPlacement,
    /// Groups to join on every connection (more can be joined with [`super::Join`]).
    /// Defaults to none.
    pub groups: Vec<String>,
    /// Smallest reconnect delay, and the lower bound of every jittered delay. Defaults to 500.
    pub min_reconnect_ms: u64,
    /// Largest reconnect delay. Defaults to 20000.
    pub max_reconnect_ms: u64,
    /// Growth of the delay ceiling per failed attempt. Defaults to 2.0.
    pub reconnect_factor: f64,
    /// Connection attempts in a row after which the client gives up and closes; 0 never
    /// gives up. Defaults to 0.
    pub max_reconnect_attempts: u32,
    /// Limit on one connection attempt (TCP connect plus upgrade). Defaults to 10000.
    pub connect_timeout_ms: u64,
    /// Interval of the client's WebSocket ping frames. Defaults to 20000.
    pub ping_interval_ms: u64,
    /// Silence (no frame of any kind from the server) after which the connection counts as
    /// dropped and the client reconnects. Must exceed the server's heartbeat interval
    /// (25000 by default). Defaults to 60000.
    pub server_timeout_ms: u64,
    /// Application frames (messages, joins, leaves) the client holds that are not yet written
    /// to the socket, across reconnects; beyond it sends fail with `SendError::Full`.
    /// Defaults to 1024.
    pub send_queue_capacity: usize,
    /// How long `SendWithReceipt`, `Join` and `Leave` wait for the server's receipt.
    /// Defaults to 10000.
    pub receipt_timeout_ms: u64,
    /// How many recent messages, keyed by `(from, id)`, are remembered to drop duplicates
    /// (at-least-once delivery resends a frame with the same `from` and `id`; two senders'
    /// messages with the same id are both delivered). Defaults to 1024.
    pub dedup_window: usize,
    /// Who acknowledges `require_ack` frames. Defaults to `auto`.
    pub ack_mode: AckMode,
    /// How long a `Close` waits: for a connection to flush queued frames when the client is
    /// reconnecting, and for the server's answer to the close frame. Defaults to 5000.
    pub close_timeout_ms: u64,
    /// Largest frame accepted from the server, in bytes. Defaults to 4194304 (4 MiB).
    pub max_frame_bytes: usize,
    /// For `wss://`: a PEM file of the CA certificates to trust instead of the system's
    /// (a private CA, or a self-signed server certificate). Defaults to none.
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            url: "ws://127.0.0.1:8080/ws".into(),
            user_id: String::new(),
            client_id: None,
            user_type: None,
            token: None,
            token_placement: TokenPlacement::Header,
            groups: Vec::new(),
            min_reconnect_ms: 500,
            max_reconnect_ms: 20_000,
            reconnect_factor: 2.0,
            max_reconnect_attempts: 0,
            connect_timeout_ms: 10_000,
            ping_interval_ms: 20_000,
            server_timeout_ms: 60_000,
            send_queue_capacity: 1024,
            receipt_timeout_ms: 10_000,
            dedup_window: 1024,
            ack_mode: AckMode::Auto,
            close_timeout_ms: 5_000,
            max_frame_bytes: 4 << 20,
            tls_ca_file: None,
        }
    }
}

impl ClientConfig {
    /// A configuration for `user_id` at `url`, everything else default.
    pub fn new(url: impl Into<String>, user_id: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            user_id: user_id.into(),
            ..ClientConfig::default()
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(ConfigError::new(
                "url",
                format!("`{}` must start with ws:// or wss://", self.url),
            ));
        }
        if self.user_id.is_empty() {
            return Err(ConfigError::new("user_id", "must not be empty"));
        }
        let positive = [
            ("min_reconnect_ms", self.min_reconnect_ms as u128),
            ("connect_timeout_ms", self.connect_timeout_ms as u128),
            ("ping_interval_ms", self.ping_interval_ms as u128),
            ("server_timeout_ms", self.server_timeout_ms as u128),
            ("send_queue_capacity", self.send_queue_capacity as u128),
            ("receipt_timeout_ms", self.receipt_timeout_ms as u128),
            ("close_timeout_ms", self.close_timeout_ms as u128),
            ("max_frame_bytes", self.max_frame_bytes as u128),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(field, "must be greater than 0"));
            }
        }
        if self.max_reconnect_ms < self.min_reconnect_ms {
            return Err(ConfigError::new(
                "max_reconnect_ms",
                format!(
                    "must be at least min_reconnect_ms ({})",
                    self.min_reconnect_ms
                ),
            ));
        }
        if !(self.reconnect_factor.is_finite() && self.reconnect_factor >= 1.0) {
            return Err(ConfigError::new(
                "reconnect_factor",
                "must be a finite number of at least 1.0",
            ));
        }
        if self.server_timeout_ms <= self.ping_interval_ms {
            return Err(ConfigError::new(
                "server_timeout_ms",
                format!(
                    "must be greater than ping_interval_ms ({}), or a quiet server times out \
                     between two pings",
                    self.ping_interval_ms
                ),
            ));
        }
        if self.groups.iter().any(String::is_empty) {
            return Err(ConfigError::new("groups", "a group name must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_once_a_user_is_set() {
        assert_eq!(
            ClientConfig::default().validate().map_err(|e| e.field),
            Err("user_id".to_owned())
        );
        ClientConfig::new("ws://127.0.0.1:1/ws", "u")
            .validate()
            .expect("valid");
    }

    #[test]
    fn bad_values_name_the_field() {
        let base = ClientConfig::new("ws://127.0.0.1:1/ws", "u");
        let cases: Vec<(&str, ClientConfig)> = vec![
            (
                "url",
                ClientConfig {
                    url: "http://x".into(),
                    ..base.clone()
                },
            ),
            (
                "max_reconnect_ms",
                ClientConfig {
                    max_reconnect_ms: 1,
                    ..base.clone()
                },
            ),
            (
                "reconnect_factor",
                ClientConfig {
                    reconnect_factor: 0.5,
                    ..base.clone()
                },
            ),
            (
                "server_timeout_ms",
                ClientConfig {
                    server_timeout_ms: 10,
                    ..base.clone()
                },
            ),
            (
                "send_queue_capacity",
                ClientConfig {
                    send_queue_capacity: 0,
                    ..base.clone()
                },
            ),
        ];
        for (field, config) in cases {
            assert_eq!(
                config.validate().map_err(|e| e.field),
                Err(field.to_owned())
            );
        }
    }

    #[test]
    fn deserializes_partial_config_with_defaults() {
        let config: ClientConfig = serde_json::from_str(
            r#"{"user_id":"a","ack_mode":"manual","token_placement":"query"}"#,
        )
        .expect("json");
        assert_eq!(config.ack_mode, AckMode::Manual);
        assert_eq!(config.token_placement, TokenPlacement::Query);
        assert_eq!(config.min_reconnect_ms, 500);
    }
}
