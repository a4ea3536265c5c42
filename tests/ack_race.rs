//! An ack can reach the server before the message's record does: the recipient's session
//! runs on another worker thread, writes the frame and receives the client's ack within
//! microseconds of the sender's session routing it. Such an ack must confirm the delivery,
//! not be ignored (which costs an ack timeout, a resend and a duplicate at the client).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

const PAIRS: usize = 16;
const PER_PAIR: usize = 150;

#[actix_web::test]
async fn instant_acks_across_workers_confirm_every_delivery_once() {
    let server = spawn_server(
        &["--bind", "127.0.0.1:0", "--workers", "2"],
        &[("WSC_STORE", "memory"), ("WSC_ACK_TIMEOUT_MS", "300")],
    );
    let url = |u: &str| format!("ws://{}/ws?user_id={u}", server.addr);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for p in 0..PAIRS {
        let mut r = try_connect(&url(&format!("r{p}"))).await.expect("connect");
        assert_eq!(r.next_json().await["data"]["event"], "connected");
        receivers.push(r);
        let mut s = try_connect(&url(&format!("s{p}"))).await.expect("connect");
        assert_eq!(s.next_json().await["data"]["event"], "connected");
        senders.push(s);
    }
    // Receivers ack every copy at once (by id alone, as most clients do) and count copies.
    let mut tasks = Vec::new();
    for mut r in receivers {
        tasks.push(actix_rt::spawn(async move {
            let mut seen = HashSet::new();
            let mut dups = 0usize;
            // Quiet for longer than an ack timeout plus a retry delay: nothing is resent.
            while let Some(Got::Json(m)) = r.next_within(Duration::from_millis(1500)).await {
                let Some(id) = m["id"].as_str().map(str::to_owned) else {
                    continue;
                };
                if m["require_ack"] == true {
                    r.send_text(&format!(r#"{{"type":"ack","id":"{id}"}}"#))
                        .await;
                    if !seen.insert(id) {
                        dups += 1;
                    }
                }
            }
            (seen.len(), dups)
        }));
    }
    for (p, s) in senders.iter_mut().enumerate() {
        for k in 0..PER_PAIR {
            s.send_text(&format!(
                r#"{{"type":"text","to":"r{p}","id":"p{p}-{k}","content":"x","require_ack":true}}"#
            ))
            .await;
        }
    }
    for s in senders.iter_mut() {
        let mut receipts = 0;
        while receipts < PER_PAIR {
            let m = s.next_json().await;
            if m["type"] == "ack" {
                assert_eq!(m["status"], "accepted", "{m}");
                receipts += 1;
            }
        }
    }
    let mut total_dups = 0;
    for t in tasks {
        let (received, dups) = t.await.expect("receiver");
        assert_eq!(received, PER_PAIR, "every message arrived");
        total_dups += dups;
    }
    assert_eq!(
        total_dups, 0,
        "acks that raced their record were ignored: {total_dups} messages resent after the ack timeout"
    );
    terminate(&server);
    assert!(wait_exit(server).success());
}
