//! The embedding API does what its names say, over a real socket: `Hub::new` honours
//! `config.store` (SQLite keeps messages across a restart), a `WelcomeProvider` shapes the
//! welcome, and a backed-up session writes `critical` before `low`, FIFO within a priority.

mod common;

use std::sync::Arc;

use actix::Actor;
use actix_wsc::config::StoreBackend;
use actix_wsc::hub::GetMetrics;
use actix_wsc::prelude::*;
use common::*;
use serde_json::{Map, Value};

#[actix_web::test]
async fn hub_new_with_a_sqlite_config_keeps_messages_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("wsc-embed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = fast_config();
    config.server.data_dir = dir.clone();
    config.store.backend = Some(StoreBackend::Sqlite);
    {
        let server = start_existing(Hub::new(config.clone()).start()).await;
        let sent = server
            .hub
            .send(SendTracked::new(
                Target::User("erin".into()),
                Envelope::system_text("while you were away").with_id("away-1"),
            ))
            .await
            .expect("hub");
        assert_eq!(sent.stored_offline.len(), 1, "stored durably for erin");
        server.handle.stop(false).await;
    }
    assert!(
        dir.join("wsc.db").exists(),
        "Hub::new opened SQLite in data_dir"
    );
    let server = start_existing(Hub::new(config).start()).await;
    let (mut erin, _) = connect(&server, "user_id=erin").await;
    let m = erin.next_json().await;
    assert_eq!(m["id"], "away-1");
    assert_eq!(m["content"], "while you were away");
    assert_eq!(m["source"], "offline");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[should_panic(expected = "Hub::new: cannot open the configured store")]
fn hub_new_panics_with_the_store_error_when_it_cannot_open_it() {
    let file = std::env::temp_dir().join(format!("wsc-embed-file-{}", std::process::id()));
    std::fs::write(&file, "not a directory").expect("write");
    let mut config = Config::default();
    config.server.data_dir = file.join("sub"); // under a regular file: cannot be created
    config.store.backend = Some(StoreBackend::Sqlite);
    let _hub = Hub::new(config);
}

#[test]
fn hub_try_new_returns_the_store_error() {
    let file = std::env::temp_dir().join(format!("wsc-embed-file2-{}", std::process::id()));
    std::fs::write(&file, "not a directory").expect("write");
    let mut config = Config::default();
    config.server.data_dir = file.join("sub");
    config.store.backend = Some(StoreBackend::Sqlite);
    assert!(Hub::try_new(config).is_err());
    let _ = std::fs::remove_file(&file);
}

/// Greets staff by role and everyone by name.
struct Greeter;

impl WelcomeProvider for Greeter {
    fn welcome(&self, session: &actix_wsc::hub::SessionInfo) -> Welcome {
        let mut data = Map::new();
        data.insert(
            "greeting".into(),
            Value::from(format!("hello {}", session.user_id)),
        );
        // The protocol's own fields win over the application's.
        data.insert("client_id".into(), Value::from("spoofed"));
        Welcome {
            content: format!("welcome, {}", session.user_type),
            data: Some(data),
        }
    }
}

#[actix_web::test]
async fn a_welcome_provider_shapes_the_first_frame() {
    let hub = Hub::new(fast_config())
        .with_welcome(Arc::new(Greeter))
        .start();
    let server = start_existing(hub).await;
    let (_c, w) = connect(&server, "user_id=ada&user_type=agent&client_id=ada-1").await;
    assert_eq!(w["content"], "welcome, agent");
    assert_eq!(w["data"]["greeting"], "hello ada");
    assert_eq!(w["data"]["client_id"], "ada-1", "protocol fields win");
    assert_eq!(w["data"]["event"], "connected");
}

async fn queued_bytes(server: &TestServer) -> u64 {
    let text = server
        .hub
        .send(GetMetrics)
        .await
        .expect("hub")
        .encode()
        .expect("encode");
    text.lines()
        .find_map(|l| l.strip_prefix("wsc_outbound_queue_bytes "))
        .and_then(|v| v.parse().ok())
        .expect("wsc_outbound_queue_bytes in the exposition")
}

#[actix_web::test]
async fn a_backed_up_session_writes_critical_before_low_fifo_within_a_priority() {
    let mut config = fast_config();
    config.session.queue_bytes = 256 << 20; // room to back up without a 4000 close
    let server = start(config).await;
    let (mut slow, _) = connect(&server, "user_id=slow").await;
    // `slow` reads nothing while low-priority frames pile up past the socket's buffers.
    let blob = "x".repeat(64 << 10);
    let lows = 300;
    for i in 0..lows {
        let e = Envelope::system_text(blob.clone())
            .with_id(format!("low-{i}"))
            .with_priority(Priority::Low);
        let r = server
            .hub
            .send(Dispatch::to_user("slow", e))
            .await
            .expect("hub");
        assert_eq!(r.delivered, 1);
    }
    eventually(|| async { queued_bytes(&server).await > (1 << 20) }).await;
    for i in 0..3 {
        let e = Envelope::system_text(format!("urgent {i}"))
            .with_id(format!("crit-{i}"))
            .with_priority(Priority::Critical);
        server
            .hub
            .send(Dispatch::to_user("slow", e))
            .await
            .expect("hub");
    }
    let mut order = Vec::new();
    while order.len() < lows + 3 {
        let m = slow.next_json().await;
        order.push(m["id"].as_str().unwrap_or("?").to_owned());
    }
    let pos = |id: &str| order.iter().position(|x| x == id).expect(id);
    let last_low = pos(&format!("low-{}", lows - 1));
    for i in 0..3 {
        assert!(
            pos(&format!("crit-{i}")) < last_low,
            "crit-{i} was written before low frames queued ahead of it"
        );
    }
    assert!(
        pos("crit-0") < pos("crit-1") && pos("crit-1") < pos("crit-2"),
        "FIFO: {order:?}"
    );
    let lows_seen: Vec<usize> = order
        .iter()
        .filter_map(|id| id.strip_prefix("low-").and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(
        lows_seen,
        (0..lows).collect::<Vec<_>>(),
        "lows in FIFO order"
    );
}
