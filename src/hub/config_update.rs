//! Runtime configuration: [`UpdateConfig`] validates a new configuration and puts it in
//! force without a restart; [`GetConfig`] answers the configuration in force.
//!
//! What changes where:
//! - live sessions: heartbeat interval, client timeout, rate limits, queue limit;
//! - new messages: ACK timeout, retry count and backoff, retryable overrides, offline
//!   store settings (`store_plain`, `ttl_ms`);
//! - new sessions: everything a live session takes, plus the welcome's advertised values;
//! - the HTTP routes: `server.api_key` (checked per request), `server.metrics_require_api_key`;
//! - the binary: `server.log_level` (its log filter is reloaded).
//!
//! Settings that only work at startup (listen address, data directory, node id, store
//! backend, batching, caps and persistence, record retention and memory limit, frame size
//! limit, write timeout) are refused
//! with the field's name; the old configuration stays in force on any error.

use std::sync::Arc;

use actix::prelude::*;

use super::Hub;
use crate::config::Config;
use crate::error::ConfigError;
use crate::live_config::{check_restart_only, LiveConfig};
use crate::session::Reconfigure;
use crate::supervision::ReloadPolicy;

/// Puts a new configuration in force, or refuses it with the field at fault (the old one
/// stays). Answers the configuration now in force.
#[derive(Debug, Message)]
#[rtype(result = "Result<Arc<Config>, ConfigError>")]
pub struct UpdateConfig {
    /// The complete new configuration.
    pub config: Config,
}

/// Asks for the configuration in force.
#[derive(Debug, Message)]
#[rtype(result = "Arc<Config>")]
pub struct GetConfig;

/// Asks for the live configuration handle (the HTTP routes keep one per worker).
#[derive(Debug, Message)]
#[rtype(result = "LiveConfig")]
pub struct GetLiveConfig;

impl Handler<GetLiveConfig> for Hub {
    type Result = MessageResult<GetLiveConfig>;

    fn handle(&mut self, _: GetLiveConfig, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.live_config())
    }
}

/// Log levels `server.log_level` accepts in each directive.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks an env_logger-style filter: comma-separated `level` or `target=level` directives.
pub fn validate_log_level(filter: &str) -> Result<(), ConfigError> {
    let bad = |m: String| ConfigError::new("server.log_level", m);
    if filter.trim().is_empty() {
        return Err(bad(
            "must not be empty (leave it unset for the default)".into()
        ));
    }
    for directive in filter.split(',').map(str::trim) {
        let level = match directive.split_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level.trim(),
            Some(_) => return Err(bad(format!("`{directive}` has no target before `=`"))),
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(bad(format!(
                "`{level}` is not a log level (off, error, warn, info, debug, trace)"
            )));
        }
    }
    Ok(())
}

/// Everything an update must pass before anything changes.
pub(crate) fn check_update(old: &Config, new: &Config) -> Result<(), ConfigError> {
    new.validate()?;
    if let Some(level) = &new.server.log_level {
        validate_log_level(level)?;
    }
    check_restart_only(old, new)
}

impl Handler<UpdateConfig> for Hub {
    type Result = Result<Arc<Config>, ConfigError>;

    fn handle(&mut self, msg: UpdateConfig, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = check_update(&self.config, &msg.config) {
            log::warn!("config update refused: {e}");
            return Err(e);
        }
        let config = Arc::new(msg.config);
        self.config = config.clone();
        self.rel.apply_config(config.clone());
        if let Some(sup) = &self.supervisors {
            sup.classifier.do_send(ReloadPolicy);
        }
        for session in self.reconfigure.values() {
            // A session that stopped meanwhile has nothing to apply it to (its disconnect
            // removes it from this map next).
            if session.connected() {
                session.do_send(Reconfigure {
                    config: config.clone(),
                });
            }
        }
        log::info!(
            "config updated: applied to {} live sessions",
            self.reconfigure.len()
        );
        Ok(config)
    }
}

impl Handler<GetConfig> for Hub {
    type Result = MessageResult<GetConfig>;

    fn handle(&mut self, _: GetConfig, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filters_are_checked() {
        validate_log_level("info").expect("a level");
        validate_log_level("actix_wsc=debug, warn").expect("directives");
        let err = validate_log_level("loud").expect_err("not a level");
        assert_eq!(err.field, "server.log_level");
        assert!(validate_log_level("=debug").is_err());
        assert!(validate_log_level(" ").is_err());
    }

    #[test]
    fn updates_are_validated_before_anything_changes() {
        let old = Config::default();
        let mut new = old.clone();
        new.session.client_timeout_ms = 1;
        let err = check_update(&old, &new).expect_err("below the heartbeat");
        assert_eq!(err.field, "session.client_timeout_ms");
        let mut new = old.clone();
        new.server.log_level = Some("chatty".into());
        assert_eq!(
            check_update(&old, &new).expect_err("level").field,
            "server.log_level"
        );
    }
}
