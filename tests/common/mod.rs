//! Shared helpers: a server on 127.0.0.1:0 and a raw WebSocket client (awc) that answers
//! pings only when asked, so tests control every frame.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use actix_codec::Framed;
use actix_web::{dev::ServerHandle, App, HttpServer};
use actix_wsc::config::Config;
use actix_wsc::hub::Hub;
use actix_wsc::server::WscServer;
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
    let _ = env_logger::builder().is_test(true).try_init();
    let wsc = f(WscServer::new(hub.clone()));
    let server = HttpServer::new(move || App::new().configure(wsc.clone().configure()))
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind 127.0.0.1:0");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    TestServer { addr, hub, handle }
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
    let (tx, rx) = std_mpsc::channel();
    let pid = r.child.id();
    std::thread::spawn(move || {
        let _ = tx.send(r.child.wait());
    });
    match rx.recv_timeout(WAIT) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the server did not exit within {WAIT:?}");
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
