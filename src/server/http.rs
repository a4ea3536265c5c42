//! [`WscHttpServer`]: an HTTP server for an actix-web `App` in which actix-wsc takes the
//! WebSocket upgrades itself, below actix-web (actix-http's upgrade hook), and runs each
//! session straight on its socket (`session::WsConn`). Everything that is not an upgrade
//! (`/api/*`, `/sse`, `/metrics`, the dashboard, your own routes) is served by the `App` as
//! with `HttpServer`.
//!
//! Why: on actix-web's route, a WebSocket stays inside actix-http's dispatcher for its whole
//! life, which keeps two 8 KiB buffers per connection and hands every inbound frame from the
//! dispatcher's task to the session's through actix-ws. Below it, a connection costs what
//! the session needs (no buffer while idle) and one task. See BENCHMARKS.md for the figures.

use std::fmt;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BoxBody, MessageBody};
use actix_http::{h1, HttpServiceBuilder, Request, Response};
use actix_rt::net::TcpStream;
use actix_server::{Server, ServerBuilder};
use actix_service::{
    boxed, fn_factory, fn_service, map_config, IntoServiceFactory, ServiceFactory,
    ServiceFactoryExt,
};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::AppConfig;

use super::upgrade::{self, UpgradeError};
use super::{ServerState, WscServer};
use crate::session::RawIo;

/// The type parameters the factory fixes (actix-web's `HttpServer` carries the same).
type Types<I, S, B> = PhantomData<fn() -> (I, S, B)>;

/// An HTTP server for `App`s that mount actix-wsc ([`WscServer::configure`]), with `/ws`
/// (and `/echo`) served below actix-web.
///
/// ```no_run
/// use actix::Actor;
/// use actix_web::App;
/// use actix_wsc::prelude::*;
/// use actix_wsc::server::{WscHttpServer, WscServer};
///
/// # async fn run() -> std::io::Result<()> {
/// let hub = Hub::new(Config::default()).start();
/// let wsc = WscServer::new(hub);
/// let routes = wsc.clone();
/// WscHttpServer::new(wsc, move || App::new().configure(routes.configure()))
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// # }
/// ```
///
/// Every HTTP/1.1 upgrade request reaches actix-wsc, whatever its path: an `App` with
/// WebSocket routes of its own should run under actix-web's `HttpServer` (where actix-wsc's
/// `/ws` route works too, through actix-ws).
pub struct WscHttpServer<F, I, S, B> {
    wsc: WscServer,
    factory: F,
    builder: ServerBuilder,
    addrs: Vec<SocketAddr>,
    _types: Types<I, S, B>,
}

impl<F, I, S, B> WscHttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as actix_service::Service<Request>>::Future: 'static,
    B: MessageBody + 'static,
{
    /// A server for the `App`s `factory` makes (one per worker), taking `wsc`'s upgrades.
    pub fn new(wsc: WscServer, factory: F) -> Self {
        WscHttpServer {
            wsc,
            factory,
            builder: Server::build(),
            addrs: Vec::new(),
            _types: PhantomData,
        }
    }

    /// Worker threads (default: one per core the process may use).
    pub fn workers(mut self, n: usize) -> Self {
        self.builder = self.builder.workers(n.max(1));
        self
    }

    /// Seconds a graceful stop waits for HTTP requests in flight (default 30).
    pub fn shutdown_timeout(mut self, secs: u64) -> Self {
        self.builder = self.builder.shutdown_timeout(secs);
        self
    }

    /// Leaves SIGINT and SIGTERM to the application.
    pub fn disable_signals(mut self) -> Self {
        self.builder = self.builder.disable_signals();
        self
    }

    /// The addresses bound so far.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// Listens on every address `addr` resolves to (plain HTTP and `ws://`).
    pub fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<Self> {
        self.bind_with(addr, None)
    }

    /// Listens with TLS (`https://` and `wss://` only).
    pub fn bind_rustls_0_23(
        self,
        addr: impl ToSocketAddrs,
        tls: rustls::ServerConfig,
    ) -> std::io::Result<Self> {
        self.bind_with(addr, Some(tls))
    }

    fn bind_with(
        mut self,
        addr: impl ToSocketAddrs,
        tls: Option<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let mut bound = false;
        let mut last_err = None;
        for a in addr.to_socket_addrs()? {
            match TcpListener::bind(a) {
                Ok(l) => {
                    self = self.listen_with(l, tls.clone())?;
                    bound = true;
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (bound, last_err) {
            (true, _) => Ok(self),
            (false, Some(e)) => Err(e),
            (false, None) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the address resolves to nothing",
            )),
        }
    }

    /// Serves on a listener bound elsewhere.
    pub fn listen(self, listener: TcpListener) -> std::io::Result<Self> {
        self.listen_with(listener, None)
    }

    fn listen_with(
        mut self,
        listener: TcpListener,
        tls: Option<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        self.addrs.push(addr);
        let (wsc, factory) = (self.wsc.clone(), self.factory.clone());
        let name = format!("actix-wsc-{addr}");
        self.builder = self.builder.listen(name, listener, move || {
            let state = Rc::new(wsc.state());
            let echo_route = wsc.echo_route;
            let secure = tls.is_some();
            let app = factory()
                .into_factory()
                .map_err(|err| err.into().error_response());
            let app = map_config(app, move |_| app_config(secure, addr));
            match tls.clone() {
                None => boxed::factory(
                    http_service::<TcpStream, _>(addr)
                        .upgrade(upgrades(state, echo_route))
                        .finish(app)
                        .tcp()
                        .map_err(|e| log::debug!("connection ended: {e}")),
                ),
                Some(tls) => boxed::factory(
                    http_service::<TlsStream<TcpStream>, _>(addr)
                        .upgrade(upgrades(state, echo_route))
                        .finish(app)
                        .rustls_0_23(tls)
                        .map_err(|e| log::debug!("TLS connection ended: {e:?}")),
                ),
            }
        })?;
        Ok(self)
    }

    /// Starts the workers; the server runs until it is stopped (its handle) or, unless
    /// [`WscHttpServer::disable_signals`], until SIGINT or SIGTERM.
    pub fn run(self) -> Server {
        self.builder.run()
    }
}

/// The `App`'s view of the listener. actix-web makes its `AppConfig` only inside
/// `HttpServer`; outside, its default (`localhost:8080`) is what an `App` sees for URL
/// generation when a request has no `Host` header: the scheme and local address are set here
/// through the doc-hidden constructor actix-test uses.
fn app_config(secure: bool, addr: SocketAddr) -> AppConfig {
    AppConfig::__priv_test_new(secure, addr.to_string(), addr)
}

/// actix-web's defaults for the HTTP side, with `TCP_NODELAY`.
fn http_service<T, S>(addr: SocketAddr) -> HttpServiceBuilder<T, S>
where
    S: ServiceFactory<Request, Config = ()>,
    S::Error: Into<Response<BoxBody>> + 'static,
    S::InitError: fmt::Debug,
    <S::Service as actix_service::Service<Request>>::Future: 'static,
{
    HttpServiceBuilder::default()
        .keep_alive(Duration::from_secs(5))
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        // Every frame is a small write that should leave at once, as the Go and Node peers
        // do.
        .tcp_nodelay(true)
        .local_addr(addr)
}

/// The upgrade hook of one worker, for connections of type `T` (TCP or TLS).
fn upgrades<T: RawIo>(
    state: Rc<ServerState>,
    echo_route: bool,
) -> impl ServiceFactory<
    (Request, Framed<T, h1::Codec>),
    Config = (),
    Response = (),
    Error = UpgradeError,
    InitError = (),
> {
    fn_factory(move || {
        let state = state.clone();
        async move {
            Ok::<_, ()>(fn_service(move |(req, framed)| {
                let state = state.clone();
                async move { upgrade::serve(&state, echo_route, req, framed).await }
            }))
        }
    })
}
