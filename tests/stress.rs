//! Self-checking stress scenarios (issue 11), one binary, in-process server on 127.0.0.1:
//! connect churn, slow client, no pong, malformed frames, memory bound. Each prints its
//! numbers (`cargo test --test stress -- --nocapture`) and fails on any violation.
//!
//! They run one after another in a single test so that timings and RSS are not disturbed by
//! each other.

mod common;

use std::time::{Duration, Instant};

use actix_wsc::config::Config;
use actix_wsc::handlers::QueueFull;
use actix_wsc::hub::{Dispatch, GetStats, Subscribe};
use actix_wsc::protocol::Envelope;
use awc::ws::Message;
use bytes::Bytes;
use common::*;
use futures_util::future::join_all;
use serde_json::json;

/// Resident set size of this process, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Peak resident set size of this process (VmHWM).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

fn config() -> Config {
    let mut c = fast_config();
    c.limits.max_sessions_per_user = 0;
    c.limits.max_connections = 10_000;
    c
}

/// Waits until the hub's tables, groups, acks, retries and timers are empty.
async fn wait_empty(server: &TestServer, what: &str) {
    let hub = server.hub.clone();
    wait_until(Duration::from_secs(20), what, move || {
        let hub = hub.clone();
        async move {
            let s = hub.send(GetStats).await.map_err(|e| e.to_string())?;
            let d = &s.delivery;
            if s.active_connections == 0
                && s.groups == 0
                && s.online_users == 0
                && d.awaiting_acks == 0
                && d.scheduled_retries == 0
                && d.delayed == 0
            {
                Ok(())
            } else {
                Err(format!(
                    "sessions {} users {} groups {} awaiting_acks {} retries {} delayed {}",
                    s.active_connections,
                    s.online_users,
                    s.groups,
                    d.awaiting_acks,
                    d.scheduled_retries,
                    d.delayed
                ))
            }
        }
    })
    .await;
}

/// One connect/disconnect cycle: join a group, get an ACK-requested message; clean cycles
/// ack it and close, abrupt ones drop the TCP connection.
async fn cycle(server: &TestServer, i: usize) {
    let user = format!("churn-{i}");
    let (mut c, _) = connect(server, &format!("user_id={user}")).await;
    c.send_json(&json!({"type": "join", "id": "j", "group": format!("g{}", i % 10)}))
        .await;
    let v = c.next_json().await;
    assert_eq!(v["status"], "accepted", "{v}");
    if i % 2 == 0 {
        c.send_json(&json!({"type": "text", "id": format!("m{i}"), "to": user, "content": "x"}))
            .await;
        let v = c
            .next_matching(WAIT, |v| v["type"] == "text")
            .await
            .expect("own message");
        c.send_json(&json!({"type": "ack", "id": v["id"], "from": user}))
            .await;
        c.close().await;
    } else {
        c.drop_connection();
    }
}

async fn churn(cycles: usize, workers: usize) {
    let server = start(config()).await;
    // Warm up allocator arenas and the runtime before the baseline.
    run_cycles(&server, 0, 200, workers).await;
    wait_empty(&server, "empty after warm-up").await;
    let base = rss_kib();
    let t0 = Instant::now();
    run_cycles(&server, 200, cycles, workers).await;
    let took = t0.elapsed();
    wait_empty(&server, "hub empty after churn").await;
    let after = rss_kib();
    println!(
        "stress churn: {cycles} cycles ({workers} at a time, half abrupt) in {took:?} ({:.0}/s); \
         RSS {base} KiB -> {after} KiB ({:+} KiB)",
        cycles as f64 / took.as_secs_f64(),
        after as i64 - base as i64
    );
    assert!(
        after <= base + base / 4 + 16 * 1024,
        "RSS grew from {base} KiB to {after} KiB over {cycles} churn cycles"
    );
}

async fn run_cycles(server: &TestServer, from: usize, n: usize, workers: usize) {
    let per = n / workers;
    join_all((0..workers).map(|w| async move {
        for k in 0..per {
            cycle(server, from + w * per + k).await;
        }
    }))
    .await;
}

/// Round trips of a message to oneself, per client; returns p50 and p99.
async fn latencies(clients: &mut [Client], rounds: usize) -> (Duration, Duration) {
    let all = join_all(clients.iter_mut().enumerate().map(|(n, c)| async move {
        let mut v = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let t = Instant::now();
            c.send_json(
                &json!({"type": "text", "to": format!("fast-{n}"), "content": r.to_string()}),
            )
            .await;
            c.next_matching(WAIT, |v| v["type"] == "text")
                .await
                .expect("own message");
            v.push(t.elapsed());
        }
        v
    }))
    .await;
    let mut all: Vec<Duration> = all.into_iter().flatten().collect();
    all.sort();
    (all[all.len() / 2], all[all.len() * 99 / 100])
}

/// Paced 16 KiB frames to `user`: until one is refused (`Some(count)`), or `max` went out.
async fn flood(hub: actix::Addr<actix_wsc::hub::Hub>, user: &str, max: usize) -> Option<usize> {
    let payload = "x".repeat(16 * 1024);
    // Paced, so the writer keeps up until the reader's socket buffers are full. 16 MB/s
    // leaves a reading client (debug build, sharing its thread with the hub) about 16 ms of
    // slack in a 256 KiB queue: the queue is the only buffer between the hub and the
    // socket (the response body drains it directly), so a faster flood made the *reading*
    // client overflow whenever its thread was descheduled for 8 ms.
    let mut pace = tokio::time::interval(Duration::from_millis(1));
    for sent in 0..max {
        pace.tick().await;
        let r = hub
            .send(Dispatch::to_user(
                user,
                Envelope::system_text(payload.clone()),
            ))
            .await
            .expect("hub");
        if r.delivered == 0 {
            return Some(sent);
        }
    }
    None
}

async fn slow_client() {
    let mut c = config();
    let queue = 256 * 1024;
    c.session.queue_bytes = queue;
    c.session.write_timeout_ms = 60_000;
    let server = start(c).await;
    let (full_tx, mut full) = collector::<QueueFull>();
    server.hub.send(Subscribe(full_tx)).await.expect("hub");
    let mut fast = Vec::new();
    for n in 0..4 {
        fast.push(connect(&server, &format!("user_id=fast-{n}")).await.0);
    }
    latencies(&mut fast, 50).await;

    // Baseline: the same flood, to a client that keeps reading.
    let (mut sink, _) = connect(&server, "user_id=sink").await;
    let frames = 300;
    let read_all = async move {
        for _ in 0..frames {
            sink.next_matching(WAIT, |v| v["type"] == "text")
                .await
                .expect("the reading client gets every frame");
        }
    };
    let ((base_p50, base_p99), refused, ()) = tokio::join!(
        latencies(&mut fast, 200),
        flood(server.hub.clone(), "sink", frames),
        read_all
    );
    assert_eq!(refused, None, "a reading client's queue overflowed");

    let (mut slow, _) = connect(&server, "user_id=slow").await;
    let ((p50, p99), sent) = tokio::join!(
        latencies(&mut fast, 200),
        flood(server.hub.clone(), "slow", 8_000)
    );
    let sent = sent.expect("the slow reader's queue never overflowed");
    let ev = wait_for(&mut full, |_| true).await;
    assert_eq!(ev.recipient, "slow");
    assert_eq!(slow.expect_close().await, Some(4000));
    assert!(
        sent * 16 * 1024 > 2 * queue,
        "overflowed after {sent} frames: the queue filled before the socket did"
    );
    println!(
        "stress slow client: overflowed after {sent} frames of 16 KiB; others' p50/p99 \
         {base_p50:?}/{base_p99:?} beside a reading client under the same flood, \
         {p50:?}/{p99:?} beside the slow one"
    );
    let bound = (base_p99 * 2).max(Duration::from_millis(2));
    assert!(
        p99 <= bound,
        "others' p99 {p99:?} with a slow client is over 2x {base_p99:?}"
    );
}

async fn no_pong() {
    let mut c = config();
    c.session.heartbeat_interval_ms = 100;
    c.session.client_timeout_ms = 400;
    let server = start(c).await;
    let (mut silent, _) = connect(&server, "user_id=silent").await;
    silent.auto_pong = false;
    let t0 = Instant::now();
    let code = loop {
        match silent.next_within(WAIT).await {
            Some(Got::Close(code)) => break code,
            Some(Got::Ping) => continue,
            other => panic!("expected pings then a close, got {other:?}"),
        }
    };
    let took = t0.elapsed();
    println!("stress no pong: closed with {code:?} after {took:?} (client_timeout_ms 400)");
    assert_eq!(code, Some(4001));
    // Bound: the timeout plus one check interval (timeout / 4) plus scheduling slack.
    assert!(took <= Duration::from_millis(400 + 100 + 400), "{took:?}");
}

/// What PROTOCOL.md section 3 says about a frame: an error code (session stays) or a close.
enum Want {
    Error(&'static str),
    Close(u16),
    Delivered,
}

async fn malformed() {
    let server = start(config()).await;
    let (mut peer, _) = connect(&server, "user_id=peer").await;
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let big = "y".repeat(1 << 20);
    let half = "y".repeat(512 * 1024);
    let text = |s: String| Message::Text(s.into());
    let cases: Vec<(&str, Message, Want)> = vec![
        (
            "bad json",
            text("{\"type\":".into()),
            Want::Error("invalid_json"),
        ),
        (
            "not an object",
            text("42".into()),
            Want::Error("invalid_frame"),
        ),
        (
            "type is a number",
            text(r#"{"type":7,"to":"peer"}"#.into()),
            Want::Error("invalid_frame"),
        ),
        (
            "to is an object",
            text(r#"{"type":"text","id":"w1","to":{"a":1},"content":"x"}"#.into()),
            Want::Error("invalid_frame"),
        ),
        (
            "require_ack is a string",
            text(r#"{"type":"text","id":"w2","to":"peer","require_ack":"yes"}"#.into()),
            Want::Error("invalid_frame"),
        ),
        (
            "huge number out of f64 range",
            text(format!(
                r#"{{"type":"text","id":"h1","to":"peer","priority":1{}}}"#,
                "0".repeat(400)
            )),
            Want::Error("invalid_json"),
        ),
        (
            "number over u64 where a string belongs",
            text(r#"{"type":"text","id":18446744073709551616,"to":"peer"}"#.into()),
            Want::Error("invalid_frame"),
        ),
        (
            "number overflowing f64",
            text(r#"{"type":"text","id":"h2","to":"peer","content":1e999}"#.into()),
            Want::Error("invalid_json"),
        ),
        (
            "deep nesting",
            text(format!(
                r#"{{"type":"text","id":"d1","to":"peer","data":{deep}}}"#
            )),
            Want::Error("invalid_json"),
        ),
        (
            "unknown type",
            text(r#"{"type":"teleport"}"#.into()),
            Want::Error("unknown_type"),
        ),
        (
            "unknown fields are ignored",
            text(r#"{"type":"text","id":"u1","to":"peer","content":"ok","zzz":[1,2]}"#.into()),
            Want::Delivered,
        ),
        (
            "512 KiB string is fine",
            text(format!(
                r#"{{"type":"text","id":"s1","to":"peer","content":"{half}"}}"#
            )),
            Want::Delivered,
        ),
        (
            "binary frame",
            Message::Binary(Bytes::from_static(b"\x00\x01")),
            Want::Error("invalid_frame"),
        ),
        (
            "1 MiB string",
            text(format!(
                r#"{{"type":"text","id":"s2","to":"peer","content":"{big}"}}"#
            )),
            Want::Close(1009),
        ),
        (
            "bad UTF-8",
            Message::Text(
                // Bytes that are not UTF-8, smuggled past awc's ByteString.
                unsafe {
                    bytestring::ByteString::from_bytes_unchecked(Bytes::from_static(
                        b"{\"a\":\"\xff\xfe\"}",
                    ))
                },
            ),
            Want::Close(1007),
        ),
    ];
    let n = cases.len();
    let mut c = connect(&server, "user_id=fuzz").await.0;
    for (name, msg, want) in cases {
        c.send_raw(msg).await;
        match want {
            Want::Error(code) => {
                let v = match c.next_within(WAIT).await {
                    Some(Got::Json(v)) => v,
                    other => panic!("{name}: expected error {code}, got {other:?}"),
                };
                assert_eq!(v["type"], "error", "{name}: {v}");
                assert_eq!(v["error"]["code"], code, "{name}: {v}");
                c.assert_quiet().await;
            }
            Want::Delivered => {
                let v = peer
                    .next_matching(WAIT, |v| v["type"] == "text")
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(v.get("zzz").is_none(), "{name}: {v}");
                c.assert_quiet().await;
            }
            Want::Close(code) => {
                assert_eq!(c.expect_close().await, Some(code), "{name}");
                c = connect(&server, "user_id=fuzz").await.0;
            }
        }
    }
    peer.assert_quiet().await;
    println!("stress malformed: {n} inputs, each answered as PROTOCOL.md says");
}

async fn memory_bound(sessions: usize) {
    let mut c = config();
    let queue = 16 * 1024;
    c.session.queue_bytes = queue;
    c.session.write_timeout_ms = 60_000;
    c.limits.max_connections = sessions;
    let server = start(c).await;
    let base = rss_kib();
    let mut clients = Vec::with_capacity(sessions);
    for chunk in 0..sessions / 100 {
        let got = join_all((0..100).map(|k| {
            let server = &server;
            async move {
                connect(server, &format!("user_id=m{}", chunk * 100 + k))
                    .await
                    .0
            }
        }))
        .await;
        clients.extend(got);
    }
    let connected = rss_kib();
    // Fill every queue: broadcast until no session takes more (each closed with 4000).
    let payload = "z".repeat(4 * 1024);
    let mut broadcasts = 0;
    let mut peak = connected;
    for _ in 0..4000 {
        let r = server
            .hub
            .send(Dispatch::broadcast(Envelope::system_text(payload.clone())))
            .await
            .expect("hub");
        peak = peak.max(rss_kib());
        if r.delivered == 0 {
            break;
        }
        broadcasts += 1;
    }
    assert!(broadcasts < 4000, "the queues never filled");
    let peak = peak.max(peak_rss_kib());
    let bound_kib = (sessions * queue / 1024) as u64;
    println!(
        "stress memory bound: {sessions} sessions, queue_bytes {queue}; RSS {base} KiB idle, \
         {connected} KiB connected, {peak} KiB with full queues after {broadcasts} broadcasts (peak); \
         bound sessions*queue_bytes = {bound_kib} KiB + fixed overhead"
    );
    assert!(
        peak <= connected + bound_kib + 64 * 1024,
        "RSS {peak} KiB over {connected} KiB + {bound_kib} KiB + 64 MiB"
    );
    drop(clients);
}

#[actix_web::test]
async fn stress_scenarios() {
    let t0 = Instant::now();
    no_pong().await;
    malformed().await;
    churn(2_000, 16).await;
    slow_client().await;
    memory_bound(2_000).await;
    println!("stress: all scenarios in {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(120));
}
