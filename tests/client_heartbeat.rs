//! Heartbeat, seen from a fake server: the client pings on its interval, answers server pings,
//! and treats a silent server as a dropped connection (and reconnects).

mod client_common;
mod common;

use std::time::Duration;

use actix_wsc::client::*;
use client_common::*;

#[actix_web::test]
async fn the_client_pings_and_answers_pings() {
    let mut fake = start_fake().await;
    let mut config = fast_client(&fake.url(), "hb");
    config.ping_interval_ms = 50;
    config.server_timeout_ms = 5_000;
    let (_client, mut ev) = start_client(config);
    let mut conn = fake.accept().await;
    conn.welcome("hb", "c-hb").await;

    let mut pings = 0;
    while pings < 3 {
        match conn.next_frame().await {
            FakeFrame::Ping => pings += 1,
            other => panic!("only pings expected, got {other:?}"),
        }
    }
    conn.session.ping(b"are you there").await.expect("ping");
    loop {
        match conn.next_frame().await {
            FakeFrame::Pong => break,
            FakeFrame::Ping => continue,
            other => panic!("expected the pong, got {other:?}"),
        }
    }
    next_ev(&mut ev, |e| matches!(e, Ev::Ping)).await;
    conn.session.pong(b"").await.expect("pong");
    next_ev(&mut ev, |e| matches!(e, Ev::Pong)).await;
}

#[actix_web::test]
async fn a_silent_server_counts_as_a_drop() {
    let mut fake = start_fake().await;
    let mut config = fast_client(&fake.url(), "hb");
    config.ping_interval_ms = 50;
    config.server_timeout_ms = 300;
    let (client, mut ev) = start_client(config);
    let mut conn = fake.accept().await;
    // Before the welcome: the client last heard from the server after this instant.
    let started = tokio::time::Instant::now();
    conn.welcome("hb", "c-given").await;
    next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await;

    // The fake never answers the client's pings and sends nothing more.
    match next_ev(&mut ev, |e| matches!(e, Ev::Disconnected(_))).await {
        Ev::Disconnected(d) => {
            assert_eq!(d.code, None, "no close frame: an abnormal drop");
            assert!(d.reason.contains("silent"), "{}", d.reason);
            assert!(d.will_reconnect);
        }
        _ => unreachable!(),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "dropped only after the timeout ({:?})",
        started.elapsed()
    );
    let second = fake.accept().await;
    assert!(
        second.query.contains("client_id=c-given"),
        "the reconnect reuses the assigned client id: {}",
        second.query
    );
    assert_ne!(
        client.send(GetState).await.expect("client"),
        ClientState::Closed
    );
}
