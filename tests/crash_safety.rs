//! A message the server answered `stored_offline` for survives `kill -9`: after a restart on
//! the same data directory it reaches its recipient, in order, once.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

const N: usize = 100;

async fn post_json(url: &str, body: String) -> (u16, Value) {
    let mut resp = awc::Client::new()
        .post(url)
        .content_type("application/json")
        .send_body(body)
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("body");
    (status, serde_json::from_slice(&body).expect("json"))
}

#[actix_web::test]
async fn stored_messages_survive_sigkill_and_arrive_in_order_once() {
    let dir = std::env::temp_dir().join(format!("wsc-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.to_string_lossy().into_owned();
    let args = ["--bind", "127.0.0.1:0", "--data-dir", data_dir.as_str()];

    let mut first = spawn_server(&args, &[]);
    let url = format!("http://{}/api/send", first.addr);
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        let body = format!(
            r#"{{"to":"offline-user","content":"{i}","require_ack":{}}}"#,
            i % 2 == 0
        );
        let (status, answer) = post_json(&url, body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "stored_offline");
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    // SIGKILL: no shutdown hook runs, nothing is flushed on the way out.
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");

    let second = spawn_server(&args, &[]);
    let mut client = try_connect(&format!("ws://{}/ws?user_id=offline-user", second.addr))
        .await
        .expect("connect after restart");
    assert_eq!(client.next_json().await["data"]["event"], "connected");
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        let m = client.next_json().await;
        assert_eq!(m["content"], i.to_string(), "in order");
        assert_eq!(&m["id"], id.as_str());
        assert_eq!(m["source"], "offline");
        assert!(seen.insert(id.clone()), "no duplicates");
        if m["require_ack"] == true {
            client
                .send_json(&serde_json::json!({"type":"ack","id":id}))
                .await;
        }
    }
    client.assert_quiet().await;
    terminate(&second);
    assert!(wait_exit(second).success());
    let _ = std::fs::remove_dir_all(&dir);
}
