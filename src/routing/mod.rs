//! Routing without a hop through the hub: sessions and the hub share the table behind a
//! read-write lock. The hub is the only writer (connect, disconnect, groups); any thread
//! routes under a read lock, encoding each message once and pushing the shared frame into
//! each recipient session's inbox.

use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use actix::prelude::*;

mod inbox;
mod remote;
mod stats;
mod table;

pub(crate) use inbox::Closing;
pub use inbox::{Inbox, OutboundQueue, Outgoing, PushError};
pub use remote::{CloseWho, ClusterStatus, NodeStatus, Remote};
pub use stats::{Counters, HubStats};
pub use table::{RoutingTable, Selection, SessionEntry};

use crate::error::FailureKind;
use crate::handlers::Subscribers;
use crate::model::{RouteReport, SessionFailure, Target};
use crate::protocol::{ClientId, CloseCode, Envelope, OutboundFrame, Source};

/// Closes a session (sent by the hub: kick, replace, shutdown, disconnect).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct CloseSession {
    /// The close code.
    pub code: CloseCode,
    /// The close reason text.
    pub reason: String,
    /// Write what is queued before the close frame.
    pub flush: bool,
}

/// The session's outbound queue overflowed (sent by whoever's push overflowed it).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct QueueOverflowed;

/// What routing holds for each session: its inbox and how to reach its actor.
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) overflowed: Recipient<QueueOverflowed>,
    pub(crate) close: Recipient<CloseSession>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

struct Shared {
    table: RwLock<RoutingTable<SessionHandle>>,
    subscribers: RwLock<Subscribers>,
    counters: Counters,
    remote: OnceLock<Arc<dyn Remote>>,
}

/// A cheap handle on the shared routing state.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            shared: Arc::new(Shared {
                table: RwLock::new(RoutingTable::default()),
                subscribers: RwLock::new(Subscribers::default()),
                counters: Counters::default(),
                remote: OnceLock::new(),
            }),
        }
    }
}

impl Router {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, RoutingTable<SessionHandle>> {
        // The table's methods leave it consistent even if a panic interrupts a caller.
        self.shared.table.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, RoutingTable<SessionHandle>> {
        self.shared.table.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn subscribers(&self) -> RwLockWriteGuard<'_, Subscribers> {
        self.shared
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Installs the hook to other nodes' sessions (cluster mode; once, at startup).
    pub fn attach_remote(&self, remote: Arc<dyn Remote>) {
        if self.shared.remote.set(remote).is_err() {
            log::warn!("routing: a second remote hook was ignored");
        }
    }

    /// Other nodes' sessions, in cluster mode.
    pub fn remote(&self) -> Option<&Arc<dyn Remote>> {
        self.shared.remote.get()
    }

    /// Whether `user` has a session on this node or (in cluster mode) another one.
    pub fn is_online_anywhere(&self, user: &crate::protocol::UserId) -> bool {
        self.read().is_online(user) || self.remote().is_some_and(|r| r.is_online(user))
    }

    /// Whether anyone listens for [`MessageReceived`] (checked before cloning a message).
    pub(crate) fn wants_message_received(&self) -> bool {
        let subs = self
            .shared
            .subscribers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        !subs.message_received.is_empty()
    }

    /// Routes `envelope` to `target`, skipping `exclude`. Encodes once, and only if some
    /// session takes it (a message for offline users is never encoded here).
    pub fn route(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
    ) -> RouteReport {
        self.route_envelope(target, envelope, exclude, false)
    }

    /// Like [`Router::route`], also listing every session that took the frame.
    pub fn route_collecting(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
    ) -> RouteReport {
        self.route_envelope(target, envelope, exclude, true)
    }

    fn route_envelope(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
        collect: bool,
    ) -> RouteReport {
        let frame = std::cell::OnceCell::new();
        let encoded = || frame.get_or_init(|| OutboundFrame::new(envelope.clone(), Source::Live));
        let mut report = self.route_local_with(target, &envelope, encoded, exclude, collect);
        if let Some(remote) = self.remote() {
            remote.route(target, encoded(), exclude, collect, &mut report);
        }
        report
    }

    /// Routes an encoded frame to this node's sessions and (in cluster mode) other nodes'.
    pub fn route_frame(
        &self,
        target: &Target,
        frame: &OutboundFrame,
        exclude: Option<&ClientId>,
        collect: bool,
    ) -> RouteReport {
        let mut report = self.route_frame_local(target, frame, exclude, collect);
        if let Some(remote) = self.remote() {
            remote.route(target, frame, exclude, collect, &mut report);
        }
        report
    }

    /// Routes an encoded frame to this node's sessions only (what another node sent here).
    pub fn route_frame_local(
        &self,
        target: &Target,
        frame: &OutboundFrame,
        exclude: Option<&ClientId>,
        collect: bool,
    ) -> RouteReport {
        self.route_local_with(target, frame.envelope(), || frame, exclude, collect)
    }

    /// Routes to this node's sessions the frame `frame` gives (asked for only when a session
    /// is selected).
    fn route_local_with<'f>(
        &self,
        target: &Target,
        envelope: &Envelope,
        frame: impl Fn() -> &'f OutboundFrame,
        exclude: Option<&ClientId>,
        collect: bool,
    ) -> RouteReport {
        let mut failed = Vec::new();
        let mut recipients = Vec::new();
        let mut delivered = 0usize;
        let sel = self.read().select(target, exclude, |entry| {
            match entry.handle.inbox.push_app(frame().clone()) {
                Ok(()) => {
                    delivered += 1;
                    if collect {
                        recipients.push((entry.info.user_id.clone(), entry.info.client_id.clone()));
                    }
                }
                Err(e) => {
                    let kind = match e {
                        PushError::Full(_) => {
                            entry.handle.overflowed.do_send(QueueOverflowed);
                            FailureKind::QueueFull
                        }
                        PushError::Closed(_) => FailureKind::ConnectionError,
                    };
                    failed.push(SessionFailure {
                        client_id: entry.info.client_id.clone(),
                        user_id: entry.info.user_id.clone(),
                        kind,
                    });
                }
            }
        });
        Counters::add(&self.shared.counters.messages_sent, delivered as u64);
        let msg_type = envelope.msg_type;
        (self.shared.counters.metrics).routed(msg_type, target, delivered as u64);
        if matches!(
            target,
            Target::Broadcast | Target::UserType(_) | Target::Role(_)
        ) {
            Counters::add(&self.shared.counters.broadcasts_sent, 1);
        }
        RouteReport {
            id: envelope.id.clone(),
            delivered,
            offline_users: sel.offline_users,
            unknown_group: sel.unknown_group,
            failed,
            recipients,
        }
    }
}
