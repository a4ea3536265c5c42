//! The hub's messages. Commands are imperative, notifications past tense.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

use super::ScheduleError;
use crate::config::Config;
use crate::delivery::Reliability;
use crate::error::{ConnectError, GroupError};
use crate::model::{DisconnectReason, RouteReport, SessionInfo, Target};
use crate::protocol::{ClientId, CloseCode, Envelope, GroupId, MessageId, OutboundFrame, UserId};
use crate::routing::{HubStats, Inbox, Router};
use crate::session::Session;

/// Registers a new session (sent by the WebSocket upgrade handler).
#[derive(Message)]
#[rtype(result = "Result<Connected, ConnectError>")]
pub(crate) struct Connect {
    /// The session; `conn` is assigned by the hub.
    pub info: SessionInfo,
    /// The session actor (its context exists; it starts once the hub accepts).
    pub addr: Addr<Session>,
}

/// The hub accepted a session.
#[derive(Clone)]
pub(crate) struct Connected {
    /// The serial number the hub gave the session.
    pub conn: u64,
    /// Shared routing state.
    pub router: Router,
    /// The hub's configuration.
    pub config: Arc<Config>,
    /// The session's outbound queue, holding the welcome frame.
    pub inbox: Arc<Inbox>,
    /// The reliability layer.
    pub reliability: Reliability,
}

/// A session ended (sent by the session as it stops).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Disconnect {
    /// The session.
    pub client_id: ClientId,
    /// Its serial number: a replaced session's late disconnect is ignored.
    pub conn: u64,
    /// Its user.
    pub user_id: UserId,
    /// Why.
    pub reason: DisconnectReason,
    /// Frames queued for it that were never written.
    pub undelivered: Vec<OutboundFrame>,
    /// The session is still writing its close frame; a [`SessionEnded`] follows.
    pub still_flushing: bool,
}

/// A session actor stopped (after its close frame was written, or gave up).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SessionEnded {
    /// The session's serial number.
    pub conn: u64,
}

/// Adds a session to a group. `Ok(false)` when it was a member already.
#[derive(Message)]
#[rtype(result = "Result<bool, GroupError>")]
pub struct JoinGroup {
    /// The session.
    pub client_id: ClientId,
    /// The group.
    pub group: GroupId,
}

/// Removes a session from a group. `Ok(false)` when it was not a member.
#[derive(Message)]
#[rtype(result = "Result<bool, GroupError>")]
pub struct LeaveGroup {
    /// The session.
    pub client_id: ClientId,
    /// The group.
    pub group: GroupId,
}

/// Routes a message now. The report says who got it; misses also reach the
/// failure handlers.
#[derive(Message)]
#[rtype(result = "RouteReport")]
pub struct Dispatch {
    /// Who gets it.
    pub target: Target,
    /// The message.
    pub envelope: Envelope,
    /// A session to skip (the sender, for group messages).
    pub exclude: Option<ClientId>,
}

impl Dispatch {
    /// To every session of `user`.
    pub fn to_user(user: impl Into<UserId>, envelope: Envelope) -> Self {
        Dispatch {
            target: Target::User(user.into()),
            envelope,
            exclude: None,
        }
    }

    /// To every session of each user.
    pub fn to_users(users: Vec<UserId>, envelope: Envelope) -> Self {
        Dispatch {
            target: Target::Users(users),
            envelope,
            exclude: None,
        }
    }

    /// To every member of `group`.
    pub fn to_group(group: impl Into<GroupId>, envelope: Envelope) -> Self {
        Dispatch {
            target: Target::Group(group.into()),
            envelope,
            exclude: None,
        }
    }

    /// To every session.
    pub fn broadcast(envelope: Envelope) -> Self {
        Dispatch {
            target: Target::Broadcast,
            envelope,
            exclude: None,
        }
    }

    /// To any target.
    pub fn new(target: Target, envelope: Envelope) -> Self {
        Dispatch {
            target,
            envelope,
            exclude: None,
        }
    }
}

/// Routes a message after a delay; answers with its id once the message is persisted (it is
/// sent after a restart too). Misses at send time reach the failure handlers. A `Matching`
/// target cannot be persisted and is refused.
#[derive(Message)]
#[rtype(result = "Result<MessageId, ScheduleError>")]
pub struct DispatchLater {
    /// How long to wait.
    pub delay: Duration,
    /// Who gets it.
    pub target: Target,
    /// The message.
    pub envelope: Envelope,
}

/// Closes every session of a user with 4500; answers how many.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct KickUser {
    /// The user.
    pub user_id: UserId,
    /// The close reason text.
    pub reason: String,
}

/// Closes one session with `code`; `false` when there is no such session.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct DisconnectClient {
    /// The session.
    pub client_id: ClientId,
    /// The close code.
    pub code: CloseCode,
    /// The close reason text.
    pub reason: String,
}

/// One online user.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnlineUser {
    /// The user.
    pub user_id: UserId,
    /// Live sessions.
    pub sessions: usize,
}

/// Online users and their count (the `/api/online` body).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnlineUsers {
    /// Users with at least one session.
    pub count: usize,
    /// Each user, sorted by id.
    pub users: Vec<OnlineUser>,
}

/// Asks for the online users.
#[derive(Message)]
#[rtype(result = "OnlineUsers")]
pub struct GetOnlineUsers;

/// Asks whether a user has a session.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsOnline {
    /// The user.
    pub user_id: UserId,
}

/// Asks for one session's info (with its metadata).
#[derive(Message)]
#[rtype(result = "Option<SessionInfo>")]
pub struct GetSession {
    /// The session.
    pub client_id: ClientId,
}

/// Sets one metadata key on a session; `false` when there is no such session.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct SetMetadata {
    /// The session.
    pub client_id: ClientId,
    /// The key.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
}

/// Asks for statistics.
#[derive(Message)]
#[rtype(result = "HubStats")]
pub struct GetStats;

/// Subscribes a recipient to an event type of [`crate::handlers`].
pub struct Subscribe<E: Message + Send>(pub Recipient<E>)
where
    E::Result: Send;

impl<E: Message + Send> Message for Subscribe<E>
where
    E::Result: Send,
{
    type Result = ();
}

/// Closes every session with 1001 after flushing what is queued, and refuses new ones.
/// Answers, once every session is gone or `timeout` passed, how many sessions were open.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown {
    /// The longest wait for sessions to flush and close.
    pub timeout: Duration,
}
