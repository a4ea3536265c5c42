//! The actix-wsc server: configuration, logger, HTTP server, graceful shutdown, SIGHUP
//! config reload.

#[path = "wsc-server/logger.rs"]
mod logger;
#[path = "wsc-server/reload.rs"]
mod reload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use actix::Actor;
use actix_web::{App, HttpServer};
use clap::Parser;

use actix_wsc::config::{Config, StoreBackend, WsTransport};
use actix_wsc::hub::{Hub, Shutdown};
use actix_wsc::server::{WscHttpServer, WscServer};

/// actix-wsc WebSocket messaging server (protocol wsc.v1).
///
/// Every setting also reads a WSC_* environment variable; see the README's configuration
/// table. Precedence: defaults < config file < environment < flags.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
struct Args {
    /// TOML configuration file.
    #[arg(long, env = "WSC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "WSC_BIND", value_name = "ADDR:PORT")]
    bind: Option<String>,
    /// Data directory for the durable store.
    #[arg(long, env = "WSC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// API key required as `Authorization: Bearer KEY` on /api/*.
    #[arg(long, env = "WSC_API_KEY", value_name = "KEY")]
    api_key: Option<String>,
    /// HTTP worker threads (defaults to the available cores).
    #[arg(long, env = "WSC_WORKERS", value_name = "N")]
    workers: Option<usize>,
    /// Serve wss:// and https:// with this certificate chain (PEM; needs --tls-key).
    #[arg(long, env = "WSC_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "WSC_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Cluster mode: the Redis all nodes share (records and the offline store live there
    /// too). Off by default: one node with the embedded store.
    #[arg(long, env = "WSC_REDIS_URL", value_name = "URL")]
    redis_url: Option<String>,
    /// This node's id (cluster mode: unique per node; defaults to a random id).
    #[arg(long, env = "WSC_NODE_ID", value_name = "ID")]
    node_id: Option<String>,
    /// Cluster mode: a node silent for this long counts as dead (default 3000).
    #[arg(long, env = "WSC_NODE_TTL_MS", value_name = "MS")]
    node_ttl_ms: Option<u64>,
}

pub(crate) fn load(args: &Args) -> Result<Config, actix_wsc::error::ConfigError> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(bind) = &args.bind {
        config.server.bind = bind.clone();
    }
    if let Some(dir) = &args.data_dir {
        config.server.data_dir = dir.clone();
    }
    if let Some(key) = &args.api_key {
        config.server.api_key = Some(key.clone()).filter(|k| !k.is_empty());
    }
    if let Some(url) = &args.redis_url {
        config.cluster.redis_url = Some(url.clone()).filter(|u| !u.is_empty());
    }
    if let Some(id) = &args.node_id {
        config.hub.node_id = id.clone();
    }
    if let Some(ttl) = args.node_ttl_ms {
        config.cluster.node_ttl_ms = ttl;
    }
    if config.cluster.enabled() {
        // Records and the offline store are shared by the nodes, in the same Redis.
        config.store.backend.get_or_insert(StoreBackend::Redis);
        if config.store.redis_url.is_none() {
            config.store.redis_url = config.cluster.redis_url.clone();
        }
        if config.hub.node_id == actix_wsc::config::HubConfig::default().node_id {
            config.hub.node_id = format!("n-{:08x}", rand::random::<u32>());
        }
    }
    // The server keeps its state on disk unless told otherwise.
    config.store.backend.get_or_insert(StoreBackend::Sqlite);
    config.validate()?;
    Ok(config)
}

async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(e) => {
                log::error!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

/// Logs where the server listens (tests and scripts wait for "listening on").
fn announce(addrs: &[std::net::SocketAddr], tls: bool, transport: &str) {
    if tls {
        log::info!("TLS on: wss:// and https:// only");
    }
    log::info!("WebSocket transport: {transport} (server.ws_transport)");
    for addr in addrs {
        log::info!("listening on {addr}");
    }
}

async fn serve(
    config: Config,
    hub: Hub,
    args: Args,
    log: &'static logger::Reloadable,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let workers = args.workers;

    let shutdown_timeout = Duration::from_millis(config.server.shutdown_timeout_ms);
    let bind = config.server.bind.clone();
    let live = hub.live_config();
    let cluster = match config.cluster.enabled() {
        true => Some(
            actix_wsc::cluster::Cluster::connect(&config, hub.router(), hub.reliability())
                .map_err(std::io::Error::other)?,
        ),
        false => None,
    };
    let hub = hub.start();
    if let Some(c) = &cluster {
        c.start(hub.clone()).map_err(std::io::Error::other)?;
    }
    reload::spawn(hub.clone(), live, args, log);
    let wsc = WscServer::new(hub.clone())
        .limits(config.limits.clone())
        .echo_route(config.server.echo_route);
    let tls_on = tls.is_some();
    let routes = wsc.clone();
    let app = move || App::new().configure(routes.configure());
    let server = match config.server.ws_transport {
        WsTransport::Raw => {
            let mut server = WscHttpServer::new(wsc, app)
                .disable_signals()
                .shutdown_timeout(shutdown_timeout.as_secs().max(1));
            if let Some(n) = workers {
                server = server.workers(n.max(1));
            }
            let server = match tls {
                Some(tls) => server.bind_rustls_0_23(&bind, tls)?,
                None => server.bind(&bind)?,
            };
            announce(&server.addrs(), tls_on, "raw");
            server.run()
        }
        WsTransport::ActixWeb => {
            let mut server = HttpServer::new(app)
                .disable_signals()
                .shutdown_timeout(shutdown_timeout.as_secs().max(1));
            if let Some(n) = workers {
                server = server.workers(n.max(1));
            }
            let server = match tls {
                Some(tls) => server.bind_rustls_0_23(&bind, tls)?,
                None => server.bind(&bind)?,
            };
            announce(&server.addrs(), tls_on, "actix-web");
            server.run()
        }
    };
    let handle = server.handle();
    actix_rt::spawn(async move {
        let signal = wait_for_signal().await;
        log::info!("{signal} received: closing sessions with 1001");
        match hub
            .send(Shutdown {
                timeout: shutdown_timeout,
            })
            .await
        {
            Ok(n) => log::info!("closed {n} sessions"),
            Err(e) => log::error!("hub did not answer the shutdown: {e}"),
        }
        if let Some(c) = cluster {
            c.leave(Duration::from_secs(2)).await;
        }
        handle.stop(true).await;
    });
    server.await
}

fn main() -> ExitCode {
    let log = logger::Reloadable::install(&reload::default_filter());
    let mut args = Args::parse();
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            eprintln!("wsc-server: {e}");
            return ExitCode::from(2);
        }
    };
    // A random node id is drawn once: a reload (SIGHUP) keeps it.
    args.node_id = Some(config.hub.node_id.clone());
    if config.cluster.enabled() {
        if let Err(e) = actix_wsc::cluster::check_redis(&config) {
            log::error!("cluster: {e}");
            eprintln!("wsc-server: cluster mode: {e}");
            return ExitCode::from(2);
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match actix_wsc::tls::server_config(cert, key) {
            Ok(c) => Some(c),
            Err(e) => {
                log::error!("TLS: {e}");
                eprintln!("wsc-server: TLS: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    if let Some(level) = &config.server.log_level {
        log.set(level);
    }
    // Opened before anything listens: a data directory that cannot be written is a clear
    // startup error.
    let hub = match Hub::from_config(config.clone()) {
        Ok(hub) => hub,
        Err(e) => {
            log::error!("cannot open the store: {e}");
            eprintln!("wsc-server: cannot open the store: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(serve(config, hub, args, log, tls));
    match result {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("server error: {e}");
            eprintln!("wsc-server: {e}");
            ExitCode::FAILURE
        }
    }
}
