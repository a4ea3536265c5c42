//! actix-web wiring: the `/ws` upgrade and the HTTP API, mountable in any `App`.
//!
//! ```no_run
//! use actix::Actor;
//! use actix_web::{web, App, HttpServer, HttpResponse};
//! use actix_wsc::prelude::*;
//! use actix_wsc::server::WscServer;
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new(Config::default()).start();
//! let wsc = WscServer::new(hub.clone()).api_key(Some("secret".into()));
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(wsc.clone().configure())
//!         .route("/mine", web::get().to(|| async { HttpResponse::Ok().finish() }))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await
//! # }
//! ```

pub(crate) mod api;
mod guard;
mod ws;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::{Authenticator, DefaultAuthenticator};
use crate::config::LimitsConfig;
use crate::hub::Hub;

/// Largest `/api/send` body, in bytes, by default (`limits.max_api_body_bytes`).
pub const MAX_API_BODY_BYTES: usize = 1 << 20;

/// Options for mounting actix-wsc in an `App`.
#[derive(Clone)]
pub struct WscServer {
    hub: Addr<Hub>,
    authenticator: Arc<dyn Authenticator>,
    api_key: Option<String>,
    limits: LimitsConfig,
    echo_route: bool,
}

pub(crate) struct ServerState {
    pub(crate) hub: Addr<Hub>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) api_key: Option<String>,
    pub(crate) limits: LimitsConfig,
}

impl WscServer {
    /// Routes for `hub` with the default authenticator and no API key.
    pub fn new(hub: Addr<Hub>) -> Self {
        WscServer {
            hub,
            authenticator: Arc::new(DefaultAuthenticator),
            api_key: None,
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

    /// Requires `Authorization: Bearer <key>` on `/api/*` when `Some`.
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key.filter(|k| !k.is_empty());
        self
    }

    /// A function for `App::configure` that mounts `/ws`, `/api/send`, `/api/online`,
    /// `/api/stats` and `/health`.
    pub fn configure(self) -> impl FnOnce(&mut web::ServiceConfig) {
        move |cfg| {
            let body_limit = self.limits.max_api_body_bytes;
            let state = web::Data::new(ServerState {
                hub: self.hub,
                authenticator: self.authenticator,
                api_key: self.api_key,
                limits: self.limits,
            });
            if self.echo_route {
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
                .route("/health", web::get().to(api::health));
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
