//! Run with: cargo run --example chat
//!
//! A group chat server on 127.0.0.1:8090 with the default routes, plus an actor that logs
//! who joins and leaves and every message, registered through the hub's subscriptions.
//! Try it with any WebSocket client:
//!
//! ```text
//! ws://127.0.0.1:8090/ws?user_id=alice
//! {"type":"join","id":"j1","group":"lobby"}
//! {"type":"text","group":"lobby","content":"hello everyone"}
//! ```

use actix::prelude::*;
use actix_web::{App, HttpServer};
use actix_wsc::prelude::*;

/// Logs lifecycle events: an application's own actor, registered as `Recipient`s.
struct ChatLog;

impl Actor for ChatLog {
    type Context = Context<Self>;
}

impl Handler<SessionConnected> for ChatLog {
    type Result = ();
    fn handle(&mut self, ev: SessionConnected, _: &mut Context<Self>) {
        log::info!("{} joined ({})", ev.info.user_id, ev.info.client_id);
    }
}

impl Handler<SessionDisconnected> for ChatLog {
    type Result = ();
    fn handle(&mut self, ev: SessionDisconnected, _: &mut Context<Self>) {
        log::info!("{} left: {:?}", ev.user_id, ev.reason);
    }
}

impl Handler<MessageReceived> for ChatLog {
    type Result = ();
    fn handle(&mut self, ev: MessageReceived, _: &mut Context<Self>) {
        let e = &ev.envelope;
        log::info!(
            "{} -> {:?}: {}",
            e.from,
            e.group.as_ref().or(None),
            e.content
        );
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let hub = Hub::new(Config::default()).start();
    let chat_log = ChatLog.start();
    hub.do_send(Subscribe(chat_log.clone().recipient::<SessionConnected>()));
    hub.do_send(Subscribe(
        chat_log.clone().recipient::<SessionDisconnected>(),
    ));
    hub.do_send(Subscribe(chat_log.recipient::<MessageReceived>()));
    log::info!("chat on ws://127.0.0.1:8090/ws?user_id=NAME");
    HttpServer::new(move || App::new().configure(actix_wsc::server::routes(hub.clone())))
        .bind("127.0.0.1:8090")?
        .run()
        .await
}
