//! Reconnect delays measured live against a port nobody listens on, with small bounds.
//! (The policy itself is unit-tested in `src/client/backoff.rs`.)

mod client_common;
mod common;

use std::time::{Duration, Instant};

use actix_wsc::client::*;
use client_common::*;

#[actix_web::test]
async fn attempts_are_spaced_by_jittered_growing_delays_then_give_up() {
    let min = Duration::from_millis(20);
    let max = Duration::from_millis(80);
    let mut config = fast_client(&format!("ws://{}/ws", dead_addr()), "bo");
    config.min_reconnect_ms = 20;
    config.max_reconnect_ms = 80;
    config.reconnect_factor = 2.0;
    config.max_reconnect_attempts = 6;
    let started = Instant::now();
    let (client, mut ev) = start_client(config);

    let mut failures: Vec<(Instant, ConnectFailed)> = Vec::new();
    while failures.len() < 6 {
        match next_ev(&mut ev, |e| matches!(e, Ev::ConnectFailed(_))).await {
            Ev::ConnectFailed(f) => failures.push((Instant::now(), f)),
            _ => unreachable!(),
        }
    }
    for (n, (_, f)) in failures.iter().enumerate() {
        let attempt = n as u32 + 1;
        assert_eq!(f.attempt, attempt);
        assert!(matches!(f.error, DialError::Transport(_)), "{:?}", f.error);
        if attempt < 6 {
            assert!(f.will_reconnect);
            let delay = f.retry_in.expect("a delay");
            let ceiling = (min * 2u32.pow(attempt)).min(max);
            assert!(
                delay >= min && delay <= ceiling,
                "attempt {attempt}: {delay:?} outside [{min:?}, {ceiling:?}]"
            );
        } else {
            assert!(!f.will_reconnect, "the sixth failure is the last");
            assert_eq!(f.retry_in, None);
        }
    }
    // Attempt k cannot start before the delays announced by the k-1 failures before it have
    // passed (timers never fire early). Measured from before the client started, so the
    // time events take to reach the test can only add to the left side.
    let mut announced = Duration::ZERO;
    for (n, (at, f)) in failures.iter().enumerate() {
        let elapsed = at.duration_since(started);
        assert!(
            elapsed >= announced,
            "failure {} seen after {elapsed:?}, before the {announced:?} of delays announced",
            n + 1
        );
        announced += f.retry_in.unwrap_or_default();
    }
    match next_ev(&mut ev, |e| matches!(e, Ev::Closed(_))).await {
        Ev::Closed(reason) => assert_eq!(reason, StopReason::RetriesExhausted { attempts: 6 }),
        _ => unreachable!(),
    }
    assert_eq!(
        client.send(GetState).await.expect("client"),
        ClientState::Closed
    );
}

#[actix_web::test]
async fn the_state_is_connecting_until_the_first_connection() {
    let mut config = fast_client(&format!("ws://{}/ws", dead_addr()), "cy");
    config.min_reconnect_ms = 10;
    config.max_reconnect_ms = 20;
    let (client, mut ev) = start_client(config);
    next_ev(
        &mut ev,
        |e| matches!(e, Ev::ConnectFailed(f) if f.attempt == 3),
    )
    .await;
    assert_eq!(
        client.send(GetState).await.expect("client"),
        ClientState::Connecting
    );
}
