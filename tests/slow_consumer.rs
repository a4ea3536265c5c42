//! A reader that stops reading overflows its byte-bounded queue: the queue-full handlers hear
//! about it,
//! the session closes with 4000, everyone else keeps being served.

mod common;

use actix_wsc::error::FailureKind;
use actix_wsc::handlers::{DisconnectReason, QueueFull, SendFailed, SessionDisconnected};
use actix_wsc::hub::{Dispatch, Subscribe};
use actix_wsc::protocol::{CloseCode, Envelope};
use common::*;
use serde_json::json;

#[actix_web::test]
async fn slow_reader_overflows_and_is_closed_with_4000() {
    let mut config = fast_config();
    config.session.queue_bytes = 64 * 1024;
    config.session.write_timeout_ms = 60_000;
    let server = start(config).await;
    let (full_tx, mut full) = collector::<QueueFull>();
    let (failed_tx, mut failed) = collector::<SendFailed>();
    server.hub.send(Subscribe(full_tx)).await.expect("hub");
    let (gone_tx, mut gone) = collector::<SessionDisconnected>();
    server.hub.send(Subscribe(failed_tx)).await.expect("hub");
    server.hub.send(Subscribe(gone_tx)).await.expect("hub");
    let (mut slow, _) = connect(&server, "user_id=slow").await;
    let (mut fast, _) = connect(&server, "user_id=fast").await;

    // Push 16 KiB frames at the slow reader until its queue overflows. The kernel's socket
    // buffers absorb some megabytes first; 4000 frames (64 MiB) bounds the test.
    let payload = "x".repeat(16 * 1024);
    let mut overflowed = false;
    for _ in 0..4000 {
        let r = server
            .hub
            .send(Dispatch::to_user(
                "slow",
                Envelope::system_text(payload.clone()),
            ))
            .await
            .expect("hub");
        if r.delivered == 0 {
            overflowed = true;
            break;
        }
    }
    assert!(overflowed, "the queue never overflowed");
    let ev = wait_for(&mut full, |_| true).await;
    assert_eq!(ev.recipient, "slow");
    assert_eq!(ev.queue, "session_outbound");
    // Every specialised failure also reaches the general send-failure handlers.
    let ev = wait_for(&mut failed, |e| e.reason == FailureKind::QueueFull).await;
    assert_eq!(ev.recipient, "slow");
    let ev = wait_for(&mut gone, |e| e.user_id.as_str() == "slow").await;
    assert!(matches!(
        ev.reason,
        DisconnectReason::ServerClosed(CloseCode::SlowConsumer, _)
    ));

    // Everyone else is served meanwhile.
    fast.send_json(&json!({"type":"text","to":"fast","content":"self"}))
        .await;
    assert_eq!(fast.next_json().await["content"], "self");

    // The slow reader finally reads: what was written, then the close frame.
    assert_eq!(slow.expect_close().await, Some(4000));
}
