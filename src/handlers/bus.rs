//! The event bus: who subscribed to which event, and publishing to them.

use actix::prelude::*;

use super::{
    ActorRestarted, ConnectionError, DeliveryTimedOut, MessageReceived, QueueFull, SendFailed,
    SessionConnected, SessionDisconnected, UserOffline,
};

/// Event subscribers (see [`crate::handlers`]).
#[derive(Default)]
pub(crate) struct Subscribers {
    pub(crate) connected: Vec<Recipient<SessionConnected>>,
    pub(crate) disconnected: Vec<Recipient<SessionDisconnected>>,
    pub(crate) message_received: Vec<Recipient<MessageReceived>>,
    pub(crate) send_failed: Vec<Recipient<SendFailed>>,
    pub(crate) queue_full: Vec<Recipient<QueueFull>>,
    pub(crate) user_offline: Vec<Recipient<UserOffline>>,
    pub(crate) connection_error: Vec<Recipient<ConnectionError>>,
    pub(crate) timed_out: Vec<Recipient<DeliveryTimedOut>>,
    pub(crate) restarted: Vec<Recipient<ActorRestarted>>,
}

/// Sends an event to every live subscriber and forgets the ones that stopped.
pub(crate) fn publish<E>(subs: &mut Vec<Recipient<E>>, event: &E)
where
    E: Message + Send + Clone + 'static,
    E::Result: Send,
{
    subs.retain(|s| s.connected());
    for s in subs.iter() {
        s.do_send(event.clone());
    }
}
