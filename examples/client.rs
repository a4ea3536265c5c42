//! Run with: cargo run --example client
//!
//! The reconnecting client. Starts a server on a free loopback port (so the example needs
//! nothing else), then two clients: bob, whose own actor handles his events, and alice, who
//! sends him a message with a receipt. Point `ClientConfig::new` at your own server instead
//! (`ws://HOST:PORT/ws`) to use the client on its own.

use actix::prelude::*;
use actix_web::{App, HttpServer};
use actix_wsc::client::{
    ClientConfig, ClientEvents, Close, Connected, Disconnected, MessageReceived, OutgoingMessage,
    SendWithReceipt, WscClient,
};
use actix_wsc::prelude::{Config, Hub};
use tokio::sync::oneshot;

/// Bob's application: an actor that handles the client events it cares about.
struct Inbox {
    connected: Option<oneshot::Sender<()>>,
    got_one: Option<oneshot::Sender<()>>,
}

impl Actor for Inbox {
    type Context = Context<Self>;
}

impl Handler<Connected> for Inbox {
    type Result = ();
    fn handle(&mut self, ev: Connected, _: &mut Context<Self>) {
        println!(
            "bob connected as {} (reconnected: {})",
            ev.client_id, ev.reconnected
        );
        if let Some(tx) = self.connected.take() {
            let _ = tx.send(());
        }
    }
}

impl Handler<Disconnected> for Inbox {
    type Result = ();
    fn handle(&mut self, ev: Disconnected, _: &mut Context<Self>) {
        println!(
            "bob disconnected ({:?}); reconnecting: {}",
            ev.code, ev.will_reconnect
        );
    }
}

impl Handler<MessageReceived> for Inbox {
    /// `true`: taken. The client acknowledges `require_ack` messages after this answer.
    type Result = bool;
    fn handle(&mut self, ev: MessageReceived, _: &mut Context<Self>) -> bool {
        let m = ev.message;
        println!(
            "bob got {:?} from {} (ack requested: {})",
            m.content, m.from, m.require_ack
        );
        if let Some(tx) = self.got_one.take() {
            let _ = tx.send(());
        }
        true
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    // A server on 127.0.0.1, any free port.
    let hub = Hub::new(Config::default()).start();
    let server =
        HttpServer::new(move || App::new().configure(actix_wsc::server::routes(hub.clone())))
            .workers(1)
            .bind(("127.0.0.1", 0))?;
    let url = format!("ws://{}/ws", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    // Bob: events go to his own actor.
    let (connected, bob_is_up) = oneshot::channel();
    let (got_one, received) = oneshot::channel();
    let inbox = Inbox {
        connected: Some(connected),
        got_one: Some(got_one),
    }
    .start();
    let events = ClientEvents::new()
        .on_connected(inbox.clone().recipient())
        .on_disconnected(inbox.clone().recipient())
        .on_message(inbox.recipient());
    let bob = WscClient::new(ClientConfig::new(&url, "bob"))?
        .with_events(events)
        .start();
    bob_is_up.await?;

    // Alice: no event handlers; she only sends. A frame sent before her connection is up
    // is queued and written once it is.
    let alice = WscClient::new(ClientConfig::new(&url, "alice"))?.start();
    let message = OutgoingMessage::text_to("bob", "hello from alice");
    let receipt = alice.send(SendWithReceipt::new(message)).await??;
    println!("alice's receipt: {:?}", receipt.status);
    received.await?;

    alice.send(Close).await?;
    bob.send(Close).await?;
    handle.stop(true).await;
    Ok(())
}
