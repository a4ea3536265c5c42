//! Every bad input gets the error frame or close code of PROTOCOL.md; the session (where the
//! protocol keeps it open) and everyone else keep working.

mod common;

use std::collections::HashSet;

use actix_ws::Item;
use awc::ws::Message;
use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

async fn expect_error(c: &mut Client, code: &str) -> Value {
    let v = c.next_json().await;
    assert_eq!(v["type"], "error", "expected an error frame, got {v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    v
}

#[actix_web::test]
async fn malformed_frames_get_error_frames_and_the_session_stays() {
    let server = start(fast_config()).await;
    let (mut c, _) = connect(&server, "user_id=u").await;
    let (mut other, _) = connect(&server, "user_id=other").await;
    let cases: &[(&str, &str)] = &[
        ("{this is not json", "invalid_json"),
        ("[1,2,3]", "invalid_frame"),
        ("\"just a string\"", "invalid_frame"),
        (r#"{"type":"teleport","to":"other"}"#, "unknown_type"),
        (
            r#"{"id":"both","type":"text","to":"other","group":"g"}"#,
            "invalid_frame",
        ),
        (
            r#"{"id":"neither","type":"text","content":"x"}"#,
            "invalid_frame",
        ),
        (r#"{"id":"j","type":"join","group":""}"#, "invalid_frame"),
        (r#"{"type":"text","to":42}"#, "invalid_frame"),
        (r#"{"type":"error","to":"other"}"#, "invalid_frame"),
    ];
    for (frame, code) in cases {
        c.send_text(frame).await;
        let e = expect_error(&mut c, code).await;
        if frame.contains("\"id\":\"both\"") {
            assert_eq!(e["id"], "both", "the offending id is echoed");
        }
    }
    c.send_raw(Message::Binary(Bytes::from_static(&[
        0xde, 0xad, 0xbe, 0xef, 0, 1,
    ])))
    .await;
    expect_error(&mut c, "invalid_frame").await;
    c.assert_alive().await;
    // Nothing reached the other user, and the session still routes.
    c.send_json(&json!({"type":"text","to":"other","content":"still here"}))
        .await;
    let m = other.next_json().await;
    assert_eq!(m["content"], "still here");
    assert_eq!(m["seq_no"], 1, "no bad frame was delivered before");
}

#[actix_web::test]
async fn oversized_frame_gets_too_large_then_1009() {
    let mut config = fast_config();
    config.session.max_frame_bytes = 1024;
    let server = start(config).await;
    let (mut big, _) = connect(&server, "user_id=big").await;
    let (mut bystander, _) = connect(&server, "user_id=by").await;
    let content = "x".repeat(2000);
    big.send_json(&json!({"type":"text","to":"by","content":content}))
        .await;
    expect_error(&mut big, "too_large").await;
    assert_eq!(big.expect_close().await, Some(1009));
    bystander.assert_alive().await;
    let (mut again, _) = connect(&server, "user_id=big").await;
    again
        .send_json(&json!({"type":"text","to":"by","content":"small"}))
        .await;
    assert_eq!(bystander.next_json().await["content"], "small");
}

#[actix_web::test]
async fn fragmented_messages_are_reassembled_and_bounded() {
    let mut config = fast_config();
    config.session.max_frame_bytes = 4096;
    let server = start(config).await;
    let (mut a, _) = connect(&server, "user_id=a").await;
    let (mut b, _) = connect(&server, "user_id=b").await;
    let text = json!({"type":"text","to":"b","content":"fragmented hello"}).to_string();
    let (p1, rest) = text.split_at(10);
    let (p2, p3) = rest.split_at(10);
    a.send_raw(Message::Continuation(Item::FirstText(Bytes::from(
        p1.to_owned(),
    ))))
    .await;
    a.send_raw(Message::Continuation(Item::Continue(Bytes::from(
        p2.to_owned(),
    ))))
    .await;
    a.send_raw(Message::Continuation(Item::Last(Bytes::from(
        p3.to_owned(),
    ))))
    .await;
    assert_eq!(b.next_json().await["content"], "fragmented hello");

    let chunk = Bytes::from(vec![b'x'; 3000]);
    a.send_raw(Message::Continuation(Item::FirstText(chunk.clone())))
        .await;
    a.send_raw(Message::Continuation(Item::Last(chunk))).await;
    expect_error(&mut a, "too_large").await;
    assert_eq!(a.expect_close().await, Some(1009));
    b.assert_alive().await;
}

#[actix_web::test]
async fn flood_is_rate_limited_without_silent_loss() {
    let mut config = fast_config();
    config.session.rate_limit_per_sec = 20;
    config.session.rate_limit_burst = 20;
    let server = start(config).await;
    let (mut flooder, _) = connect(&server, "user_id=flood").await;
    let (mut target, _) = connect(&server, "user_id=target").await;
    let (mut x, _) = connect(&server, "user_id=x").await;
    let (mut y, _) = connect(&server, "user_id=y").await;
    const N: usize = 200;
    for i in 0..N {
        flooder
            .send_json(
                &json!({"id":format!("f{i}"),"type":"text","to":"target","content":i.to_string()}),
            )
            .await;
    }
    // Every frame gets exactly one outcome: a rate_limited error to the sender, or delivery.
    let mut limited = HashSet::new();
    let mut delivered = Vec::new();
    while limited.len() + delivered.len() < N {
        tokio::select! {
            v = flooder.next_json() => {
                assert_eq!(v["error"]["code"], "rate_limited", "{v}");
                limited.insert(v["id"].as_str().expect("id echoed").to_owned());
            }
            m = target.next_json() => {
                delivered.push(m["content"].as_str().expect("content").parse::<usize>().expect("n"));
            }
        }
    }
    assert!(
        limited.len() >= N / 2,
        "most of a {N}-frame burst is limited"
    );
    assert!(delivered.len() >= 20, "the burst allowance passes");
    assert!(
        delivered.windows(2).all(|w| w[0] < w[1]),
        "order kept: {delivered:?}"
    );
    for n in &delivered {
        assert!(
            !limited.contains(&format!("f{n}")),
            "f{n} was both limited and delivered"
        );
    }
    // Still served, nothing else queued: a ping gets a pong, or a rate_limited error while
    // the bucket refills.
    flooder.send_text(r#"{"type":"ping"}"#).await;
    let v = flooder.next_json().await;
    assert!(
        v["type"] == "pong" || v["error"]["code"] == "rate_limited",
        "{v}"
    );
    target.assert_quiet().await;
    // Other sessions are unaffected.
    x.send_json(&json!({"type":"text","to":"y","content":"unaffected"}))
        .await;
    assert_eq!(y.next_json().await["content"], "unaffected");
}
