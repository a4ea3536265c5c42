//! `[limits]`: caps on everything a peer controls, with safe defaults.
//!
//! Frame size and the inbound rate stay in `[session]` (`max_frame_bytes`,
//! `rate_limit_per_sec`, `rate_limit_burst`); this section holds the rest.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What happens when a user opens a session over `max_sessions_per_user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOverflow {
    /// The user's oldest session is closed with 4002 and the new one is accepted.
    ReplaceOldest,
    /// The new upgrade is refused with HTTP 429 `too_many_sessions`.
    Refuse,
}

/// Caps on connections, sessions, groups, request bodies, abuse and browser origins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Live sessions the hub accepts; over it an upgrade gets HTTP 503 `too_many_connections`.
    /// Defaults to 10000.
    pub max_connections: usize,
    /// Live sessions one user may hold (0: no limit). Defaults to 16.
    pub max_sessions_per_user: usize,
    /// What a session over `max_sessions_per_user` does. Defaults to `replace_oldest`.
    pub sessions_over_limit: SessionOverflow,
    /// Groups one session may be in; a join over it gets error `limit_exceeded`.
    /// Defaults to 100.
    pub max_groups_per_session: usize,
    /// Sessions one group may hold; a join over it gets error `limit_exceeded`.
    /// Defaults to 10000.
    pub max_members_per_group: usize,
    /// Largest HTTP request body on `/api/*`, in bytes; over it: HTTP 413. Defaults to 1048576.
    pub max_api_body_bytes: usize,
    /// Frames refused with `rate_limited` within `rate_abuse_window_ms` after which the
    /// session is closed with 1008 (0: never close). Defaults to 1000.
    pub rate_abuse_frames: u32,
    /// The window `rate_abuse_frames` is counted in. Defaults to 10000.
    pub rate_abuse_window_ms: u64,
    /// Origins (`scheme://host[:port]`) whose browser pages may open a WebSocket. Empty: only
    /// same-origin pages (Origin matches the Host header); `"*"`: any. Requests without an
    /// `Origin` header (non-browser clients) are always allowed. Defaults to empty.
    pub allowed_origins: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 10_000,
            max_sessions_per_user: 16,
            sessions_over_limit: SessionOverflow::ReplaceOldest,
            max_groups_per_session: 100,
            max_members_per_group: 10_000,
            max_api_body_bytes: 1 << 20,
            rate_abuse_frames: 1_000,
            rate_abuse_window_ms: 10_000,
            allowed_origins: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("limits.max_connections", self.max_connections as u128),
            (
                "limits.max_groups_per_session",
                self.max_groups_per_session as u128,
            ),
            (
                "limits.max_members_per_group",
                self.max_members_per_group as u128,
            ),
            ("limits.max_api_body_bytes", self.max_api_body_bytes as u128),
            (
                "limits.rate_abuse_window_ms",
                self.rate_abuse_window_ms as u128,
            ),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(field, "must be greater than 0"));
            }
        }
        if let Some(o) = self
            .allowed_origins
            .iter()
            .find(|o| o.as_str() != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(ConfigError::new(
                "limits.allowed_origins",
                format!("`{o}` is not `*` or an origin like https://example.com"),
            ));
        }
        Ok(())
    }

    /// Whether a browser page from `origin` may upgrade on a server reached as `host`.
    pub fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim_end_matches('/');
        if self.allowed_origins.is_empty() {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            return matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
        }
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}

/// The `WSC_*` variables for `[limits]`, with the field each sets.
pub const LIMITS_ENV_VARS: &[(&str, &str)] = &[
    ("WSC_MAX_CONNECTIONS", "limits.max_connections"),
    ("WSC_MAX_SESSIONS_PER_USER", "limits.max_sessions_per_user"),
    ("WSC_SESSIONS_OVER_LIMIT", "limits.sessions_over_limit"),
    (
        "WSC_MAX_GROUPS_PER_SESSION",
        "limits.max_groups_per_session",
    ),
    ("WSC_MAX_MEMBERS_PER_GROUP", "limits.max_members_per_group"),
    ("WSC_MAX_API_BODY_BYTES", "limits.max_api_body_bytes"),
    ("WSC_ALLOWED_ORIGINS", "limits.allowed_origins"),
];

fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, format!("`{value}` is not a valid number")))
}

/// Sets the `[limits]` field named by the environment variable `name`; `None` when `name` is
/// not one of [`LIMITS_ENV_VARS`].
pub(crate) fn apply_env_var(
    limits: &mut LimitsConfig,
    name: &str,
    value: &str,
) -> Option<Result<(), ConfigError>> {
    let res = match name {
        "WSC_MAX_CONNECTIONS" => num(name, value).map(|v| limits.max_connections = v),
        "WSC_MAX_SESSIONS_PER_USER" => num(name, value).map(|v| limits.max_sessions_per_user = v),
        "WSC_SESSIONS_OVER_LIMIT" => match value.trim() {
            "replace_oldest" => {
                limits.sessions_over_limit = SessionOverflow::ReplaceOldest;
                Ok(())
            }
            "refuse" => {
                limits.sessions_over_limit = SessionOverflow::Refuse;
                Ok(())
            }
            other => Err(ConfigError::new(
                name,
                format!("`{other}` is not replace_oldest or refuse"),
            )),
        },
        "WSC_MAX_GROUPS_PER_SESSION" => num(name, value).map(|v| limits.max_groups_per_session = v),
        "WSC_MAX_MEMBERS_PER_GROUP" => num(name, value).map(|v| limits.max_members_per_group = v),
        "WSC_MAX_API_BODY_BYTES" => num(name, value).map(|v| limits.max_api_body_bytes = v),
        "WSC_ALLOWED_ORIGINS" => {
            limits.allowed_origins = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(())
        }
        _ => return None,
    };
    Some(res)
}

/// Compares two secrets in time that depends only on their lengths, not on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let l = LimitsConfig::default();
        assert!(l.origin_allowed(None, Some("a:1")), "non-browser");
        assert!(
            l.origin_allowed(Some("http://a:1"), Some("a:1")),
            "same origin"
        );
        assert!(!l.origin_allowed(Some("http://evil:1"), Some("a:1")));
        let l = LimitsConfig {
            allowed_origins: vec!["https://app.example".into()],
            ..LimitsConfig::default()
        };
        assert!(l.origin_allowed(Some("https://app.example/"), Some("x")));
        assert!(!l.origin_allowed(Some("https://app.example.evil"), Some("x")));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn env_and_validation() {
        let mut l = LimitsConfig::default();
        for (name, _) in LIMITS_ENV_VARS {
            assert!(apply_env_var(&mut l.clone(), name, "1").is_some(), "{name}");
        }
        apply_env_var(&mut l, "WSC_SESSIONS_OVER_LIMIT", "refuse")
            .expect("known")
            .expect("valid");
        assert_eq!(l.sessions_over_limit, SessionOverflow::Refuse);
        l.allowed_origins = vec!["example.com".into()];
        assert_eq!(
            l.validate().expect_err("bad origin").field,
            "limits.allowed_origins"
        );
    }
}
