//! Point-to-point, groups, broadcasts and receipts over real sockets.

mod common;

use std::time::Duration;

use actix_wsc::hub::{Dispatch, DispatchLater, GetOnlineUsers, IsOnline, Target};
use actix_wsc::protocol::{Envelope, MessageType, UserType};
use common::*;
use serde_json::json;

/// The next application frame (skipping receipts and pongs).
async fn next_app(c: &mut Client) -> serde_json::Value {
    loop {
        let v = c.next_json().await;
        if v["type"] != "ack" && v["type"] != "pong" {
            return v;
        }
    }
}

/// Asserts nothing but pings arrives within a short window (used after a positive event
/// proved delivery would have happened by now).
async fn assert_nothing_more(c: &mut Client) {
    c.assert_quiet().await;
}

#[actix_web::test]
async fn p2p_reaches_every_session_of_the_user_with_server_fields() {
    let server = start(fast_config()).await;
    let (mut a1, _) = connect(&server, "user_id=alice&client_id=a1").await;
    let (mut a2, _) = connect(&server, "user_id=alice&client_id=a2").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    for i in 1..=3 {
        bob.send_json(&json!({"type":"text","to":"alice","from":"mallory","content":format!("hi {i}"),"data":{"n":i}}))
            .await;
    }
    for a in [&mut a1, &mut a2] {
        for i in 1..=3 {
            let m = next_app(a).await;
            assert_eq!(m["from"], "bob", "client-set from is ignored");
            assert_eq!(m["to"], "alice");
            assert_eq!(m["content"], format!("hi {i}"));
            assert_eq!(m["data"]["n"], i);
            assert_eq!(m["seq_no"], i, "seq_no counts from 1 per session");
            assert_eq!(m["source"], "live");
            assert!(m["id"].as_str().is_some_and(|s| !s.is_empty()));
            assert!(m["create_at"].is_string());
        }
    }
    assert_nothing_more(&mut bob).await;
}

#[actix_web::test]
async fn receipts_accept_or_fail() {
    let server = start(fast_config()).await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    bob.send_json(&json!({"id":"m1","type":"text","to":"alice","content":"x","require_ack":true}))
        .await;
    let r = bob.next_json().await;
    assert_eq!(r, json!({"type":"ack","id":"m1","status":"accepted"}));
    let m = next_app(&mut alice).await;
    assert_eq!(m["id"], "m1");
    assert_eq!(m["require_ack"], true);

    // An offline recipient: accepted once stored, delivered when the user connects.
    bob.send_json(&json!({"id":"m2","type":"text","to":"nobody","content":"x","require_ack":true}))
        .await;
    let r = bob.next_json().await;
    assert_eq!(r, json!({"type":"ack","id":"m2","status":"accepted"}));
    let (mut nobody, _) = connect(&server, "user_id=nobody").await;
    let m = next_app(&mut nobody).await;
    assert_eq!(m["id"], "m2");
    assert_eq!(m["source"], "offline");
    assert_eq!(m["from"], "bob");

    // A group that does not exist fails the receipt.
    bob.send_json(
        &json!({"id":"m3","type":"text","group":"nope","content":"x","require_ack":true}),
    )
    .await;
    let r = bob.next_json().await;
    assert_eq!(r["status"], "failed");
    assert_eq!(r["id"], "m3");
    assert_eq!(r["error"]["code"], "unknown_group");
}

#[actix_web::test]
async fn group_join_message_leave() {
    let server = start(fast_config()).await;
    let (mut a, _) = connect(&server, "user_id=a").await;
    let (mut b, _) = connect(&server, "user_id=b").await;
    let (mut c, _) = connect(&server, "user_id=c").await;
    for (cl, id) in [(&mut a, "ja"), (&mut b, "jb")] {
        cl.send_json(&json!({"id":id,"type":"join","group":"room-1"}))
            .await;
        assert_eq!(
            cl.next_json().await,
            json!({"type":"ack","id":id,"status":"accepted"})
        );
    }
    a.send_json(&json!({"type":"text","group":"room-1","content":"hello room"}))
        .await;
    let m = next_app(&mut b).await;
    assert_eq!(m["group"], "room-1");
    assert_eq!(m["from"], "a");
    assert_eq!(m["content"], "hello room");
    // ticket_id is an alias for group
    b.send_json(&json!({"type":"text","ticket_id":"room-1","content":"via ticket"}))
        .await;
    assert_eq!(next_app(&mut a).await["content"], "via ticket");
    // The sender is excluded and non-members get nothing.
    assert_nothing_more(&mut a).await;
    assert_nothing_more(&mut c).await;

    b.send_json(&json!({"id":"lb","type":"leave","group":"room-1"}))
        .await;
    assert_eq!(
        b.next_json().await,
        json!({"type":"ack","id":"lb","status":"accepted"})
    );
    a.send_json(&json!({"id":"after","type":"text","group":"room-1","content":"anyone?","require_ack":true}))
        .await;
    let r = a.next_json().await;
    assert_eq!(r["id"], "after");
    assert_eq!(
        r["status"], "accepted",
        "group exists with only the sender in it"
    );
    assert_nothing_more(&mut b).await;

    a.send_json(&json!({"id":"la","type":"leave","group":"room-1"}))
        .await;
    assert_eq!(a.next_json().await["status"], "accepted");
    a.send_json(&json!({"id":"gone","type":"text","group":"room-1","content":"x"}))
        .await;
    let e = a.next_json().await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["id"], "gone");
    assert_eq!(e["error"]["code"], "unknown_group");
}

#[actix_web::test]
async fn hub_broadcasts_by_everyone_type_role_and_users() {
    let server = start(fast_config()).await;
    let (mut cust, _) = connect(&server, "user_id=cust").await;
    let (mut agent, _) = connect(&server, "user_id=agent1&user_type=agent").await;
    let (mut vip, _) = connect(&server, "user_id=v&user_type=vip").await;

    let r = server
        .hub
        .send(Dispatch::broadcast(Envelope::system_text("all")))
        .await
        .expect("hub");
    assert_eq!(r.delivered, 3);
    for c in [&mut cust, &mut agent, &mut vip] {
        assert_eq!(next_app(c).await["content"], "all");
    }

    let r = server
        .hub
        .send(Dispatch::new(
            Target::UserType(UserType::Agent),
            Envelope::new(MessageType::Notice, "system", "agents only"),
        ))
        .await
        .expect("hub");
    assert_eq!(r.delivered, 1);
    let m = next_app(&mut agent).await;
    assert_eq!(m["content"], "agents only");
    assert_eq!(m["type"], "notice");
    assert_nothing_more(&mut cust).await;
    assert_nothing_more(&mut vip).await;

    let r = server
        .hub
        .send(Dispatch::to_users(
            vec!["cust".into(), "v".into(), "ghost".into()],
            Envelope::system_text("some"),
        ))
        .await
        .expect("hub");
    assert_eq!(r.delivered, 2);
    assert_eq!(r.offline_users, vec!["ghost".into()]);
    assert_eq!(next_app(&mut cust).await["content"], "some");
    assert_eq!(next_app(&mut vip).await["content"], "some");

    let pred: actix_wsc::hub::SessionPredicate =
        std::sync::Arc::new(|i| i.user_id.as_str().starts_with('a'));
    let r = server
        .hub
        .send(Dispatch::new(
            Target::Matching(pred),
            Envelope::system_text("pred"),
        ))
        .await
        .expect("hub");
    assert_eq!(r.delivered, 1);
    assert_eq!(next_app(&mut agent).await["content"], "pred");

    let online = server.hub.send(GetOnlineUsers).await.expect("hub");
    assert_eq!(online.count, 3);
    assert!(server
        .hub
        .send(IsOnline {
            user_id: "v".into()
        })
        .await
        .expect("hub"));
}

#[actix_web::test]
async fn delayed_send_and_priority_field() {
    let server = start(fast_config()).await;
    let (mut a, _) = connect(&server, "user_id=a").await;
    let started = std::time::Instant::now();
    let id = server
        .hub
        .send(DispatchLater {
            delay: Duration::from_millis(200),
            target: Target::User("a".into()),
            envelope: Envelope::system_text("later")
                .with_priority(actix_wsc::protocol::Priority::Urgent),
        })
        .await
        .expect("hub")
        .expect("persisted");
    let m = next_app(&mut a).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "not before the delay"
    );
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["priority"], "urgent");
}
