//! The hub's queries (online users, sessions, metadata, statistics) and event subscriptions.

use actix::prelude::*;

use super::{
    GetOnlineUsers, GetSession, GetStats, Hub, HubStats, IsOnline, OnlineUser, OnlineUsers,
    SessionInfo, SetMetadata, Subscribe,
};
use crate::handlers::{
    ActorRestarted, ConnectionError, DeliveryTimedOut, MessageReceived, QueueFull, SendFailed,
    SessionConnected, SessionDisconnected, UserOffline,
};
use crate::supervision::{Reliability, Supervisors};

impl Handler<GetOnlineUsers> for Hub {
    type Result = MessageResult<GetOnlineUsers>;

    fn handle(&mut self, _: GetOnlineUsers, _: &mut Context<Self>) -> Self::Result {
        let mut all = self.router.read().online_users();
        if let Some(r) = self.router.remote() {
            all.extend(r.online_users());
        }
        // One entry per user, sessions summed over the nodes.
        let mut merged: std::collections::BTreeMap<crate::protocol::UserId, usize> =
            Default::default();
        for (u, n) in all {
            *merged.entry(u).or_default() += n;
        }
        let users: Vec<OnlineUser> = merged
            .into_iter()
            .map(|(user_id, sessions)| OnlineUser { user_id, sessions })
            .collect();
        MessageResult(OnlineUsers {
            count: users.len(),
            users,
        })
    }
}

impl Handler<IsOnline> for Hub {
    type Result = bool;

    fn handle(&mut self, msg: IsOnline, _: &mut Context<Self>) -> bool {
        self.router.is_online_anywhere(&msg.user_id)
    }
}

impl Handler<GetSession> for Hub {
    type Result = Option<SessionInfo>;

    fn handle(&mut self, msg: GetSession, _: &mut Context<Self>) -> Self::Result {
        self.router
            .read()
            .get(&msg.client_id)
            .map(|e| e.info.clone())
    }
}

impl Handler<SetMetadata> for Hub {
    type Result = bool;

    fn handle(&mut self, msg: SetMetadata, _: &mut Context<Self>) -> bool {
        match self.router.write().get_mut(&msg.client_id) {
            Some(e) => {
                e.info.metadata.insert(msg.key, msg.value);
                true
            }
            None => false,
        }
    }
}

/// Asks for the reliability layer (records, supervision actors).
#[derive(Message)]
#[rtype(result = "Reliability")]
pub struct GetReliability;

impl Handler<GetReliability> for Hub {
    type Result = MessageResult<GetReliability>;

    fn handle(&mut self, _: GetReliability, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.rel.clone())
    }
}

/// Asks for the supervision actors' addresses (`None` before the hub started).
#[derive(Message)]
#[rtype(result = "Option<Supervisors>")]
pub struct GetSupervisors;

impl Handler<GetSupervisors> for Hub {
    type Result = Option<Supervisors>;

    fn handle(&mut self, _: GetSupervisors, _: &mut Context<Self>) -> Self::Result {
        self.supervisors.clone()
    }
}

impl Handler<GetStats> for Hub {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        let table = self.router.read();
        let mut delivery = self.rel.records().delivery_stats();
        delivery.delayed = self.delayed.len();
        let mut stats = HubStats::snapshot(
            &self.config.hub.node_id,
            self.router.counters(),
            table.session_count(),
            table.user_count(),
        );
        stats.groups = table.group_count() as u64;
        stats.delivery = delivery;
        if let Some(r) = self.router.remote() {
            // Sessions and users of the whole cluster.
            let mut users: std::collections::HashSet<crate::protocol::UserId> =
                table.online_users().into_iter().map(|(u, _)| u).collect();
            users.extend(r.online_users().into_iter().map(|(u, _)| u));
            let sessions = (table.session_count() + r.session_count()) as u64;
            stats.websocket_count = sessions;
            stats.active_connections = sessions;
            stats.online_users = users.len() as u64;
            stats.cluster = Some(r.status());
        }
        MessageResult(stats)
    }
}

macro_rules! subscribe_handler {
    ($event:ty, $field:ident) => {
        impl Handler<Subscribe<$event>> for Hub {
            type Result = ();

            fn handle(&mut self, msg: Subscribe<$event>, _: &mut Context<Self>) {
                self.router.subscribers().$field.push(msg.0);
            }
        }
    };
}

subscribe_handler!(SessionConnected, connected);
subscribe_handler!(SessionDisconnected, disconnected);
subscribe_handler!(MessageReceived, message_received);
subscribe_handler!(SendFailed, send_failed);
subscribe_handler!(QueueFull, queue_full);
subscribe_handler!(UserOffline, user_offline);
subscribe_handler!(ConnectionError, connection_error);
subscribe_handler!(DeliveryTimedOut, timed_out);
subscribe_handler!(ActorRestarted, restarted);
