//! Benchmarks over real sockets on 127.0.0.1 (run: `cargo bench --bench wsc`; one scenario:
//! `cargo bench --bench wsc -- offline`). Bounded in count and time; prints one line per
//! measurement.
//!
//! - `offline`: messages stored per second for offline users (`SendTracked` through the
//!   hub, SQLite store, each send answered once durable), then delivered per second when
//!   the users connect; and, in the same run, a bare rusqlite batched insert of the same
//!   rows: the rows the store wrote to its offline table, read back from its database (user,
//!   sender, id, envelope JSON, stored and expiry times, and the compact record each row
//!   carries: one row per message), inserted into a fresh database with that table (its
//!   `CREATE` statements read back too) with the store's settings (WAL,
//!   `synchronous = NORMAL`, its page cache) in transactions of `store.max_batch` rows,
//!   twice after the delivery (the faster kept); and the store's rate as a fraction of it.
//!   For reference it also prints the bare insert of those rows without their records.
//! - `ack`: latency of a plain send (hub to client) against send-with-ack (hub to client,
//!   client acks, outcome back at the caller), p50/p99.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_codec::Framed;
use actix_web::{App, HttpServer};
use actix_wsc::config::{Config, StoreBackend};
use actix_wsc::hub::{AckOptions, Dispatch, GetReliability, Hub, SendTracked, SendWithAck, Target};
use actix_wsc::protocol::Envelope;
use actix_wsc::server::WscServer;
use actix_wsc::store::SqliteStore;
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
    stat_cpu(&stat)
}

/// User + system seconds in a `stat` line (fields after the command name, which ends with
/// the last ')': utime is the 12th).
fn stat_cpu(stat: &str) -> f64 {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0 // USER_HZ
}

/// CPU seconds of the store's thread (`wsc-store`) so far.
fn store_thread_cpu_secs() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "wsc-store")
        })
        .map(|t| stat_cpu(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
        .sum()
}

/// An offline row as the store wrote it: user_id, from_user, message_id, envelope (JSON),
/// stored_ms, expires_ms, record (the compact record the row carries, if any).
type Row = (String, String, String, String, i64, i64, Option<Vec<u8>>);

/// The store's offline table (its `CREATE` statements, read from the store's database) and
/// every row in it, in queue order.
fn store_rows(db: &std::path::Path) -> (Vec<String>, Vec<Row>) {
    let conn = rusqlite::Connection::open(db).expect("open the store's db");
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'offline' AND sql IS NOT NULL")
        .expect("schema");
    let schema = stmt
        .query_map([], |r| r.get(0))
        .expect("schema")
        .collect::<Result<_, _>>()
        .expect("schema");
    let mut stmt = conn
        .prepare(
            "SELECT user_id, from_user, message_id, envelope, stored_ms, expires_ms, record
             FROM offline ORDER BY seq",
        )
        .expect("rows");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    (schema, rows)
}

/// Rows per second (and CPU per row) of a bare rusqlite insert of `rows` into a fresh
/// database with the store's offline table (`schema`), WAL, `synchronous = NORMAL`, in
/// transactions of `batch` rows: the ceiling the store is measured against. `records`:
/// insert each row's record too (as the store wrote it), or leave the column NULL.
fn bare_sqlite(schema: &[String], rows: &[Row], batch: usize, records: bool) -> (f64, f64) {
    let dir = std::env::temp_dir().join(format!("wsc-bench-bare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bare dir");
    let mut conn = rusqlite::Connection::open(dir.join("bare.db")).expect("open bare db");
    // The store's settings: WAL, synchronous = NORMAL, and its page cache.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{};",
        SqliteStore::CACHE_KIB
    ))
    .expect("bare pragmas");
    for sql in schema {
        conn.execute_batch(sql).expect("bare schema");
    }
    let started = Instant::now();
    let cpu = cpu_secs();
    for chunk in rows.chunks(batch) {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO offline
                         (user_id, from_user, message_id, envelope, stored_ms, expires_ms, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .expect("prepare");
            for (user, from, id, json, stored, expires, record) in chunk {
                let record = record.as_deref().filter(|_| records);
                insert
                    .execute(rusqlite::params![
                        user, from, id, json, stored, expires, record
                    ])
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
    let sends: Vec<(String, Envelope)> = (0..total)
        .map(|i| {
            (
                format!("off{}", i % users),
                Envelope::system_text(format!(
                    "{i:08}-payload-of-about-64-bytes-xxxxxxxxxxxxxxxxxxxxxxx"
                )),
            )
        })
        .collect();
    let started = Instant::now();
    let cpu = cpu_secs();
    let store_cpu = store_thread_cpu_secs();
    // Every send resolves only once its message is durable.
    let pending = sends.iter().map(|(user, envelope)| {
        hub.send(SendTracked::new(
            Target::User(user.as_str().into()),
            envelope.clone(),
        ))
    });
    let reports = join_all(pending).await;
    let stored: usize = reports
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| !r.stored_offline.is_empty()))
        .count();
    let store_secs = started.elapsed().as_secs_f64();
    let store_cpu_us = (cpu_secs() - cpu) * 1e6 / total as f64;
    let store_thread_us = (store_thread_cpu_secs() - store_cpu) * 1e6 / total as f64;
    assert_eq!(stored, total, "every message stored");
    // What the store wrote, read back (before the delivery removes it): the bare insert
    // below writes exactly these rows.
    let (schema, rows) = store_rows(&dir.join("wsc.db"));
    assert_eq!(rows.len(), total, "one offline row per message");
    let with_record = rows.iter().filter(|r| r.6.is_some()).count();
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
    // The delivered copies leave the store after they were sent: wait for that (the bare
    // insert below should not share the disk and the cores with it), and say how long.
    let rel = hub.send(GetReliability).await.expect("hub");
    let store = rel.store().expect("store").clone();
    while store.offline_total().await.expect("count") > 0 {
        assert!(started.elapsed() < WAIT, "delivered copies removed in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let removed_secs = started.elapsed().as_secs_f64();
    let stored_rate = total as f64 / store_secs;
    // Measured twice, the faster kept (the stricter ceiling).
    let first = bare_sqlite(&schema, &rows, max_batch, true);
    let second = bare_sqlite(&schema, &rows, max_batch, true);
    let (bare, bare_cpu_us) = if second.0 > first.0 { second } else { first };
    let (bare_plain, _) = bare_sqlite(&schema, &rows, max_batch, false);
    println!(
        "offline: stored {total} msgs for {users} users in {store_secs:.3}s = {stored_rate:.0} msg/s (durable, SQLite WAL, group commit); \
         delivered on reconnect in {deliver_secs:.3}s = {:.0} msg/s (delivered copies all removed from the store after {removed_secs:.3}s)",
        total as f64 / deliver_secs
    );
    println!(
        "offline: bare rusqlite insert of the same {total} rows (read back from the store: the store's offline \
         table, each row with its envelope JSON and, for {with_record} of them, the record it carries; WAL, \
         synchronous=NORMAL, cache_size={} KiB, {max_batch} rows per transaction) = {bare:.0} rows/s; \
         store / bare = {:.2}",
        SqliteStore::CACHE_KIB,
        stored_rate / bare
    );
    println!(
        "offline: CPU per message, all threads: store {store_cpu_us:.1} us (of which the store thread \
         {store_thread_us:.1} us; one row per message), bare insert {bare_cpu_us:.1} us per row; \
         bare / store = {:.2}",
        bare_cpu_us / store_cpu_us
    );
    println!(
        "offline: for reference, the same rows without their records (record column NULL) = \
         {bare_plain:.0} rows/s; store / that = {:.2}",
        stored_rate / bare_plain
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
