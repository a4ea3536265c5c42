//! Benchmarks over real sockets on 127.0.0.1 (run: `cargo bench --bench wsc`; one scenario:
//! `cargo bench --bench wsc -- offline`). Bounded in count and time; prints one line per
//! measurement.
//!
//! - `offline`: messages stored per second for offline users (SQLite, group commit), then
//!   delivered per second when the users connect; and, in the same run, a bare rusqlite
//!   batched insert of the same rows (same table, WAL, `synchronous = NORMAL`, transactions
//!   of `store.max_batch` rows), and the store's rate as a fraction of it.
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

/// CPU seconds this process used so far, all threads (user + system, from /proc/self/stat).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime is the 12th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0 // USER_HZ
}

/// The offline table exactly as the store creates it (`src/store/sqlite.rs`).
const BARE_SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE offline (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        from_user TEXT NOT NULL,
        message_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        stored_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        UNIQUE (user_id, from_user, message_id)
    );
    CREATE INDEX offline_user ON offline (user_id, seq);";

/// Rows per second of a bare rusqlite insert of `rows` (user, envelope JSON) in transactions
/// of `batch`: the ceiling the store is measured against.
fn bare_sqlite(rows: &[(String, Envelope)], batch: usize) -> (f64, f64) {
    let dir = std::env::temp_dir().join(format!("wsc-bench-bare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bare dir");
    let mut conn = rusqlite::Connection::open(dir.join("bare.db")).expect("open bare db");
    conn.execute_batch(BARE_SCHEMA).expect("bare schema");
    let rows: Vec<(&str, &str, &str, String)> = rows
        .iter()
        .map(|(u, e)| {
            let json = serde_json::to_string(e).expect("json");
            (u.as_str(), e.from.as_str(), e.id.as_str(), json)
        })
        .collect();
    let now = 1_700_000_000_000i64;
    let started = Instant::now();
    let cpu = cpu_secs();
    for chunk in rows.chunks(batch) {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO offline (user_id, from_user, message_id, envelope, stored_ms, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .expect("prepare");
            for (user, from, id, json) in chunk {
                insert
                    .execute(rusqlite::params![user, from, id, json, now, now + 1])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let rate = rows.len() as f64 / started.elapsed().as_secs_f64();
    let cpu_us = (cpu_secs() - cpu) * 1e6 / rows.len() as f64;
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    (rate, cpu_us)
}

async fn offline(users: usize, per_user: usize) {
    let dir = std::env::temp_dir().join(format!("wsc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::default();
    config.server.data_dir = dir.clone();
    config.store.backend = Some(StoreBackend::Sqlite);
    config.store.per_user_cap = per_user;
    config.session.queue_bytes = 64 << 20;
    let max_batch = config.store.max_batch;
    let hub = Hub::from_config(config).expect("store").start();
    let addr = serve(hub.clone()).await;
    let total = users * per_user;
    let rows: Vec<(String, Envelope)> = (0..total)
        .map(|i| {
            (
                format!("off{}", i % users),
                Envelope::system_text(format!(
                    "{i:08}-payload-of-about-64-bytes-xxxxxxxxxxxxxxxxxxxxxxx"
                )),
            )
        })
        .collect();
    // Measured before and after the store, and the better of the two kept (the stricter
    // ceiling).
    let bare_before = bare_sqlite(&rows, max_batch);
    let started = Instant::now();
    let cpu = cpu_secs();
    // Every send resolves only once its message is durable.
    let sends = rows.iter().map(|(user, envelope)| {
        hub.send(SendTracked::new(
            Target::User(user.as_str().into()),
            envelope.clone(),
        ))
    });
    let reports = join_all(sends).await;
    let stored: usize = reports
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| !r.stored_offline.is_empty()))
        .count();
    let store_secs = started.elapsed().as_secs_f64();
    let store_cpu_us = (cpu_secs() - cpu) * 1e6 / total as f64;
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
    let stored_rate = total as f64 / store_secs;
    let bare_after = bare_sqlite(&rows, max_batch);
    let (bare, bare_cpu_us) = if bare_after.0 > bare_before.0 {
        bare_after
    } else {
        bare_before
    };
    println!(
        "offline: stored {total} msgs for {users} users in {store_secs:.3}s = {stored_rate:.0} msg/s (durable, SQLite WAL, group commit); \
         delivered on reconnect in {deliver_secs:.3}s = {:.0} msg/s",
        total as f64 / deliver_secs
    );
    println!(
        "offline: bare rusqlite insert of the same {total} rows (same table, WAL, synchronous=NORMAL, \
         {max_batch} rows per transaction) = {bare:.0} rows/s; store / bare = {:.2}",
        stored_rate / bare
    );
    println!(
        "offline: CPU per message, all threads: store {store_cpu_us:.1} us (hub, writer and store \
         thread; an offline row and a record row per message), bare insert {bare_cpu_us:.1} us per row; \
         bare / store = {:.2}",
        bare_cpu_us / store_cpu_us
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
