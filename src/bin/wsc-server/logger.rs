//! A log filter that can be replaced while the server runs (`server.log_level` on a config
//! reload): env_logger's filter behind a lock taken only for records that pass the global
//! max level, so disabled levels (per-message debug lines) cost one atomic load.

use std::sync::RwLock;

use log::{Log, Metadata, Record};

/// The installed logger.
pub struct Reloadable {
    inner: RwLock<env_logger::Logger>,
    /// The filter in force, to skip rebuilding for an unchanged one.
    current: RwLock<String>,
}

fn build(filter: &str) -> env_logger::Logger {
    env_logger::Builder::new().parse_filters(filter).build()
}

impl Reloadable {
    /// Installs a logger with `filter` (env_logger syntax) as the global logger.
    pub fn install(filter: &str) -> &'static Reloadable {
        let logger = build(filter);
        let max = logger.filter();
        let me: &'static Reloadable = Box::leak(Box::new(Reloadable {
            inner: RwLock::new(logger),
            current: RwLock::new(filter.to_owned()),
        }));
        match log::set_logger(me) {
            Ok(()) => log::set_max_level(max),
            Err(e) => eprintln!("wsc-server: cannot install the logger: {e}"),
        }
        me
    }

    /// Replaces the filter (a no-op when it is the one in force).
    pub fn set(&self, filter: &str) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if *current == filter {
            return;
        }
        let logger = build(filter);
        log::set_max_level(logger.filter());
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = logger;
        *current = filter.to_owned();
        log::info!("log filter is now `{filter}`");
    }
}

impl Log for Reloadable {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        if inner.matches(record) {
            inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).flush();
    }
}
