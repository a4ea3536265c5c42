//! Configuration: defaults, a TOML file, `WSC_*` environment variables, validation.
//!
//! Precedence, lowest first: built-in defaults, the file, the environment, command-line flags
//! (the binary applies those last).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, FailureKind};

mod cluster;
mod limits;
pub use cluster::{ClusterConfig, CLUSTER_ENV_VARS};
pub(crate) use limits::constant_time_eq;
pub use limits::{LimitsConfig, SessionOverflow, LIMITS_ENV_VARS};

/// Everything the hub, its sessions and the server binary read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server settings (used by the binary and [`crate::server`]).
    pub server: ServerConfig,
    /// Hub settings.
    pub hub: HubConfig,
    /// Per-session settings.
    pub session: SessionConfig,
    /// Acknowledgement settings.
    pub ack: AckConfig,
    /// Retry and failure classification settings.
    pub retry: RetryConfig,
    /// Offline store and record persistence.
    pub store: StoreConfig,
    /// Caps on what peers control (connections, sessions, groups, bodies, origins).
    pub limits: LimitsConfig,
    /// Cluster mode (several nodes behind one Redis); off unless `cluster.redis_url` is set.
    pub cluster: ClusterConfig,
}

/// Which store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// In memory: lost on restart.
    Memory,
    /// SQLite in `server.data_dir`: survives restarts and crashes.
    Sqlite,
    /// Redis at `store.redis_url` (AOF on): survives restarts and crashes of this node,
    /// and can be shared by several nodes.
    Redis,
}

/// Offline store-and-forward and record persistence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend. Unset means `memory` for [`crate::hub::Hub::new`] in an embedding
    /// application, and `sqlite` in `wsc-server`; `Hub::new` and `Hub::try_new` open the
    /// backend named here. Defaults to none.
    pub backend: Option<StoreBackend>,
    /// Store plain (non-ACK) messages for offline users too; ACK-requested ones always are.
    /// Defaults to true.
    pub store_plain: bool,
    /// Messages kept per offline user; over it the oldest are dropped and the queue-full
    /// handlers hear about it. Defaults to 1000.
    pub per_user_cap: usize,
    /// How long an offline message is kept. Defaults to 604800000 (7 days).
    pub ttl_ms: u64,
    /// Group-commit window: writes arriving within it share one transaction. Defaults to 2.
    pub batch_window_ms: u64,
    /// A batch is committed at once when it holds this many writes. Defaults to 1000.
    pub max_batch: usize,
    /// Cap on the SQLite database size in bytes (0: none). Over it, stores fail as on a full
    /// disk and the failure handlers hear about it. Defaults to 0.
    pub max_db_bytes: u64,
    /// A record still in flight is written to the store once it is this old (a delivery
    /// acknowledged sooner is never written while in flight). Defaults to 100.
    pub persist_delay_ms: u64,
    /// Also write records of messages acknowledged before they were ever written (an audit
    /// trail on disk, at the cost of one row per message). Defaults to false.
    pub persist_acked: bool,
    /// The Redis server of the `redis` backend (`redis://127.0.0.1:6379/0`,
    /// `redis://:password@host/0`). Required with that backend.
    pub redis_url: Option<String>,
    /// Prefix of every key the `redis` backend writes. Defaults to `wsc`.
    pub redis_prefix: String,
    /// Refuse to start on a Redis with its append-only file off (a Redis restart would
    /// lose what the hub accepted). Defaults to true.
    pub redis_require_aof: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: None,
            store_plain: true,
            per_user_cap: 1000,
            ttl_ms: 7 * 24 * 3600 * 1000,
            batch_window_ms: 2,
            max_batch: 1000,
            max_db_bytes: 0,
            persist_delay_ms: 100,
            persist_acked: false,
            redis_url: None,
            redis_prefix: "wsc".into(),
            redis_require_aof: true,
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address. Defaults to `127.0.0.1:8080`.
    pub bind: String,
    /// Data directory for the durable store. Defaults to `./data`.
    pub data_dir: PathBuf,
    /// When set, every `/api/*` route requires `Authorization: Bearer <key>`. Defaults to none.
    pub api_key: Option<String>,
    /// How long a graceful shutdown waits for sessions to flush and close. Defaults to 5000.
    pub shutdown_timeout_ms: u64,
    /// `GET /metrics` requires the API key too (when one is set). Scrapers usually reach
    /// metrics without credentials, so defaults to false.
    pub metrics_require_api_key: bool,
    /// wsc-server's log filter (env_logger syntax: `info`, `actix_wsc=debug,warn`); reloaded
    /// with the config. Unset: `RUST_LOG`, else `info`. Defaults to none.
    pub log_level: Option<String>,
    /// Mounts `/echo`: a session that echoes data frames (for the Autobahn testsuite). Never
    /// enable it in production. Defaults to false.
    pub echo_route: bool,
    /// What carries wsc-server's WebSocket sessions: `raw` (the upgraded socket driven by
    /// the session itself, below actix-web) or `actix-web` (actix-web's route, actix-ws and
    /// actix-http's dispatcher). Startup only. Defaults to `raw`.
    pub ws_transport: WsTransport,
}

/// What carries wsc-server's WebSocket sessions (`server.ws_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WsTransport {
    /// The upgraded socket, read and written by the session's own task
    /// ([`crate::server::WscHttpServer`]).
    #[default]
    Raw,
    /// actix-web's `/ws` route: actix-ws reads, the response body writes.
    ActixWeb,
}

impl std::str::FromStr for WsTransport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "raw" => Ok(WsTransport::Raw),
            "actix-web" => Ok(WsTransport::ActixWeb),
            other => Err(format!("`{other}` is not a transport (raw, actix-web)")),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            api_key: None,
            shutdown_timeout_ms: 5_000,
            metrics_require_api_key: false,
            log_level: None,
            echo_route: false,
            ws_transport: WsTransport::Raw,
        }
    }
}

/// Hub settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// This node's id, reported in the welcome frame and statistics. Defaults to `n-1`.
    pub node_id: String,
    /// Message records that reached an outcome are kept this long. Defaults to 3600000.
    pub records_retention_ms: u64,
    /// At most this many records in memory (records in flight and failed ones always stay;
    /// older settled ones are read from the store). Defaults to 100000.
    pub max_records_in_memory: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            node_id: "n-1".into(),
            records_retention_ms: 3_600_000,
            max_records_in_memory: 100_000,
        }
    }
}

/// Per-session settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Interval of the server's WebSocket ping. Defaults to 25000.
    pub heartbeat_interval_ms: u64,
    /// Silence (no frame, no pong) after which the session is closed with 4001.
    /// Defaults to 60000.
    pub client_timeout_ms: u64,
    /// Largest inbound message (one frame, or a reassembled fragmented message), in bytes.
    /// Defaults to 1048576 (1 MiB).
    pub max_frame_bytes: usize,
    /// Outbound queue capacity in bytes; overflow closes the session with 4000.
    /// Defaults to 1048576 (1 MiB).
    pub queue_bytes: usize,
    /// A socket write that cannot make progress for this long closes the session.
    /// Defaults to 10000.
    pub write_timeout_ms: u64,
    /// Inbound frames per second a session may send (token bucket refill); 0 disables the
    /// limit. Defaults to 5000.
    pub rate_limit_per_sec: u32,
    /// Token bucket size: the burst a session may send at once. Defaults to 5000.
    pub rate_limit_burst: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            heartbeat_interval_ms: 25_000,
            client_timeout_ms: 60_000,
            max_frame_bytes: 1 << 20,
            queue_bytes: 1 << 20,
            write_timeout_ms: 10_000,
            rate_limit_per_sec: 5_000,
            rate_limit_burst: 5_000,
        }
    }
}

/// Acknowledgement settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AckConfig {
    /// How long the server waits for a client's ack of one delivery attempt.
    /// Defaults to 5000.
    pub ack_timeout_ms: u64,
}

impl Default for AckConfig {
    fn default() -> Self {
        AckConfig {
            ack_timeout_ms: 5_000,
        }
    }
}

/// Retry policy and failure classification overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt (ACK resends, send-with-retry attempts). Defaults to 3.
    pub max_retries: u32,
    /// Backoff before the first retry. Defaults to 100.
    pub base_delay_ms: u64,
    /// Cap on any backoff delay. Defaults to 5000.
    pub max_delay_ms: u64,
    /// Growth of the delay per retry. Defaults to 2.0.
    pub backoff_factor: f64,
    /// Full jitter: each delay is uniform in `[0, computed delay]`. Defaults to true.
    pub jitter: bool,
    /// Failure kinds to retry even though they are terminal by default. Defaults to empty.
    pub retryable: Vec<FailureKind>,
    /// Failure kinds never to retry even though they are retryable by default.
    /// Defaults to empty.
    pub non_retryable: Vec<FailureKind>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 3,
            base_delay_ms: 100,
            max_delay_ms: 5_000,
            backoff_factor: 2.0,
            jitter: true,
            retryable: Vec::new(),
            non_retryable: Vec::new(),
        }
    }
}

type Setter = fn(&mut Config, &str, &str) -> Result<(), ConfigError>;

fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, format!("`{value}` is not a valid number")))
}

/// The environment variables [`Config::apply_env`] reads, with the field each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("WSC_BIND", "server.bind"),
    ("WSC_DATA_DIR", "server.data_dir"),
    ("WSC_API_KEY", "server.api_key"),
    ("WSC_SHUTDOWN_TIMEOUT_MS", "server.shutdown_timeout_ms"),
    ("WSC_ECHO_ROUTE", "server.echo_route"),
    ("WSC_WS_TRANSPORT", "server.ws_transport"),
    ("WSC_NODE_ID", "hub.node_id"),
    ("WSC_HEARTBEAT_INTERVAL_MS", "session.heartbeat_interval_ms"),
    ("WSC_CLIENT_TIMEOUT_MS", "session.client_timeout_ms"),
    ("WSC_MAX_FRAME_BYTES", "session.max_frame_bytes"),
    ("WSC_SESSION_QUEUE_BYTES", "session.queue_bytes"),
    ("WSC_WRITE_TIMEOUT_MS", "session.write_timeout_ms"),
    ("WSC_RATE_LIMIT_PER_SEC", "session.rate_limit_per_sec"),
    ("WSC_RATE_LIMIT_BURST", "session.rate_limit_burst"),
    ("WSC_ACK_TIMEOUT_MS", "ack.ack_timeout_ms"),
    ("WSC_MAX_RETRIES", "retry.max_retries"),
    ("WSC_BASE_DELAY_MS", "retry.base_delay_ms"),
    ("WSC_MAX_DELAY_MS", "retry.max_delay_ms"),
    ("WSC_BACKOFF_FACTOR", "retry.backoff_factor"),
    ("WSC_STORE", "store.backend"),
    ("WSC_STORE_PLAIN", "store.store_plain"),
    ("WSC_OFFLINE_CAP", "store.per_user_cap"),
    ("WSC_OFFLINE_TTL_MS", "store.ttl_ms"),
    ("WSC_MAX_DB_BYTES", "store.max_db_bytes"),
    ("WSC_STORE_REDIS_URL", "store.redis_url"),
];

fn setter(name: &str) -> Option<Setter> {
    let f: Setter = match name {
        "WSC_BIND" => |c, _, v| {
            c.server.bind = v.to_owned();
            Ok(())
        },
        "WSC_DATA_DIR" => |c, _, v| {
            c.server.data_dir = PathBuf::from(v);
            Ok(())
        },
        "WSC_API_KEY" => |c, _, v| {
            c.server.api_key = Some(v.to_owned()).filter(|k| !k.is_empty());
            Ok(())
        },
        "WSC_SHUTDOWN_TIMEOUT_MS" => |c, n, v| {
            c.server.shutdown_timeout_ms = num(n, v)?;
            Ok(())
        },
        "WSC_ECHO_ROUTE" => |c, n, v| {
            c.server.echo_route = match v.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => return Err(ConfigError::new(n, format!("`{other}` is not a boolean"))),
            };
            Ok(())
        },
        "WSC_WS_TRANSPORT" => |c, n, v| {
            c.server.ws_transport = v.parse().map_err(|m| ConfigError::new(n, m))?;
            Ok(())
        },
        "WSC_NODE_ID" => |c, _, v| {
            c.hub.node_id = v.to_owned();
            Ok(())
        },
        "WSC_HEARTBEAT_INTERVAL_MS" => |c, n, v| {
            c.session.heartbeat_interval_ms = num(n, v)?;
            Ok(())
        },
        "WSC_CLIENT_TIMEOUT_MS" => |c, n, v| {
            c.session.client_timeout_ms = num(n, v)?;
            Ok(())
        },
        "WSC_MAX_FRAME_BYTES" => |c, n, v| {
            c.session.max_frame_bytes = num(n, v)?;
            Ok(())
        },
        "WSC_SESSION_QUEUE_BYTES" => |c, n, v| {
            c.session.queue_bytes = num(n, v)?;
            Ok(())
        },
        "WSC_WRITE_TIMEOUT_MS" => |c, n, v| {
            c.session.write_timeout_ms = num(n, v)?;
            Ok(())
        },
        "WSC_RATE_LIMIT_PER_SEC" => |c, n, v| {
            c.session.rate_limit_per_sec = num(n, v)?;
            Ok(())
        },
        "WSC_RATE_LIMIT_BURST" => |c, n, v| {
            c.session.rate_limit_burst = num(n, v)?;
            Ok(())
        },
        "WSC_ACK_TIMEOUT_MS" => |c, n, v| {
            c.ack.ack_timeout_ms = num(n, v)?;
            Ok(())
        },
        "WSC_MAX_RETRIES" => |c, n, v| {
            c.retry.max_retries = num(n, v)?;
            Ok(())
        },
        "WSC_BASE_DELAY_MS" => |c, n, v| {
            c.retry.base_delay_ms = num(n, v)?;
            Ok(())
        },
        "WSC_MAX_DELAY_MS" => |c, n, v| {
            c.retry.max_delay_ms = num(n, v)?;
            Ok(())
        },
        "WSC_BACKOFF_FACTOR" => |c, n, v| {
            c.retry.backoff_factor = num(n, v)?;
            Ok(())
        },
        "WSC_STORE" => |c, n, v| {
            c.store.backend = Some(match v.trim() {
                "memory" => StoreBackend::Memory,
                "sqlite" => StoreBackend::Sqlite,
                "redis" => StoreBackend::Redis,
                other => {
                    return Err(ConfigError::new(
                        n,
                        format!("`{other}` is not a store backend (memory, sqlite, redis)"),
                    ))
                }
            });
            Ok(())
        },
        "WSC_STORE_PLAIN" => |c, n, v| {
            c.store.store_plain = match v.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => return Err(ConfigError::new(n, format!("`{other}` is not a boolean"))),
            };
            Ok(())
        },
        "WSC_OFFLINE_CAP" => |c, n, v| {
            c.store.per_user_cap = num(n, v)?;
            Ok(())
        },
        "WSC_OFFLINE_TTL_MS" => |c, n, v| {
            c.store.ttl_ms = num(n, v)?;
            Ok(())
        },
        "WSC_MAX_DB_BYTES" => |c, n, v| {
            c.store.max_db_bytes = num(n, v)?;
            Ok(())
        },
        "WSC_STORE_REDIS_URL" => |c, _, v| {
            c.store.redis_url = Some(v.trim().to_string()).filter(|u| !u.is_empty());
            Ok(())
        },
        _ => return None,
    };
    Some(f)
}

impl Config {
    /// Reads a TOML file on top of the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read file: {e}"))
        })?;
        Config::from_toml(&text)
            .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))
    }

    /// Parses TOML text on top of the defaults.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new("config file", e.message().to_owned()))
    }

    /// Applies the `WSC_*` variables of [`ENV_VARS`] from `vars`. Unknown `WSC_*` names are
    /// ignored here (the binary's own flags use some).
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in vars {
            if let Some(set) = setter(k.as_ref()) {
                set(self, k.as_ref(), v.as_ref())?;
            } else if let Some(res) =
                limits::apply_env_var(&mut self.limits, k.as_ref(), v.as_ref())
            {
                res?;
            } else if let Some(res) =
                cluster::apply_env_var(&mut self.cluster, k.as_ref(), v.as_ref())
            {
                res?;
            }
        }
        Ok(())
    }

    /// Defaults, then the file (if any), then the process environment; validated.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(std::env::vars())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.session;
        let positive = [
            (
                "session.heartbeat_interval_ms",
                s.heartbeat_interval_ms as u128,
            ),
            ("session.client_timeout_ms", s.client_timeout_ms as u128),
            ("session.max_frame_bytes", s.max_frame_bytes as u128),
            ("session.queue_bytes", s.queue_bytes as u128),
            ("session.write_timeout_ms", s.write_timeout_ms as u128),
            ("ack.ack_timeout_ms", self.ack.ack_timeout_ms as u128),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(field, "must be greater than 0"));
            }
        }
        if s.client_timeout_ms <= s.heartbeat_interval_ms {
            return Err(ConfigError::new(
                "session.client_timeout_ms",
                format!(
                    "must be greater than session.heartbeat_interval_ms ({}), or every client \
                     times out between two pings",
                    s.heartbeat_interval_ms
                ),
            ));
        }
        if s.rate_limit_per_sec > 0 && s.rate_limit_burst == 0 {
            return Err(ConfigError::new(
                "session.rate_limit_burst",
                "must be greater than 0 when a rate limit is set",
            ));
        }
        let r = &self.retry;
        if !(r.backoff_factor.is_finite() && r.backoff_factor >= 1.0) {
            return Err(ConfigError::new(
                "retry.backoff_factor",
                "must be a number of at least 1.0",
            ));
        }
        if r.max_delay_ms < r.base_delay_ms {
            return Err(ConfigError::new(
                "retry.max_delay_ms",
                format!("must be at least retry.base_delay_ms ({})", r.base_delay_ms),
            ));
        }
        if let Some(k) = r.retryable.iter().find(|k| r.non_retryable.contains(k)) {
            return Err(ConfigError::new(
                "retry.retryable",
                format!("`{k}` is also listed in retry.non_retryable"),
            ));
        }
        if self.store.per_user_cap == 0 {
            return Err(ConfigError::new(
                "store.per_user_cap",
                "must be greater than 0",
            ));
        }
        if self.store.backend == Some(StoreBackend::Redis) {
            match self.store.redis_url.as_deref() {
                None => return Err(ConfigError::new(
                    "store.redis_url",
                    "is required with store.backend = \"redis\" (e.g. redis://127.0.0.1:6379/0)",
                )),
                Some(u) if !(u.starts_with("redis://") || u.starts_with("unix://")) => {
                    return Err(ConfigError::new(
                        "store.redis_url",
                        format!("`{u}` is not a redis:// or unix:// URL"),
                    ))
                }
                Some(_) => {}
            }
        }
        if self.store.redis_prefix.is_empty()
            || self.store.redis_prefix.contains(char::is_whitespace)
        {
            return Err(ConfigError::new(
                "store.redis_prefix",
                "must be a non-empty key prefix without spaces",
            ));
        }
        if self.hub.node_id.is_empty() || self.hub.node_id.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "hub.node_id",
                "must be a non-empty id without spaces",
            ));
        }
        self.cluster.validate()?;
        if self.cluster.enabled()
            && matches!(
                self.store.backend,
                Some(StoreBackend::Memory) | Some(StoreBackend::Sqlite)
            )
        {
            return Err(ConfigError::new(
                "store.backend",
                "cluster mode (cluster.redis_url) keeps records and the offline store in Redis: \
                 leave store.backend unset or set it to \"redis\"",
            ));
        }
        self.limits.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().expect("defaults are valid");
    }

    #[test]
    fn env_overrides_and_names_bad_fields() {
        let mut c = Config::default();
        c.apply_env([
            ("WSC_HEARTBEAT_INTERVAL_MS", "100"),
            ("WSC_CLIENT_TIMEOUT_MS", "300"),
        ])
        .expect("numbers");
        assert_eq!(c.session.heartbeat_interval_ms, 100);
        assert_eq!(c.session.client_timeout_ms, 300);
        let err = c
            .apply_env([("WSC_MAX_FRAME_BYTES", "lots")])
            .expect_err("not a number");
        assert_eq!(err.field, "WSC_MAX_FRAME_BYTES");
        for (name, _) in ENV_VARS {
            assert!(setter(name).is_some(), "{name} has no setter");
        }
    }

    #[test]
    fn ws_transport_from_env_and_file() {
        let mut c = Config::default();
        assert_eq!(c.server.ws_transport, WsTransport::Raw);
        c.apply_env([("WSC_WS_TRANSPORT", "actix-web")])
            .expect("a transport");
        assert_eq!(c.server.ws_transport, WsTransport::ActixWeb);
        let err = c
            .apply_env([("WSC_WS_TRANSPORT", "tcp")])
            .expect_err("not a transport");
        assert_eq!(err.field, "WSC_WS_TRANSPORT");
        assert!(err.message.contains("raw, actix-web"), "{}", err.message);
        let c = Config::from_toml("[server]\nws_transport = \"actix-web\"").expect("parses");
        assert_eq!(c.server.ws_transport, WsTransport::ActixWeb);
        assert!(Config::from_toml("[server]\nws_transport = \"tcp\"").is_err());
    }

    #[test]
    fn file_errors_name_the_field() {
        let err = Config::from_toml("[session]\nqueue_bytes = \"big\"").expect_err("type");
        assert!(err.message.contains("queue_bytes") || err.message.contains("invalid type"));
        let err = Config::from_toml("[session]\nqueue_byte = 1").expect_err("unknown field");
        assert!(err.message.contains("queue_byte"), "{}", err.message);
        let c = Config::from_toml("[session]\nclient_timeout_ms = 10\nheartbeat_interval_ms = 20")
            .expect("parses");
        assert_eq!(
            c.validate().expect_err("order").field,
            "session.client_timeout_ms"
        );
    }
}
