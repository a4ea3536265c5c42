//! Criterion benchmarks of the hot pure parts (no sockets, no actors): frame decode and
//! validate, routing-table lookups, encoding a message once for N recipients, and the record
//! state machine. Run: `cargo bench --bench hot` (one group: `cargo bench --bench hot --
//! decode`). Each group measures for about 2 s.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_wsc::model::lifecycle::{on_ack, on_routed, Routed};
use actix_wsc::model::{MessageRecord, RecordTarget, SessionInfo, Target};
use actix_wsc::protocol::{parse_inbound, ClientId, Envelope, GroupId, Source, UserId};
use actix_wsc::routing::RoutingTable;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A p2p frame as the shared loadgen sends it, padded to about `size` bytes of content.
fn p2p_frame(size: usize) -> String {
    let content = format!("{:>19}:{:>8}:", 1_234_567_890_123u64, 42);
    let pad = "x".repeat(size.saturating_sub(content.len()));
    format!(r#"{{"type":"text","to":"r1-u1","content":"{content}{pad}"}}"#)
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for size in [64usize, 1024] {
        let frame = p2p_frame(size);
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_with_input(BenchmarkId::new("p2p_text", size), &frame, |b, f| {
            b.iter(|| parse_inbound(black_box(f)).is_ok())
        });
    }
    let ack = r#"{"type":"ack","id":"m-0000000042","from":"r1-u0"}"#;
    g.bench_function("ack", |b| b.iter(|| parse_inbound(black_box(ack)).is_ok()));
    let ping = r#"{"type":"ping"}"#;
    g.bench_function("ping", |b| {
        b.iter(|| parse_inbound(black_box(ping)).is_ok())
    });
    let bad = r#"{"type":"text","to":"#;
    g.bench_function("invalid_json", |b| {
        b.iter(|| parse_inbound(black_box(bad)).is_err())
    });
    g.finish();
}

fn info(i: usize) -> SessionInfo {
    SessionInfo {
        client_id: ClientId::from(format!("c{i}")),
        user_id: UserId::from(format!("r1-u{i}")),
        user_type: Default::default(),
        role: None,
        conn: i as u64,
        connected_at: SystemTime::UNIX_EPOCH,
        metadata: Default::default(),
    }
}

fn table(n: usize, group_members: usize) -> RoutingTable<u64> {
    let mut t = RoutingTable::default();
    let group = GroupId::from("bench");
    for i in 0..n {
        let inf = info(i);
        let client = inf.client_id.clone();
        t.insert(inf, i as u64).expect("insert");
        if i < group_members {
            t.join(&client, &group).expect("join");
        }
    }
    t
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing");
    let t = table(10_000, 1_000);
    let online = Target::User(UserId::from("r1-u4242"));
    let offline = Target::User(UserId::from("nobody"));
    let group = Target::Group(GroupId::from("bench"));
    g.bench_function("user_online_of_10k", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            let sel = t.select(black_box(&online), None, |e| sum += e.handle);
            (sel.sessions, sum)
        })
    });
    g.bench_function("user_offline_of_10k", |b| {
        b.iter(|| {
            t.select(black_box(&offline), None, |_| {})
                .offline_users
                .len()
        })
    });
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("group_1000_members", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            t.select(black_box(&group), None, |e| sum += e.handle);
            sum
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for size in [64usize, 1024] {
        let mut env = Envelope::system_text("x".repeat(size)).with_id("m-0000000042");
        env.to = Some(UserId::from("r1-u1"));
        let env = Arc::new(env);
        g.bench_with_input(BenchmarkId::new("once", size), &env, |b, e| {
            b.iter(|| actix_wsc::protocol::OutboundFrame::new(e.clone(), Source::Live).len())
        });
        for n in [1usize, 1000] {
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("once_render_{n}"), size),
                &env,
                |b, e| {
                    b.iter(|| {
                        let frame =
                            actix_wsc::protocol::OutboundFrame::new(e.clone(), Source::Live);
                        let mut bytes = 0;
                        for seq in 0..n as u64 {
                            bytes += frame.render(seq).len();
                        }
                        bytes
                    })
                },
            );
        }
        g.throughput(Throughput::Elements(1));
    }
    g.finish();
}

fn record(users: usize, require_ack: bool) -> MessageRecord {
    let mut e = Envelope::system_text("x").with_id("m1");
    e.require_ack = require_ack;
    let mut r = MessageRecord::new(
        e,
        RecordTarget::Users((0..users).map(|u| UserId::from(format!("u{u}"))).collect()),
        require_ack,
        Duration::from_millis(5000),
    );
    r.storable = true;
    r
}

fn lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle");
    let one = Routed {
        reached: vec![(UserId::from("u0"), None)],
        ..Default::default()
    };
    let bob = UserId::from("u0");
    g.bench_function("ack_one_recipient", |b| {
        b.iter(|| {
            let mut r = record(1, true);
            let (actions, _) = on_routed(&mut r, black_box(&one), None, 1000);
            let acked = on_ack(&mut r, &bob, 1010).is_some();
            (actions.len(), acked, r.status)
        })
    });
    g.bench_function("plain_one_recipient", |b| {
        b.iter(|| {
            let mut r = record(1, false);
            let (actions, _) = on_routed(&mut r, black_box(&one), None, 1000);
            (actions.len(), r.status)
        })
    });
    let users: Vec<UserId> = (0..100).map(|u| UserId::from(format!("u{u}"))).collect();
    let hundred = Routed {
        reached: users.iter().map(|u| (u.clone(), None)).collect(),
        ..Default::default()
    };
    g.throughput(Throughput::Elements(100));
    g.bench_function("ack_100_recipients", |b| {
        b.iter(|| {
            let mut r = record(100, true);
            on_routed(&mut r, black_box(&hundred), None, 1000);
            for u in &users {
                on_ack(&mut r, u, 1010);
            }
            r.status
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = hot;
    config = config();
    targets = decode, routing, encode, lifecycle
}
criterion_main!(hot);
