//! The SSE transport over a real socket: `GET /sse` streams a session's frames, `POST
//! /sse/{token}` carries the client's, and the session is a hub session like a WebSocket one.

mod common;

use std::time::Duration;

use actix_web::web::Bytes;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// One server-sent event.
#[derive(Debug, Clone)]
struct Event {
    event: String,
    id: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data {:?}: {e}", self.data))
    }
}

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;

/// An SSE reader over awc.
struct Sse {
    body: Body,
    buf: String,
    post: String,
    base: String,
}

impl Sse {
    async fn open(server: &TestServer, query: &str, last_event_id: Option<&str>) -> Sse {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let mut req = client.get(server.http_url(&format!("/sse?{query}")));
        if let Some(id) = last_event_id {
            req = req.insert_header(("last-event-id", id));
        }
        let resp = req.send().await.expect("GET /sse");
        assert_eq!(resp.status().as_u16(), 200, "GET /sse?{query}");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut sse = Sse {
            body: Box::pin(resp),
            buf: String::new(),
            post: String::new(),
            base: server.http_url(""),
        };
        let hello = sse.next().await;
        assert_eq!(hello.event, "session", "{hello:?}");
        sse.post = hello.json()["post"].as_str().expect("post url").to_owned();
        sse
    }

    /// The next event within WAIT (comments skipped).
    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.read_event())
            .await
            .expect("an SSE event within the wait")
            .expect("the stream ended")
    }

    async fn read_event(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = Event {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut lines = 0;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("data: ") {
                        if lines > 0 {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(v);
                        lines += 1;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = Some(v.to_owned());
                    }
                }
                if lines == 0 && ev.event == "message" {
                    continue; // a comment or `retry:` only
                }
                return Some(ev);
            }
            let chunk = self.body.next().await?.expect("SSE body chunk");
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next JSON frame matching `pred` (others skipped).
    async fn frame(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let ev = self.next().await;
            assert_eq!(ev.event, "message", "unexpected event {ev:?}");
            let v = ev.json();
            if pred(&v) {
                return v;
            }
        }
    }

    async fn send(&self, frame: &Value) -> (u16, Value) {
        post_json(&format!("{}{}", self.base, self.post), frame).await
    }
}

fn content(c: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["content"] == c
}

#[actix_web::test]
async fn sse_session_is_online_and_receives_p2p_group_and_broadcast() {
    let server = start(fast_config()).await;
    let mut s = Sse::open(&server, "user_id=sam", None).await;
    let welcome = s.frame(|v| v["type"] == "system").await;
    assert_eq!(welcome["data"]["protocol"], "wsc.v1");
    assert_eq!(welcome["data"]["user_id"], "sam");
    let (mut w, _) = connect(&server, "user_id=wes").await;
    let (_, online) = get_json(&server.http_url("/api/online")).await;
    assert_eq!(online["count"], 2, "{online}");

    assert_eq!(
        s.send(&json!({"type":"join","group":"room","id":"j1"}))
            .await
            .0,
        202
    );
    let receipt = s.frame(|v| v["type"] == "ack").await;
    assert_eq!(
        (receipt["id"].clone(), receipt["status"].clone()),
        (json!("j1"), json!("accepted"))
    );
    w.send_json(&json!({"type":"join","group":"room","id":"j2"}))
        .await;
    w.next_matching(WAIT, |v| v["id"] == "j2")
        .await
        .expect("wes joined");

    w.send_json(&json!({"type":"text","to":"sam","content":"p2p"}))
        .await;
    let p2p = s.frame(content("p2p")).await;
    assert_eq!(
        (p2p["from"].clone(), p2p["seq_no"].clone()),
        (json!("wes"), json!(1))
    );
    w.send_json(&json!({"type":"text","group":"room","content":"group"}))
        .await;
    assert_eq!(s.frame(content("group")).await["group"], "room");
    let (status, _) = post_json(
        &server.http_url("/api/send"),
        &json!({"broadcast":true,"content":"all"}),
    )
    .await;
    assert_eq!(status, 200);
    s.frame(content("all")).await;

    // And the other way: an SSE client's frame reaches a WebSocket client.
    assert_eq!(
        s.send(&json!({"type":"text","to":"wes","content":"from sse"}))
            .await
            .0,
        202
    );
    let got = w
        .next_matching(WAIT, |v| v["content"] == "from sse")
        .await
        .expect("frame from sam");
    assert_eq!(
        (got["from"].clone(), got["content"].clone()),
        (json!("sam"), json!("from sse"))
    );
}

#[actix_web::test]
async fn sse_ack_confirms_a_tracked_delivery_and_offline_messages_arrive_on_connect() {
    let server = start(fast_config()).await;
    let (status, sent) = post_json(
        &server.http_url("/api/send"),
        &json!({"to":"olga","content":"while away","require_ack":true}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let mut s = Sse::open(&server, "user_id=olga", None).await;
    let stored = s.frame(content("while away")).await;
    assert_eq!(stored["source"], "offline");
    assert_eq!(stored["require_ack"], true);
    let (status, _) = s
        .send(&json!({"type":"ack","id":stored["id"],"from":stored["from"]}))
        .await;
    assert_eq!(status, 202);
    let id = stored["id"].as_str().expect("id").to_owned();
    let server = &server;
    eventually(|| {
        let id = id.clone();
        async move { record_status(server, &id).await == "acked" }
    })
    .await;
}

#[actix_web::test]
async fn last_event_id_replays_what_the_dropped_stream_carried() {
    let server = start(fast_config()).await;
    let mut s = Sse::open(&server, "user_id=rita", None).await;
    s.frame(|v| v["type"] == "system").await;
    for c in ["one", "two", "three"] {
        post_json(
            &server.http_url("/api/send"),
            &json!({"to":"rita","content":c}),
        )
        .await;
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let ev = s.next().await;
        ids.push((
            ev.id.clone().expect("an id line"),
            ev.json()["content"].clone(),
        ));
    }
    assert_eq!(
        ids.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        [json!("one"), json!("two"), json!("three")]
    );
    // The client saw "one" and lost the rest: it resumes after "one".
    drop(s);
    let mut r = Sse::open(&server, "user_id=rita", Some(&ids[0].0)).await;
    let two = r.next().await;
    let three = r.next().await;
    assert_eq!(
        (two.id.as_deref(), two.json()["content"].clone()),
        (Some(ids[1].0.as_str()), json!("two"))
    );
    assert_eq!(three.json()["content"], "three");
    // Then the new session, numbered on the same stream.
    let welcome = r.next().await;
    assert_eq!(welcome.json()["type"], "system");
    let (key, n) = welcome
        .id
        .as_deref()
        .and_then(|i| i.rsplit_once('-'))
        .expect("KEY-N id");
    assert_eq!(key, ids[0].0.rsplit_once('-').expect("KEY-N").0);
    assert!(n.parse::<u64>().expect("number") > 3);
}

#[actix_web::test]
async fn bad_input_and_close_codes() {
    let server = start(fast_config()).await;
    let (status, body) = get_json(&server.http_url("/sse")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("user_id"),
        "{body}"
    );
    let (status, body) = post_json(&server.http_url("/sse/nope"), &json!({"type":"ping"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("unknown_session"))
    );

    let mut s = Sse::open(&server, "user_id=ted&client_id=ted-1", None).await;
    s.frame(|v| v["type"] == "system").await;
    let (status, _) = post_json(&format!("{}{}", s.base, s.post), &json!("not a frame")).await;
    assert_eq!(status, 202);
    let err = s.frame(|v| v["type"] == "error").await;
    assert_eq!(err["error"]["code"], "invalid_frame", "{err}");
    s.send(&json!({"type":"ping"})).await;
    s.frame(|v| v["type"] == "pong").await;

    // A WebSocket with the same client id replaces the SSE session: close 4002.
    let (_ws, _) = connect(&server, "user_id=ted&client_id=ted-1").await;
    let close = s.next().await;
    assert_eq!(close.event, "close", "{close:?}");
    assert_eq!(close.json()["code"], 4002);
    let (status, _) = s.send(&json!({"type":"ping"})).await;
    assert_eq!(status, 404, "the replaced session's token is gone");

    // DELETE closes normally.
    let mut d = Sse::open(&server, "user_id=uma", None).await;
    d.frame(|v| v["type"] == "system").await;
    let resp = awc::Client::new()
        .delete(format!("{}{}", d.base, d.post))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 200);
    let close = d.next().await;
    assert_eq!(
        (close.event.as_str(), close.json()["code"].clone()),
        ("close", json!(1000))
    );
    eventually(|| async { get_json(&server.http_url("/api/online")).await.1["count"] == 1 }).await;
}
