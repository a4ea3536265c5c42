//! Shared helpers: a server on 127.0.0.1:0 and a raw WebSocket client (awc) that answers
//! pings only when asked, so tests control every frame.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use actix_codec::Framed;
use actix_web::{dev::ServerHandle, App, HttpServer};
use actix_wsc::config::{Config, WsTransport};
use actix_wsc::hub::Hub;
use actix_wsc::server::{WscHttpServer, WscServer};
use awc::ws::{self, Frame};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

/// The longest any test waits for one event.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Addr<Hub>,
    pub handle: ServerHandle,
}

impl TestServer {
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub fn fast_config() -> Config {
    Config::default()
}

pub async fn start(config: Config) -> TestServer {
    start_with(config, |w| w).await
}

pub async fn start_with(
    config: Config,
    f: impl Fn(WscServer) -> WscServer + Send + Clone + 'static,
) -> TestServer {
    serve(Hub::new(config).start(), f).await
}

/// Serves a hub the test started itself (a custom store, say).
pub async fn start_existing(hub: Addr<Hub>) -> TestServer {
    serve(hub, |w| w).await
}

async fn serve(
    hub: Addr<Hub>,
    f: impl Fn(WscServer) -> WscServer + Send + Clone + 'static,
) -> TestServer {
    serve_on(hub, f, transport()).await
}

/// A server whose WebSocket sessions run on `transport`, whatever `WSC_TEST_TRANSPORT` says.
pub async fn start_on_transport(config: Config, transport: WsTransport) -> TestServer {
    serve_on(Hub::new(config).start(), |w| w, transport).await
}

async fn serve_on(
    hub: Addr<Hub>,
    f: impl Fn(WscServer) -> WscServer + Send + Clone + 'static,
    transport: WsTransport,
) -> TestServer {
    let _ = env_logger::builder().is_test(true).try_init();
    let wsc = f(WscServer::new(hub.clone()));
    let routes = wsc.clone();
    let app = move || App::new().configure(routes.clone().configure());
    let (addr, server) = match transport {
        WsTransport::Raw => {
            let server = WscHttpServer::new(wsc, app)
                .workers(2)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind 127.0.0.1:0");
            (server.addrs()[0], server.run())
        }
        WsTransport::ActixWeb => {
            let server = HttpServer::new(app)
                .workers(2)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind 127.0.0.1:0");
            (server.addrs()[0], server.run())
        }
    };
    let handle = server.handle();
    actix_rt::spawn(server);
    TestServer { addr, hub, handle }
}

/// The WebSocket transport the in-process servers use: `WSC_TEST_TRANSPORT=actix-web` runs
/// them on actix-web's `HttpServer` (actix-ws and the response body), anything else on
/// `WscHttpServer` (the raw upgraded socket), as wsc-server does by default.
pub fn transport() -> WsTransport {
    match std::env::var("WSC_TEST_TRANSPORT") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("WSC_TEST_TRANSPORT: {e}")),
        Err(_) => WsTransport::Raw,
    }
}

/// What a client saw next.
#[derive(Debug)]
pub enum Got {
    Json(Value),
    Text(String),
    Binary(Bytes),
    Ping,
    Close(Option<u16>),
    Eof,
}

pub struct Client {
    framed: Framed<BoxedSocket, ws::Codec>,
    pub auto_pong: bool,
}

pub async fn try_connect(url: &str) -> Result<Client, awc::error::WsClientError> {
    let (_resp, framed) = awc::Client::new()
        .ws(url)
        .max_frame_size(16 << 20)
        .connect()
        .await?;
    Ok(Client {
        framed,
        auto_pong: true,
    })
}

/// Connects and reads the welcome frame.
pub async fn connect(server: &TestServer, query: &str) -> (Client, Value) {
    let mut c = try_connect(&server.ws_url(query)).await.expect("connect");
    let welcome = c.next_json().await;
    assert_eq!(
        welcome["data"]["event"], "connected",
        "first frame is the welcome"
    );
    (c, welcome)
}

/// The HTTP status an upgrade attempt got, when it was refused.
pub async fn refused_status(url: &str) -> u16 {
    match try_connect(url).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) => s.as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("upgrade to {url} was accepted"),
    }
}

impl Client {
    pub async fn send_text(&mut self, text: &str) {
        self.framed
            .send(ws::Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_raw(&mut self, msg: ws::Message) {
        self.framed.send(msg).await.expect("send");
    }

    /// The next frame, answering pings when `auto_pong`; `None` after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        loop {
            let next = tokio::time::timeout(wait, self.framed.next()).await.ok()?;
            let frame = match next {
                None => return Some(Got::Eof),
                Some(Err(_)) => return Some(Got::Eof),
                Some(Ok(f)) => f,
            };
            return Some(match frame {
                Frame::Text(b) => {
                    let s = String::from_utf8_lossy(&b).into_owned();
                    match serde_json::from_str(&s) {
                        Ok(v) => Got::Json(v),
                        Err(_) => Got::Text(s),
                    }
                }
                Frame::Binary(b) => Got::Binary(b),
                Frame::Ping(p) => {
                    if self.auto_pong {
                        self.framed.send(ws::Message::Pong(p)).await.ok();
                        continue;
                    }
                    Got::Ping
                }
                Frame::Pong(_) => continue,
                Frame::Close(r) => Got::Close(r.map(|r| u16::from(r.code))),
                Frame::Continuation(_) => continue,
            });
        }
    }

    /// The next JSON frame (pings answered); panics on anything else.
    pub async fn next_json(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Some(Got::Json(v)) => v,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    /// Reads until a close frame and returns its code (frames before it are skipped).
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_within(WAIT).await {
                Some(Got::Close(code)) => return code,
                Some(Got::Eof) => panic!("connection ended without a close frame"),
                None => panic!("no close frame within {WAIT:?}"),
                Some(_) => continue,
            }
        }
    }

    /// Sends a ping frame and waits for the pong: proves the session still serves.
    pub async fn assert_alive(&mut self) {
        self.send_text(r#"{"type":"ping"}"#).await;
        loop {
            let v = self.next_json().await;
            if v["type"] == "pong" {
                return;
            }
        }
    }

    /// Like [`Client::assert_alive`], but any other frame before the pong fails the test:
    /// nothing else was queued for this session.
    pub async fn assert_quiet(&mut self) {
        self.send_text(r#"{"type":"ping"}"#).await;
        let v = self.next_json().await;
        assert_eq!(v["type"], "pong", "unexpected frame {v}");
    }

    /// The closing handshake: sends 1000 and waits for the server's close frame.
    pub async fn close(mut self) {
        self.framed
            .send(ws::Message::Close(Some(ws::CloseCode::Normal.into())))
            .await
            .expect("send close");
        loop {
            match self.next_within(WAIT).await {
                Some(Got::Close(_)) | Some(Got::Eof) => return,
                None => panic!("no close reply within {WAIT:?}"),
                Some(_) => continue,
            }
        }
    }
}

/// An actor that forwards every event it receives to a channel.
pub struct Collector<E: Send>(pub mpsc::UnboundedSender<E>);

impl<E: Send + 'static> Actor for Collector<E> {
    type Context = Context<Self>;
}

impl<E> Handler<E> for Collector<E>
where
    E: actix::Message<Result = ()> + Send + 'static,
{
    type Result = ();

    fn handle(&mut self, ev: E, _: &mut Context<Self>) {
        let _ = self.0.send(ev);
    }
}

/// Starts a collector and returns its recipient and the receiving end.
pub fn collector<E>() -> (Recipient<E>, mpsc::UnboundedReceiver<E>)
where
    E: actix::Message<Result = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    (Collector(tx).start().recipient(), rx)
}

/// Waits for the first event matching `pred`.
pub async fn wait_for<E>(rx: &mut mpsc::UnboundedReceiver<E>, pred: impl Fn(&E) -> bool) -> E {
    let fut = async {
        while let Some(ev) = rx.recv().await {
            if pred(&ev) {
                return ev;
            }
        }
        panic!("event channel closed");
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("event within the wait")
}

/// Polls `check` until it holds (for state visible only through queries), bounded.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within {WAIT:?}");
}

// ---- the server binary as a child process ----

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;

pub const BIN: &str = env!("CARGO_BIN_EXE_wsc-server");

pub struct Running {
    pub child: Child,
    pub addr: String,
}

pub fn spawn_server(args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsc-server");
    let stderr = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let addr = loop {
        let line = line_rx
            .recv_timeout(WAIT)
            .expect("a `listening on` line within the wait");
        if let Some((_, addr)) = line.split_once("listening on ") {
            break addr.trim().to_owned();
        }
    };
    Running { child, addr }
}

/// Waits (bounded) for the server to exit; kills it if it does not.
pub fn wait_exit(mut r: Running) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match r.child.try_wait().expect("wait") {
            Some(status) => return status,
            None if std::time::Instant::now() >= deadline => {
                let _ = r.child.kill();
                let _ = r.child.wait();
                panic!("the server did not exit within {WAIT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Drop for Running {
    /// A test that panics before stopping its server does not leave it running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion, bounded: a server that starts instead of failing is killed.
pub fn run_bounded(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("wsc-server kept running; expected it to exit");
        }
    }
}

pub fn terminate(r: &Running) {
    let status = Command::new("kill")
        .args(["-TERM", &r.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

// ---- delivery-guarantee helpers (tests/delivery_*.rs) ----

use actix_wsc::hub::GetReliability;

/// `GET url`: the status and the JSON body (`Value::Null` when the body is not JSON).
pub async fn get_json(url: &str) -> (u16, Value) {
    let mut resp = awc::Client::new()
        .get(url)
        .send()
        .await
        .expect("GET request");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("GET body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `POST url` with a JSON body: the status and the JSON answer.
pub async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let mut resp = awc::Client::new()
        .post(url)
        .content_type("application/json")
        .send_body(body.to_string())
        .await
        .expect("POST request");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("POST body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `GET /api/messages/{id}`: the record as JSON, `None` on 404.
// NEW API: records are keyed by (from, id); the route may need the sender to pick one.
pub async fn record_json(server: &TestServer, id: &str) -> Option<Value> {
    let (status, body) = get_json(&server.http_url(&format!("/api/messages/{id}"))).await;
    match status {
        200 => Some(body),
        404 => None,
        s => panic!("GET /api/messages/{id}: HTTP {s} {body}"),
    }
}

/// The record's `status` field (`"none"` when there is no record).
pub async fn record_status(server: &TestServer, id: &str) -> String {
    match record_json(server, id).await {
        Some(r) => r["status"].as_str().unwrap_or("?").to_owned(),
        None => "none".to_owned(),
    }
}

/// Polls `check` every 10 ms until it returns `Ok`, for at most `wait`; then panics with
/// `what` and the last state `check` described in its `Err`.
pub async fn wait_until<F, Fut>(wait: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let state = match check().await {
            Ok(()) => return,
            Err(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {wait:?} (last state: {state})");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many messages wait in `user`'s offline store (committed rows).
pub async fn offline_count(server: &TestServer, user: &str) -> usize {
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let store = rel.store().expect("the hub has a store").clone();
    store.count(user.into()).await.expect("store count")
}

/// Waits (bounded by `wait`) until at least `n` messages wait in `user`'s offline store.
pub async fn wait_stored(server: &TestServer, user: &str, n: usize, wait: Duration) {
    wait_until(
        wait,
        &format!("{n} message(s) for {user} in the offline store"),
        || async move {
            let count = offline_count(server, user).await;
            if count >= n {
                Ok(())
            } else {
                Err(format!("{count} stored for {user}"))
            }
        },
    )
    .await;
}

/// Like [`wait_stored`], with the state of record `id` in the failure message.
pub async fn wait_stored_record(
    server: &TestServer,
    user: &str,
    n: usize,
    id: &str,
    wait: Duration,
) {
    wait_until(
        wait,
        &format!("{n} message(s) for {user} in the offline store"),
        || async move {
            let count = offline_count(server, user).await;
            if count >= n {
                return Ok(());
            }
            let record = match record_json(server, id).await {
                Some(r) => format!(
                    "status={} stored_offline={} failure_reason={} pending_acks={}",
                    r["status"], r["stored_offline"], r["failure_reason"], r["pending_acks"]
                ),
                None => "no record".to_owned(),
            };
            Err(format!("{count} stored for {user}; record {id}: {record}"))
        },
    )
    .await;
}

/// Whether a frame is one the application sees (not a pong, not a receipt).
pub fn is_app_frame(v: &Value) -> bool {
    !matches!(v["type"].as_str(), Some("pong") | Some("ack"))
}

impl Client {
    /// The next JSON frame matching `pred` within `wait` (others skipped, pings answered);
    /// `Err` says what ended the wait (timeout, close, EOF).
    pub async fn next_matching(
        &mut self,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(Got::Json(v)) if pred(&v) => return Ok(v),
                Some(Got::Json(v)) => skipped.push(v.to_string()),
                Some(Got::Close(code)) => {
                    return Err(format!("closed with {code:?} (skipped {skipped:?})"))
                }
                Some(Got::Eof) => return Err(format!("connection ended (skipped {skipped:?})")),
                Some(other) => skipped.push(format!("{other:?}")),
                None => return Err(format!("nothing within {wait:?} (skipped {skipped:?})")),
            }
        }
    }

    /// The next application frame (pongs and receipts skipped) within `wait`; panics with
    /// `what` and what ended the wait.
    pub async fn expect_app(&mut self, wait: Duration, what: &str) -> Value {
        match self.next_matching(wait, is_app_frame).await {
            Ok(v) => v,
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Reads for `window` (a short wait that lets time pass) and panics on any application
    /// frame: shows that nothing is delivered to this client in that window.
    pub async fn assert_no_app_within(&mut self, window: Duration, what: &str) {
        if let Ok(v) = self.next_matching(window, is_app_frame).await {
            panic!("{what}: got {v}");
        }
    }

    /// [`Client::assert_quiet`] naming the client in the failure: nothing but the pong was
    /// queued for `who`.
    pub async fn assert_quiet_as(&mut self, who: &str) {
        self.send_text(r#"{"type":"ping"}"#).await;
        let v = self.next_json().await;
        assert_eq!(v["type"], "pong", "{who} got an unexpected frame {v}");
    }

    /// An ack naming the sender, as DELIVERY.md asks clients to send.
    pub async fn ack_from(&mut self, id: &str, from: &str) {
        self.send_json(&serde_json::json!({"type":"ack","id":id,"from":from}))
            .await;
    }

    /// Drops the TCP connection without a close frame (a dead network, a killed app).
    pub fn drop_connection(self) {
        drop(self);
    }
}

// ---- operations helpers (tests/runtime_config.rs, tests/metrics.rs, tests/admin.rs) ----

/// An HTTP request with an optional bearer key: the status and the JSON answer.
pub async fn http_json(
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = awc::Client::new().request(method, url);
    if let Some(k) = key {
        req = req.insert_header(("Authorization", format!("Bearer {k}")));
    }
    let mut resp = match body {
        Some(b) => req
            .content_type("application/json")
            .send_body(b.to_string())
            .await
            .expect("request"),
        None => req.send().await.expect("request"),
    };
    let status = resp.status().as_u16();
    let body = resp.body().limit(8 << 20).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `GET url` as text (`/metrics`): the status and the body.
pub async fn get_text(url: &str, key: Option<&str>) -> (u16, String) {
    let mut req = awc::Client::new().get(url);
    if let Some(k) = key {
        req = req.insert_header(("Authorization", format!("Bearer {k}")));
    }
    let mut resp = req.send().await.expect("GET request");
    let status = resp.status().as_u16();
    let body = resp.body().limit(8 << 20).await.expect("GET body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends a hand-made WebSocket upgrade over raw TCP and returns the refusal's status and
/// JSON body (panics when the upgrade is accepted), with an `Origin` header when given.
pub async fn refused_upgrade_from(url: &str, origin: Option<&str>) -> (u16, Value) {
    let rest = url.strip_prefix("ws://").expect("ws:// url");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    req.push_str("\r\n");
    let host = host.to_owned();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&host).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.write_all(req.as_bytes()).expect("write");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the server closes, or until the head and a JSON body are in.
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&out);
            if text.starts_with("HTTP/1.1 101") {
                break;
            }
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                if serde_json::from_str::<Value>(body).is_ok() {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .expect("join");
    let status: u16 = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    assert_ne!(status, 101, "upgrade to {url} was accepted");
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON error body ({e}): {raw:?}"));
    (status, v)
}

/// [`refused_upgrade_from`] without an `Origin` header.
pub async fn refused_upgrade(url: &str) -> (u16, Value) {
    refused_upgrade_from(url, None).await
}
