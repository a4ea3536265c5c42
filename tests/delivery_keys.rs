//! Keys and recipients (docs/DELIVERY.md): a message is `(from, id)`, so two senders may use
//! the same id; an ack names the sender (and is ambiguous without it when two are awaited); a
//! group message is acknowledged per member; and retrying a failed message sends it to its
//! exact target, never to everyone.

mod common;

use std::time::Duration;

use actix_wsc::hub::{RetryAllFailed, RetryFailedMessage, SendTracked, Target};
use actix_wsc::protocol::Envelope;
use actix_wsc::supervision::TrackOptions;
use common::*;
use serde_json::{json, Value};

/// How long a frame that must come may take (far more than it needs).
const FRAME: Duration = Duration::from_secs(3);

/// `from/id` of a frame.
fn key(v: &Value) -> String {
    format!(
        "{}/{}",
        v["from"].as_str().unwrap_or("?"),
        v["id"].as_str().unwrap_or("?")
    )
}

/// Sends a reliable text message and checks the receipt says `accepted`.
async fn send_reliable(c: &mut Client, id: &str, to: &str, content: &str) {
    c.send_json(&json!({"id":id,"type":"text","to":to,"content":content,"require_ack":true}))
        .await;
    let receipt = c
        .next_matching(FRAME, |v| v["type"] == "ack" && v["id"] == id)
        .await
        .expect("a receipt");
    assert_eq!(receipt["status"], "accepted", "{receipt}");
}

/// The next `n` application frames, as sorted `from/id` keys.
async fn next_keys(c: &mut Client, n: usize, what: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 1..=n {
        let m = c
            .expect_app(FRAME, &format!("{what}: frame {i} of {n}"))
            .await;
        keys.push(key(&m));
    }
    keys.sort();
    keys
}

// ---- hole 5: the same id from two senders ----

#[actix_web::test]
async fn same_id_from_two_senders_to_an_offline_user_both_arrive() {
    let server = start(fast_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut dave, _) = connect(&server, "user_id=dave").await;
    send_reliable(&mut alice, "1", "bob", "from alice").await;
    send_reliable(&mut dave, "1", "bob", "from dave").await;

    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let mut got = Vec::new();
    for i in 1..=2 {
        let m = bob
            .expect_app(
                FRAME,
                &format!("bob gets stored message {i} of 2 (both have id 1)"),
            )
            .await;
        assert_eq!(m["source"], "offline", "{m}");
        assert_eq!(m["id"], "1", "{m}");
        got.push((key(&m), m["content"].as_str().unwrap_or("?").to_owned()));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("alice/1".to_owned(), "from alice".to_owned()),
            ("dave/1".to_owned(), "from dave".to_owned())
        ]
    );
    bob.ack_from("1", "alice").await;
    bob.ack_from("1", "dave").await;
    wait_until(FRAME, "both acked copies leave the store", || async {
        match offline_count(&server, "bob").await {
            0 => Ok(()),
            n => Err(format!("{n} still stored")),
        }
    })
    .await;
}

fn two_sender_config() -> actix_wsc::config::Config {
    let mut c = fast_config();
    c.ack.ack_timeout_ms = 400;
    c.retry.max_retries = 2;
    c.retry.base_delay_ms = 50;
    c.retry.max_delay_ms = 100;
    c
}

#[actix_web::test]
async fn an_ack_naming_the_sender_confirms_only_that_senders_message() {
    let server = start(two_sender_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut dave, _) = connect(&server, "user_id=dave").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    send_reliable(&mut alice, "7", "bob", "from alice").await;
    send_reliable(&mut dave, "7", "bob", "from dave").await;
    assert_eq!(
        next_keys(&mut bob, 2, "bob gets both messages with id 7").await,
        ["alice/7", "dave/7"]
    );

    bob.ack_from("7", "alice").await;
    // Dave's is still unconfirmed: resent after the ack timeout; alice's is never resent.
    let resend = bob
        .expect_app(FRAME, "dave's 7 is resent after the ack timeout")
        .await;
    assert_eq!(
        key(&resend),
        "dave/7",
        "only the unconfirmed one comes again: {resend}"
    );
    bob.ack_from("7", "dave").await;
    // NEW API: GetRecord { key: ("alice", "7") } is acked, ("dave", "7") acked after one resend.
    bob.assert_no_app_within(
        Duration::from_millis(700),
        "nothing is resent after both acks",
    )
    .await;
}

#[actix_web::test]
async fn an_ack_without_from_is_ambiguous_when_two_senders_used_the_id() {
    let server = start(two_sender_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut dave, _) = connect(&server, "user_id=dave").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    send_reliable(&mut alice, "7", "bob", "from alice").await;
    send_reliable(&mut dave, "7", "bob", "from dave").await;
    assert_eq!(
        next_keys(&mut bob, 2, "bob gets both messages with id 7").await,
        ["alice/7", "dave/7"]
    );

    bob.send_json(&json!({"type":"ack","id":"7"})).await;
    let err = match bob.next_matching(FRAME, |v| v["type"] == "error").await {
        Ok(v) => v,
        Err(e) => panic!("an ack without `from` for two awaited messages gets an error: {e}"),
    };
    assert_eq!(err["id"], "7", "{err}");
    assert_eq!(err["error"]["code"], "invalid_frame", "{err}");
    let message = err["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("ambiguous"), "{err}");

    // Nothing was confirmed: both are resent as usual.
    assert_eq!(
        next_keys(&mut bob, 2, "both are resent after the ambiguous ack").await,
        ["alice/7", "dave/7"]
    );
    bob.ack_from("7", "alice").await;
    bob.ack_from("7", "dave").await;
}

// ---- hole 8: a group message with require_ack is acknowledged per member ----

/// One recipient's state in a record JSON.
fn recipient_state(record: &Value, user: &str) -> String {
    // NEW API: the record has one entry per recipient user with its state.
    let state_of = |v: &Value| {
        v.as_str()
            .or_else(|| v["state"].as_str())
            .or_else(|| v["status"].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    match &record["recipients"] {
        Value::Object(m) => {
            if let Some(v) = m.get(user) {
                return state_of(v);
            }
        }
        Value::Array(a) => {
            if let Some(v) = a
                .iter()
                .find(|e| e["user"] == user || e["user_id"] == user || e["id"] == user)
            {
                return state_of(v);
            }
        }
        _ => {}
    }
    // The current record: `pending_acks` lists the users still awaited; a user of a
    // delivered or acked record who is no longer listed has acknowledged.
    let listed = |field: &str| {
        record[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u == user))
    };
    if listed("pending_acks") {
        "awaiting_ack".to_owned()
    } else if listed("retry_users") {
        "retrying".to_owned()
    } else if record["status"] == "acked" || record["status"] == "delivered" {
        "acked".to_owned()
    } else {
        format!("unknown (record status {})", record["status"])
    }
}

async fn join(c: &mut Client, id: &str, group: &str) {
    c.send_json(&json!({"id":id,"type":"join","group":group}))
        .await;
    let receipt = c
        .next_matching(FRAME, |v| v["type"] == "ack" && v["id"] == id)
        .await
        .expect("a join receipt");
    assert_eq!(receipt["status"], "accepted", "{receipt}");
}

#[actix_web::test]
async fn a_group_ack_counts_per_member_and_a_dropped_member_gets_it_on_reconnect() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 2_000;
    config.retry.base_delay_ms = 50;
    config.retry.max_delay_ms = 200;
    let server = start(config).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let (mut carol, _) = connect(&server, "user_id=carol").await;
    join(&mut bob, "j-bob", "g").await;
    join(&mut carol, "j-carol", "g").await;

    alice
        .send_json(
            &json!({"id":"g1","type":"text","group":"g","content":"to the room",
                           "require_ack":true}),
        )
        .await;
    let receipt = alice
        .next_matching(FRAME, |v| v["type"] == "ack" && v["id"] == "g1")
        .await
        .expect("a receipt");
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    for (name, c) in [("bob", &mut bob), ("carol", &mut carol)] {
        let m = c.expect_app(FRAME, &format!("{name} gets g1")).await;
        assert_eq!(key(&m), "alice/g1", "{m}");
        assert_eq!(m["group"], "g", "{m}");
        assert_eq!(m["require_ack"], true, "{m}");
    }

    bob.ack_from("g1", "alice").await;
    // NEW API: the record is looked up by (from, id) and lists `recipients`.
    wait_until(
        FRAME,
        "the record shows bob acked and carol still awaited",
        || async {
            let record = record_json(&server, "g1").await.ok_or("no record")?;
            let (b, c) = (
                recipient_state(&record, "bob"),
                recipient_state(&record, "carol"),
            );
            if b == "acked" && c == "awaiting_ack" && record["status"] != "acked" {
                Ok(())
            } else {
                Err(format!("bob {b}, carol {c}: {record}"))
            }
        },
    )
    .await;

    carol.drop_connection(); // without acking
    wait_stored_record(&server, "carol", 1, "g1", FRAME).await;
    let record = record_json(&server, "g1").await.expect("record g1");
    assert_eq!(recipient_state(&record, "bob"), "acked", "{record}");
    assert_ne!(record["status"], "acked", "carol has not acked: {record}");

    let (mut carol, _) = connect(&server, "user_id=carol").await;
    let m = carol
        .expect_app(FRAME, "carol gets g1 on reconnecting")
        .await;
    assert_eq!(key(&m), "alice/g1", "{m}");
    assert_eq!(m["source"], "offline", "{m}");
    assert_eq!(m["group"], "g", "{m}");
    carol.ack_from("g1", "alice").await;
    wait_until(
        FRAME,
        "the record becomes acked once carol acks",
        || async {
            match record_status(&server, "g1").await.as_str() {
                "acked" => Ok(()),
                s => Err(format!("status {s}")),
            }
        },
    )
    .await;
    bob.assert_quiet_as("bob (acked g1 long ago)").await;
}

// ---- hole 6: retrying a failed message never broadcasts it ----

/// Acks are asked for, wait 200 ms, and are never retried: an unacked delivery fails at once.
fn fail_fast() -> Option<TrackOptions> {
    Some(TrackOptions {
        require_ack: true,
        retry_on_failure: false,
        ack_timeout: Duration::from_millis(200),
        max_retries: 0,
        expires_in: None,
    })
}

/// Sends `id` to `target` with [`fail_fast`] options; the recipient `c` gets it and does not
/// ack; waits for the record to fail with `ack_timeout`.
async fn failed_tracked(server: &TestServer, target: Target, id: &str, c: &mut Client) {
    let mut send = SendTracked::new(
        target,
        Envelope::system_text("for one recipient only")
            .with_id(id)
            .with_require_ack(true),
    );
    send.options = fail_fast();
    let report = server.hub.send(send).await.expect("hub");
    assert_eq!(report.route.delivered, 1, "{id}: one session");
    let m = c
        .expect_app(FRAME, &format!("the recipient gets {id}"))
        .await;
    assert_eq!(m["id"], id, "{m}");
    wait_until(FRAME, &format!("{id} fails with ack_timeout"), || async {
        match record_status(server, id).await.as_str() {
            "ack_timeout" => Ok(()),
            s => Err(format!("status {s}")),
        }
    })
    .await;
}

#[actix_web::test]
async fn retry_failed_message_to_one_user_is_not_broadcast() {
    let server = start(fast_config()).await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let (mut carol, _) = connect(&server, "user_id=carol").await;
    failed_tracked(&server, Target::User("bob".into()), "u1", &mut bob).await;
    carol.assert_quiet_as("carol").await;

    let retried = server
        .hub
        .send(RetryFailedMessage {
            key: actix_wsc::supervision::MessageKey::new("system", "u1"),
        })
        .await
        .expect("hub");
    assert!(retried, "u1 is a failed record");
    let m = bob.expect_app(FRAME, "bob gets u1 again").await;
    assert_eq!(m["id"], "u1", "{m}");
    carol.assert_quiet_as("carol (another user)").await;
}

#[actix_web::test]
async fn retry_failed_message_to_one_client_is_not_broadcast() {
    let server = start(fast_config()).await;
    let (mut phone, _) = connect(&server, "user_id=bob&client_id=bob-phone").await;
    let (mut laptop, _) = connect(&server, "user_id=bob&client_id=bob-laptop").await;
    let (mut carol, _) = connect(&server, "user_id=carol").await;
    failed_tracked(
        &server,
        Target::Client("bob-phone".into()),
        "c1",
        &mut phone,
    )
    .await;
    laptop.assert_quiet_as("bob-laptop").await;
    carol.assert_quiet_as("carol").await;

    let retried = server
        .hub
        .send(RetryFailedMessage {
            key: actix_wsc::supervision::MessageKey::new("system", "c1"),
        })
        .await
        .expect("hub");
    assert!(retried, "c1 is a failed record");
    let m = phone.expect_app(FRAME, "bob-phone gets c1 again").await;
    assert_eq!(m["id"], "c1", "{m}");
    carol.assert_quiet_as("carol (another user)").await;
    laptop
        .assert_quiet_as("bob-laptop (another session of bob)")
        .await;
}

#[actix_web::test]
async fn retry_all_failed_sends_each_message_only_to_its_recipient() {
    let server = start(fast_config()).await;
    let (mut phone, _) = connect(&server, "user_id=bob&client_id=bob-phone").await;
    let (mut carol, _) = connect(&server, "user_id=carol").await;
    let (mut dave, _) = connect(&server, "user_id=dave").await;
    failed_tracked(&server, Target::User("carol".into()), "a1", &mut carol).await;
    failed_tracked(
        &server,
        Target::Client("bob-phone".into()),
        "a2",
        &mut phone,
    )
    .await;
    dave.assert_quiet_as("dave").await;

    let n = server.hub.send(RetryAllFailed).await.expect("hub");
    assert_eq!(n, 2, "both failed records are retried");
    assert_eq!(
        phone.expect_app(FRAME, "bob-phone gets a2 again").await["id"],
        "a2"
    );
    assert_eq!(
        carol.expect_app(FRAME, "carol gets a1 again").await["id"],
        "a1"
    );
    phone.assert_quiet_as("bob-phone (a1 is carol's)").await;
    carol.assert_quiet_as("carol (a2 is bob-phone's)").await;
    dave.assert_quiet_as("dave (neither is his)").await;
}
