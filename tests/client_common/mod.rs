//! Helpers for the client tests: a client whose events land in one channel, a real server
//! bound to a chosen port (for restarts), and a fake server (a bare actix-ws route) that
//! hands each connection to the test, which then controls every frame.
//!
//! Test files include it with `mod common; mod client_common;`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::Message as WsMessage;
use actix_wsc::client::*;
use actix_wsc::hub::Hub;
use actix_wsc::server::WscServer;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::common::{TestServer, WAIT};

/// Client settings with short delays, for `url` as `user`.
pub fn fast_client(url: &str, user: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, user);
    c.min_reconnect_ms = 20;
    c.max_reconnect_ms = 100;
    c.ping_interval_ms = 1_000;
    c.server_timeout_ms = 5_000;
    c.receipt_timeout_ms = 5_000;
    c.close_timeout_ms = 2_000;
    c.connect_timeout_ms = 2_000;
    c
}

/// Every client event, in the order the application saw them.
#[derive(Debug)]
pub enum Ev {
    Connected(Connected),
    ConnectFailed(ConnectFailed),
    Disconnected(Disconnected),
    Message(IncomingMessage),
    Frame(FrameReceived),
    Sent(actix_wsc::protocol::MessageId),
    SendFailed(SendFailed),
    Ping,
    Pong,
    Closed(StopReason),
}

type Accept = Arc<dyn Fn(&IncomingMessage) -> bool + Send + Sync>;

/// An application actor that logs every event to a channel; its `MessageReceived` answer is
/// `accept(message)`.
pub struct EventLog {
    tx: mpsc::UnboundedSender<Ev>,
    accept: Accept,
}

impl Actor for EventLog {
    type Context = Context<Self>;
}

macro_rules! log_events {
    ($($event:ty => $wrap:expr;)+) => {
        $(
            impl Handler<$event> for EventLog {
                type Result = ();
                fn handle(&mut self, ev: $event, _: &mut Context<Self>) {
                    let wrap: fn($event) -> Ev = $wrap;
                    let _ = self.tx.send(wrap(ev));
                }
            }
        )+
    };
}

log_events! {
    Connected => Ev::Connected;
    ConnectFailed => Ev::ConnectFailed;
    Disconnected => Ev::Disconnected;
    FrameReceived => Ev::Frame;
    Sent => |e| Ev::Sent(e.id);
    SendFailed => Ev::SendFailed;
    Ping => |_| Ev::Ping;
    Pong => |_| Ev::Pong;
    Closed => |e| Ev::Closed(e.reason);
}

impl Handler<MessageReceived> for EventLog {
    type Result = bool;
    fn handle(&mut self, ev: MessageReceived, _: &mut Context<Self>) -> bool {
        let accepted = (self.accept)(&ev.message);
        let _ = self.tx.send(Ev::Message(ev.message));
        accepted
    }
}

/// Events for an application that accepts every message.
pub fn event_log() -> (ClientEvents, mpsc::UnboundedReceiver<Ev>) {
    event_log_with(|_| true)
}

/// Events for an application that accepts the messages `accept` says yes to.
pub fn event_log_with(
    accept: impl Fn(&IncomingMessage) -> bool + Send + Sync + 'static,
) -> (ClientEvents, mpsc::UnboundedReceiver<Ev>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let log = EventLog {
        tx,
        accept: Arc::new(accept),
    }
    .start();
    (ClientEvents::all(&log), rx)
}

/// Starts a client logging every event.
pub fn start_client(config: ClientConfig) -> (Addr<WscClient>, mpsc::UnboundedReceiver<Ev>) {
    let (events, rx) = event_log();
    let client = WscClient::new(config)
        .expect("valid config")
        .with_events(events)
        .start();
    (client, rx)
}

/// Starts a client and waits for its welcome.
pub async fn connected_client(
    config: ClientConfig,
) -> (Addr<WscClient>, mpsc::UnboundedReceiver<Ev>) {
    let (client, mut rx) = start_client(config);
    next_ev(&mut rx, |e| matches!(e, Ev::Connected(_))).await;
    (client, rx)
}

/// The first event matching `pred` (earlier ones are skipped), within [`WAIT`].
pub async fn next_ev(rx: &mut mpsc::UnboundedReceiver<Ev>, pred: impl Fn(&Ev) -> bool) -> Ev {
    crate::common::wait_for(rx, pred).await
}

/// The next application message, within [`WAIT`].
pub async fn next_message(rx: &mut mpsc::UnboundedReceiver<Ev>) -> IncomingMessage {
    match next_ev(rx, |e| matches!(e, Ev::Message(_))).await {
        Ev::Message(m) => m,
        _ => unreachable!(),
    }
}

/// Asserts that no event matching `pred` arrives within `quiet` (for things that must not
/// happen, such as a reconnect after a kick).
pub async fn assert_no_ev(
    rx: &mut mpsc::UnboundedReceiver<Ev>,
    quiet: Duration,
    pred: impl Fn(&Ev) -> bool,
) {
    let found = tokio::time::timeout(quiet, async {
        while let Some(ev) = rx.recv().await {
            if pred(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await;
    if let Ok(Some(ev)) = found {
        panic!("unexpected event {ev:?}");
    }
}

/// A real server (new hub) bound to `addr`, retrying while the old listener releases it.
pub async fn start_on(addr: SocketAddr, hub: Addr<Hub>) -> TestServer {
    let wsc = WscServer::new(hub.clone());
    let deadline = tokio::time::Instant::now() + WAIT;
    let server = loop {
        let wsc = wsc.clone();
        match HttpServer::new(move || App::new().configure(wsc.clone().configure()))
            .workers(1)
            .disable_signals()
            .bind(addr)
        {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                log::debug!("rebind {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    };
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    TestServer { addr, hub, handle }
}

/// A frame the fake server read from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeFrame {
    Text(Value),
    Ping,
    Pong,
    Close(Option<u16>),
    Eof,
}

/// One connection to the fake server.
pub struct FakeConn {
    pub session: actix_ws::Session,
    pub frames: mpsc::UnboundedReceiver<FakeFrame>,
    pub query: String,
}

impl FakeConn {
    pub async fn send(&mut self, v: Value) {
        self.session.text(v.to_string()).await.expect("fake send");
    }

    /// Sends a welcome frame like the real server's.
    pub async fn welcome(&mut self, user: &str, client_id: &str) {
        self.send(json!({
            "id": "w-1", "type": "system", "from": "system", "to": user,
            "content": "connected",
            "data": {"event": "connected", "client_id": client_id, "user_id": user,
                     "protocol": "wsc.v1"}
        }))
        .await;
    }

    /// The next frame of any kind, within [`WAIT`].
    pub async fn next_frame(&mut self) -> FakeFrame {
        tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("a frame within the wait")
            .unwrap_or(FakeFrame::Eof)
    }

    /// The next text frame (pings and pongs skipped), within [`WAIT`].
    pub async fn next_text(&mut self) -> Value {
        loop {
            match self.next_frame().await {
                FakeFrame::Text(v) => return v,
                FakeFrame::Ping | FakeFrame::Pong => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }
}

/// A bare WebSocket server: `/ws` upgrades and hands the connection over; `/forbidden`
/// answers 403.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub conns: mpsc::UnboundedReceiver<FakeConn>,
    pub handle: actix_web::dev::ServerHandle,
}

impl FakeServer {
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The next connection, within [`WAIT`].
    pub async fn accept(&mut self) -> FakeConn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("a connection within the wait")
            .expect("fake server running")
    }
}

async fn fake_ws(
    req: HttpRequest,
    body: web::Payload,
    conns: web::Data<mpsc::UnboundedSender<FakeConn>>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, mut stream) = actix_ws::handle(&req, body)?;
    let (tx, frames) = mpsc::unbounded_channel();
    let reply = session.clone();
    actix_rt::spawn(async move {
        while let Some(Ok(msg)) = stream.recv().await {
            let frame = match msg {
                WsMessage::Text(t) => match serde_json::from_str(&t) {
                    Ok(v) => FakeFrame::Text(v),
                    Err(_) => FakeFrame::Text(Value::String(t.to_string())),
                },
                WsMessage::Ping(_) => FakeFrame::Ping,
                WsMessage::Pong(_) => FakeFrame::Pong,
                WsMessage::Close(reason) => {
                    let code = reason.as_ref().map(|r| u16::from(r.code));
                    let _ = tx.send(FakeFrame::Close(code));
                    let _ = reply.close(reason).await;
                    return;
                }
                _ => continue,
            };
            let _ = tx.send(frame);
        }
        let _ = tx.send(FakeFrame::Eof);
    });
    let _ = conns.send(FakeConn {
        session,
        frames,
        query: req.query_string().to_owned(),
    });
    Ok(response)
}

pub async fn start_fake() -> FakeServer {
    let _ = env_logger::builder().is_test(true).try_init();
    let (tx, conns) = mpsc::unbounded_channel();
    let data = web::Data::new(tx);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/ws", web::get().to(fake_ws))
            .route(
                "/forbidden",
                web::get().to(|| async { HttpResponse::Forbidden().json(json!({"error": "no"})) }),
            )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind 127.0.0.1:0");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    FakeServer {
        addr,
        conns,
        handle,
    }
}

/// A loopback address nothing listens on (a port that was free a moment ago).
pub fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}
