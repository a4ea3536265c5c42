//! 200 concurrent clients exchanging messages: none lost, duplicated or reordered per sender.

mod common;

use std::collections::HashSet;

use actix_wsc::hub::GetStats;
use common::*;
use futures_util::future::join_all;
use serde_json::json;

const CLIENTS: usize = 200;
const PER_CLIENT: usize = 100;

#[actix_web::test]
async fn two_hundred_clients_exchange_without_loss_duplication_or_reordering() {
    let server = start(fast_config()).await;
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        clients.push(connect(&server, &format!("user_id=u{i}")).await.0);
    }
    // u(2k) <-> u(2k+1); every client sends to its partner and to one more user so that
    // each session also receives from two senders interleaved.
    let runs = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| async move {
            let partner = i ^ 1;
            let third = (i + 2) % CLIENTS;
            for n in 0..PER_CLIENT {
                c.send_json(
                    &json!({"type":"text","to":format!("u{partner}"),"content":format!("{i}:{n}")}),
                )
                .await;
                c.send_json(
                    &json!({"type":"text","to":format!("u{third}"),"content":format!("{i}:{n}")}),
                )
                .await;
            }
            // Expect PER_CLIENT from the partner and PER_CLIENT from (i - 2), each in order.
            let from_partner = partner;
            let from_third = (i + CLIENTS - 2) % CLIENTS;
            let mut next =
                std::collections::HashMap::from([(from_partner, 0usize), (from_third, 0usize)]);
            let mut ids = HashSet::new();
            let mut last_seq = 0;
            for _ in 0..2 * PER_CLIENT {
                let m = c.next_json().await;
                let content = m["content"].as_str().expect("content");
                let (s, n) = content.split_once(':').expect("sender:n");
                let (s, n): (usize, usize) = (s.parse().expect("s"), n.parse().expect("n"));
                assert_eq!(m["from"], format!("u{s}"), "from matches the sender");
                let want = next
                    .get_mut(&s)
                    .unwrap_or_else(|| panic!("u{i} got a message from u{s}"));
                assert_eq!(
                    n, *want,
                    "u{i}: message {n} from u{s} out of order or duplicated"
                );
                *want += 1;
                assert!(
                    ids.insert(m["id"].as_str().expect("id").to_owned()),
                    "duplicate id"
                );
                let seq = m["seq_no"].as_u64().expect("seq_no");
                assert_eq!(seq, last_seq + 1, "seq_no is contiguous");
                last_seq = seq;
            }
            assert!(next.values().all(|&v| v == PER_CLIENT));
            c.assert_quiet().await;
            c
        });
    let clients = join_all(runs).await;
    let stats = server.hub.send(GetStats).await.expect("hub");
    assert_eq!(stats.messages_received, (CLIENTS * PER_CLIENT * 2) as u64);
    assert_eq!(stats.messages_sent, (CLIENTS * PER_CLIENT * 2) as u64);
    assert_eq!(stats.websocket_count, CLIENTS as u64);
    drop(clients);
}
