//! Benchmarks over real sockets on 127.0.0.1 (run: `cargo bench --bench wsc`; one scenario:
//! `cargo bench --bench wsc -- offline`). Bounded in count and time; prints one line per
//! measurement.
//!
//! - `offline`: messages stored per second for offline users (SQLite, group commit), then
//!   delivered per second when the users connect.
//! - `ack`: latency of a plain send (hub to client) against send-with-ack (hub to client,
//!   client acks, outcome back at the caller), p50/p99.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_codec::Framed;
use actix_web::{App, HttpServer};
use actix_wsc::config::{Config, StoreBackend};
use actix_wsc::hub::{AckOptions, Dispatch, Hub, SendTracked, SendWithAck, Target};
use actix_wsc::protocol::Envelope;
use actix_wsc::server::WscServer;
use awc::ws::{self, Frame};
use awc::BoxedSocket;
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};

const WAIT: Duration = Duration::from_secs(30);

async fn serve(hub: Addr<Hub>) -> std::net::SocketAddr {
    let wsc = WscServer::new(hub);
    let server = HttpServer::new(move || App::new().configure(wsc.clone().configure()))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind");
    let addr = server.addrs()[0];
    actix_rt::spawn(server.run());
    addr
}

type Conn = Framed<BoxedSocket, ws::Codec>;

async fn connect(addr: std::net::SocketAddr, user: &str) -> Conn {
    let (_, mut c) = awc::Client::new()
        .ws(format!("ws://{addr}/ws?user_id={user}"))
        .max_frame_size(1 << 20)
        .connect()
        .await
        .expect("connect");
    next_text(&mut c).await; // welcome
    c
}

async fn next_text(c: &mut Conn) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(WAIT, c.next())
            .await
            .expect("frame in time")
            .expect("open")
            .expect("frame");
        match frame {
            Frame::Text(t) => return serde_json::from_slice(&t).expect("json"),
            Frame::Ping(p) => c.send(ws::Message::Pong(p)).await.expect("pong"),
            _ => {}
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

async fn offline(users: usize, per_user: usize) {
    let dir = std::env::temp_dir().join(format!("wsc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::default();
    config.server.data_dir = dir.clone();
    config.store.backend = Some(StoreBackend::Sqlite);
    config.store.per_user_cap = per_user;
    config.session.queue_bytes = 64 << 20;
    let hub = Hub::from_config(config).expect("store").start();
    let addr = serve(hub.clone()).await;
    let total = users * per_user;
    let started = Instant::now();
    // Every send resolves only once its message is durable.
    let sends = (0..total).map(|i| {
        hub.send(SendTracked::new(
            Target::User(format!("off{}", i % users).into()),
            Envelope::system_text(format!(
                "{i:08}-payload-of-about-64-bytes-xxxxxxxxxxxxxxxxxxxxxxx"
            )),
        ))
    });
    let reports = join_all(sends).await;
    let stored: usize = reports
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| !r.stored_offline.is_empty()))
        .count();
    let store_secs = started.elapsed().as_secs_f64();
    assert_eq!(stored, total, "every message stored");
    let started = Instant::now();
    let readers = (0..users).map(|u| async move {
        let mut c = connect(addr, &format!("off{u}")).await;
        for _ in 0..per_user {
            let m = next_text(&mut c).await;
            assert_eq!(m["source"], "offline");
        }
    });
    join_all(readers).await;
    let deliver_secs = started.elapsed().as_secs_f64();
    println!(
        "offline: stored {total} msgs for {users} users in {store_secs:.3}s = {:.0} msg/s (durable, SQLite WAL, group commit); \
         delivered on reconnect in {deliver_secs:.3}s = {:.0} msg/s",
        total as f64 / store_secs,
        total as f64 / deliver_secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn ack_latency(n: usize) {
    let hub = Hub::new(Config::default()).start();
    let addr = serve(hub.clone()).await;
    let mut c = connect(addr, "lat").await;
    let mut plain = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = hub
            .send(Dispatch::to_user(
                "lat",
                Envelope::system_text(i.to_string()),
            ))
            .await
            .expect("hub");
        assert_eq!(r.delivered, 1);
        next_text(&mut c).await;
        plain.push(t.elapsed());
    }
    let mut acked = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let pending = hub.send(SendWithAck {
            user_id: "lat".into(),
            envelope: Envelope::system_text(i.to_string()),
            options: AckOptions::default(),
        });
        let (outcome, ()) = tokio::join!(pending, async {
            let m = next_text(&mut c).await;
            let ack = serde_json::json!({"type":"ack","id":m["id"]}).to_string();
            c.send(ws::Message::Text(ack.into())).await.expect("ack");
        });
        assert!(outcome.expect("hub").success);
        acked.push(t.elapsed());
    }
    plain.sort();
    acked.sort();
    println!(
        "ack: {n} sequential sends; plain send->received p50 {:.0} us p99 {:.0} us; \
         send_with_ack->confirmed p50 {:.0} us p99 {:.0} us",
        pct(&plain, 0.5),
        pct(&plain, 0.99),
        pct(&acked, 0.5),
        pct(&acked, 0.99)
    );
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    actix_rt::System::new().block_on(async move {
        if run("offline") {
            offline(100, 200).await;
        }
        if run("ack") {
            ack_latency(2000).await;
        }
    });
}
