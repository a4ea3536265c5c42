//! Run with: cargo run --example welcome
//!
//! A `WelcomeProvider`: every session's first frame greets its user and tells agents which
//! queue they serve. Connect with `websocat 'ws://127.0.0.1:8092/ws?user_id=ada&user_type=agent'`.

use std::sync::Arc;

use actix::Actor;
use actix_web::{App, HttpServer};
use actix_wsc::hub::SessionInfo;
use actix_wsc::prelude::*;
use serde_json::{Map, Value};

/// Greets by name; agents also learn their queue.
struct Greeter;

impl WelcomeProvider for Greeter {
    fn welcome(&self, session: &SessionInfo) -> Welcome {
        let mut data = Map::new();
        data.insert(
            "greeting".into(),
            Value::from(format!("hello {}", session.user_id)),
        );
        if session.user_type == UserType::Agent {
            data.insert("queue".into(), Value::from("support"));
        }
        Welcome {
            content: "welcome".into(),
            data: Some(data),
        }
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let hub = Hub::new(Config::default())
        .with_welcome(Arc::new(Greeter))
        .start();
    let wsc = WscServer::new(hub);
    log::info!("ws://127.0.0.1:8092/ws?user_id=ada&user_type=agent");
    HttpServer::new(move || App::new().configure(wsc.configure()))
        .bind("127.0.0.1:8092")?
        .run()
        .await
}
