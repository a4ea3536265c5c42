//! Runtime config for the binary: SIGHUP re-reads the config file (and the environment and
//! flags, with the same precedence as at startup) and sends it to the hub; the log filter
//! follows `server.log_level` whenever the configuration in force changes (SIGHUP or
//! `PUT /api/config`).

use actix::Addr;

use actix_wsc::hub::{Hub, UpdateConfig};
use actix_wsc::live_config::LiveConfig;

use super::logger::Reloadable;
use super::Args;

/// `RUST_LOG` when set, else `info`.
pub fn default_filter() -> String {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "info".into())
}

/// Starts the SIGHUP listener and the log-filter follower.
pub fn spawn(hub: Addr<Hub>, live: LiveConfig, args: Args, log: &'static Reloadable) {
    let mut changes = live.subscribe();
    actix_rt::spawn(async move {
        while changes.changed().await.is_ok() {
            let level = changes.borrow_and_update().server.log_level.clone();
            log.set(&level.unwrap_or_else(default_filter));
        }
    });
    #[cfg(unix)]
    actix_rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGHUP (config reload disabled): {e}");
                return;
            }
        };
        while hup.recv().await.is_some() {
            log::info!("SIGHUP received: reloading the configuration");
            let config = match super::load(&args) {
                Ok(c) => c,
                Err(e) => {
                    log::error!("config reload refused, the old config stays: {e}");
                    continue;
                }
            };
            match hub.send(UpdateConfig { config }).await {
                Ok(Ok(_)) => log::info!("config reloaded"),
                Ok(Err(e)) => log::error!("config reload refused, the old config stays: {e}"),
                Err(e) => log::error!("hub did not answer the config reload: {e}"),
            }
        }
    });
}
