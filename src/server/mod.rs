//! actix-web wiring: the `/ws` upgrade and the HTTP API, mountable in any `App`.
//!
//! ```no_run
//! use actix::Actor;
//! use actix_web::{web, App, HttpServer, HttpResponse};
//! use actix_wsc::prelude::*;
//! use actix_wsc::server::WscServer;
//!
//! # async fn run() -> std::io::Result<()> {
//! let mut config = Config::default();
//! config.server.api_key = Some("secret".into()); // honoured by `WscServer::new`
//! let hub = Hub::new(config).start();
//! let wsc = WscServer::new(hub.clone());
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(wsc.configure())
//!         .route("/mine", web::get().to(|| async { HttpResponse::Ok().finish() }))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await
//! # }
//! ```

mod admin;
pub(crate) mod api;
mod config_api;
mod dashboard;
mod guard;
mod http;
mod metrics;
mod sse;
mod upgrade;
mod ws;

pub use http::WscHttpServer;
pub use upgrade::UpgradeError;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::{Authenticator, DefaultAuthenticator};
use crate::config::LimitsConfig;
use crate::hub::Hub;

/// Largest `/api/send` body, in bytes, by default (`limits.max_api_body_bytes`).
pub const MAX_API_BODY_BYTES: usize = 1 << 20;

/// Options for mounting actix-wsc in an `App`. Cheap to clone: clone it into the
/// `HttpServer::new` closure and call [`WscServer::configure`] in every worker.
#[derive(Clone)]
pub struct WscServer {
    hub: Addr<Hub>,
    authenticator: Arc<dyn Authenticator>,
    api_key: KeyRule,
    sse: Arc<sse::SseRegistry>,
    limits: LimitsConfig,
    echo_route: bool,
}

/// Where the API key comes from.
#[derive(Clone)]
pub(crate) enum KeyRule {
    /// `server.api_key` of the hub's configuration in force (read per request).
    Hub,
    /// Set by [`WscServer::api_key`].
    Fixed(Option<String>),
}

pub(crate) struct ServerState {
    pub(crate) hub: Addr<Hub>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) api_key: KeyRule,
    /// The hub's live configuration, fetched once per worker at the first request.
    pub(crate) live: tokio::sync::OnceCell<crate::live_config::LiveConfig>,
    pub(crate) sse: Arc<sse::SseRegistry>,
    pub(crate) limits: LimitsConfig,
}

impl ServerState {
    /// The configuration in force (one hub round trip per worker, the first time).
    pub(crate) async fn config(&self) -> Result<Arc<crate::config::Config>, actix::MailboxError> {
        let live = self
            .live
            .get_or_try_init(|| async { self.hub.send(crate::hub::GetLiveConfig).await })
            .await?;
        Ok(live.get())
    }

    /// The API key requests must present, if any.
    pub(crate) async fn api_key(&self) -> Result<Option<String>, actix::MailboxError> {
        match &self.api_key {
            KeyRule::Fixed(k) => Ok(k.clone()),
            KeyRule::Hub => Ok(self.config().await?.server.api_key.clone()),
        }
    }
}

impl WscServer {
    /// Routes for `hub` with the default authenticator; `/api/*` requires the API key of
    /// the hub's configuration (`server.api_key`, checked per request, so a config update
    /// changes it) unless [`WscServer::api_key`] overrides it.
    pub fn new(hub: Addr<Hub>) -> Self {
        WscServer {
            hub,
            authenticator: Arc::new(DefaultAuthenticator),
            api_key: KeyRule::Hub,
            sse: Arc::default(),
            limits: LimitsConfig::default(),
            echo_route: false,
        }
    }

    /// The HTTP-side limits: `/api/*` body size and allowed browser origins (the hub
    /// enforces the rest from its own config).
    pub fn limits(mut self, limits: LimitsConfig) -> Self {
        self.limits = limits;
        self
    }

    /// Mounts `/echo` when `true`: an anonymous session that echoes data frames through the
    /// same session code as `/ws` (for the Autobahn testsuite; never in production).
    pub fn echo_route(mut self, enabled: bool) -> Self {
        self.echo_route = enabled;
        self
    }

    /// Decides who may connect.
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// Requires `Authorization: Bearer <key>` on `/api/*` when `Some`, and no key when
    /// `None`, whatever the hub's configuration says.
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.api_key = KeyRule::Fixed(key.filter(|k| !k.is_empty()));
        self
    }

    /// What the routes of one worker share.
    pub(crate) fn state(&self) -> ServerState {
        ServerState {
            hub: self.hub.clone(),
            authenticator: self.authenticator.clone(),
            api_key: self.api_key.clone(),
            live: tokio::sync::OnceCell::new(),
            sse: self.sse.clone(),
            limits: self.limits.clone(),
        }
    }

    /// A function for `App::configure` that mounts `/ws`, `/api/*`, `/metrics` and
    /// `/health`, the SSE transport (`/sse`, `/sse/{token}`) and the dashboard
    /// (`/dashboard`) (call it in every worker: `App::new().configure(wsc.configure())`).
    pub fn configure(&self) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
        let this = self.clone();
        move |cfg| {
            let body_limit = this.limits.max_api_body_bytes;
            let state = web::Data::new(this.state());
            if this.echo_route {
                log::warn!("the /echo route is mounted (server.echo_route): not for production");
                cfg.route("/echo", web::get().to(ws::echo));
            }
            cfg.app_data(state)
                .app_data(web::PayloadConfig::new(body_limit))
                .route("/ws", web::get().to(ws::upgrade))
                .route("/api/send", web::post().to(api::send))
                .route("/api/messages", web::get().to(api::messages))
                .route("/api/messages/{id}", web::get().to(api::message))
                .route("/api/online", web::get().to(api::online))
                .route("/api/stats", web::get().to(api::stats))
                .service(
                    web::resource("/api/config")
                        .app_data(web::PayloadConfig::new(body_limit))
                        .route(web::get().to(config_api::get))
                        .route(web::put().to(config_api::put)),
                )
                .configure(admin::routes)
                .route("/metrics", web::get().to(metrics::scrape))
                .route("/health", web::get().to(api::health))
                .route("/dashboard", web::get().to(dashboard::index))
                .route("/dashboard/", web::get().to(dashboard::index))
                .route("/dashboard/{file}", web::get().to(dashboard::asset))
                .route("/sse", web::get().to(sse::open))
                .service(
                    web::resource("/sse/{token}")
                        .app_data(web::PayloadConfig::new(body_limit))
                        .route(web::post().to(sse::post))
                        .route(web::delete().to(sse::close)),
                );
        }
    }
}

/// Mounts everything with the defaults: `App::new().configure(routes(hub))`.
pub fn routes(hub: Addr<Hub>) -> impl FnOnce(&mut web::ServiceConfig) {
    WscServer::new(hub).configure()
}

/// A JSON error body `{"error": {"code": .., "message": ..}}`.
pub(crate) fn error_response(
    status: actix_web::http::StatusCode,
    code: &str,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message}}))
}
