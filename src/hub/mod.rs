//! The [`Hub`] actor: supervises sessions, owns writes to the routing table, routes messages
//! sent through it, publishes lifecycle events and failures.
//!
//! Sessions route their clients' messages themselves through the shared [`Router`] (a read
//! lock and one encode per message), so the hub's single thread is not on the hot path of
//! client-to-client traffic; it handles connects, disconnects, groups and API sends.

mod messages;
mod reliable;
mod router;
mod stats;
mod table;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

pub use messages::*;
pub use reliable::*;
pub use router::{RouteReport, Router, SessionFailure, SessionHandle};
pub use stats::HubStats;
pub use table::{RoutingTable, Selection, SessionEntry, SessionInfo, SessionPredicate, Target};

pub(crate) use router::publish;
pub(crate) use stats::Counters;

use crate::auth::{DefaultWelcome, WelcomeProvider};
use crate::config::Config;
use crate::error::FailureKind;
use crate::handlers::{
    ConnectionError, DeliveryTimedOut, DisconnectReason, MessageReceived, QueueFull, SendFailed,
    SessionConnected, SessionDisconnected, UserOffline,
};
use crate::protocol::control::{self, WelcomeInfo};
use crate::protocol::{CloseCode, Envelope};
use crate::session::{CloseSession, Inbox, Outgoing};
use crate::supervision::{
    failure, DeliveriesFailed, DeliveryFailed, Records, Reliability, SessionLost,
};

/// The hub actor. Start it with [`Hub::new`] and `Actor::start`, then mount
/// [`crate::server::routes`] in an actix-web `App`.
pub struct Hub {
    config: Arc<Config>,
    router: Router,
    next_conn: u64,
    shutting_down: bool,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    welcome: Arc<dyn WelcomeProvider>,
    rel: Reliability,
}

impl Hub {
    /// A hub with this configuration.
    pub fn new(config: Config) -> Self {
        let config = Arc::new(config);
        let router = Router::default();
        let rel = Reliability::new(router.clone(), Records::default(), config.clone());
        Hub {
            rel,
            config,
            router,
            next_conn: 0,
            shutting_down: false,
            shutdown_waiters: Vec::new(),
            welcome: Arc::new(DefaultWelcome),
        }
    }

    /// Uses `provider` for welcome frames.
    pub fn with_welcome(mut self, provider: Arc<dyn WelcomeProvider>) -> Self {
        self.welcome = provider;
        self
    }

    fn welcome_frame(&self, info: &SessionInfo) -> bytestring::ByteString {
        let w = self.welcome.welcome(info);
        let c = &self.config;
        let welcome = WelcomeInfo {
            client_id: info.client_id.clone(),
            user_id: info.user_id.clone(),
            node_id: c.hub.node_id.as_str().into(),
            heartbeat_interval_ms: c.session.heartbeat_interval_ms,
            client_timeout_ms: c.session.client_timeout_ms,
            ack_timeout_ms: c.ack.ack_timeout_ms,
            max_retries: c.retry.max_retries,
        };
        control::welcome(&welcome, &w.content, w.data.as_ref())
    }

    /// The shared routing state (for routing from other threads without a hop).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The reliability layer (records and supervision actors).
    pub fn reliability(&self) -> Reliability {
        self.rel.clone()
    }

    fn report_failures(&self, failures: Vec<DeliveryFailed>) {
        self.rel.report(failures);
    }

    fn dispatch(
        &self,
        target: &Target,
        envelope: Envelope,
        exclude: Option<&crate::protocol::ClientId>,
    ) -> RouteReport {
        let envelope = Arc::new(envelope);
        let report = self.router.route(target, envelope.clone(), exclude);
        self.report_failures(report.failures(&envelope));
        report
    }

    /// Closes a session's inbox now (so routing stops at once), reports what it held, and
    /// tells the session actor to finish.
    fn close_session(
        &self,
        handle: &SessionHandle,
        entry: &SessionInfo,
        code: CloseCode,
        reason: &str,
        flush: bool,
    ) {
        if let Some(dropped) = handle.inbox.close(code, reason, flush) {
            self.report_failures(undelivered(dropped, entry));
        }
        handle.addr.do_send(CloseSession {
            code,
            reason: reason.to_owned(),
            flush,
        });
    }

    fn sessions_where(
        &self,
        pred: impl Fn(&SessionInfo) -> bool,
    ) -> Vec<(SessionHandle, SessionInfo)> {
        self.router
            .read()
            .sessions()
            .filter(|e| pred(&e.info))
            .map(|e| (e.handle.clone(), e.info.clone()))
            .collect()
    }

    fn wake_shutdown_waiters(&mut self) {
        if self.shutting_down && self.router.read().session_count() == 0 {
            for w in self.shutdown_waiters.drain(..) {
                let _ = w.send(()); // the waiter may have timed out already; nothing to do
            }
        }
    }
}

fn undelivered(
    frames: Vec<crate::protocol::OutboundFrame>,
    info: &SessionInfo,
) -> Vec<DeliveryFailed> {
    frames
        .into_iter()
        .map(|f| {
            failure(
                FailureKind::ConnectionError,
                f.envelope(),
                Some(info.user_id.clone()),
                Some(info.client_id.clone()),
                "session closed before the frame was written",
            )
        })
        .collect()
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.rel.start_actors();
        let retention = self.config.hub.records_retention_ms;
        let every = Duration::from_millis((retention / 10).clamp(1_000, 60_000));
        ctx.run_interval(every, move |hub, _| {
            let cutoff = crate::supervision::now_ms().saturating_sub(retention);
            let n = hub.rel.records().remove_final_before(cutoff);
            if n > 0 {
                log::debug!("removed {n} message records older than the retention");
            }
        });
        log::info!("hub started node_id={}", self.config.hub.node_id);
    }
}

impl Handler<Connect> for Hub {
    type Result = Result<Connected, crate::error::ConnectError>;

    fn handle(&mut self, mut msg: Connect, _: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Err(crate::error::ConnectError::ShuttingDown);
        }
        self.next_conn += 1;
        msg.info.conn = self.next_conn;
        let info = msg.info.clone();
        let inbox = Arc::new(Inbox::new(self.config.session.queue_bytes));
        // The welcome goes in before the session is routable, so it is always first.
        inbox.push_control(Outgoing::Control(self.welcome_frame(&info)));
        let handle = SessionHandle {
            inbox: inbox.clone(),
            addr: msg.addr,
        };
        let replaced = self.router.write().insert(msg.info, handle)?;
        if let Some(old) = replaced {
            log::info!(
                "session replaced client_id={} user_id={}",
                old.info.client_id,
                old.info.user_id
            );
            self.close_session(
                &old.handle,
                &old.info,
                CloseCode::Replaced,
                "replaced by a newer session",
                false,
            );
        }
        stats::Counters::add(&self.router.counters().total_connections, 1);
        log::info!(
            "session connected client_id={} user_id={} user_type={}",
            info.client_id,
            info.user_id,
            info.user_type
        );
        publish(
            &mut self.router.subscribers().connected,
            &SessionConnected { info },
        );
        Ok(Connected {
            conn: self.next_conn,
            router: self.router.clone(),
            config: self.config.clone(),
            inbox,
            reliability: self.rel.clone(),
        })
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        let removed = self.router.write().remove(&msg.client_id, msg.conn);
        log::info!(
            "session disconnected client_id={} user_id={} reason={:?}",
            msg.client_id,
            msg.user_id,
            msg.reason
        );
        let info = removed
            .as_ref()
            .map(|e| e.info.clone())
            .unwrap_or_else(|| SessionInfo {
                client_id: msg.client_id.clone(),
                user_id: msg.user_id.clone(),
                user_type: crate::protocol::UserType::Customer,
                role: None,
                conn: msg.conn,
                connected_at: std::time::SystemTime::now(),
                metadata: Default::default(),
            });
        self.report_failures(undelivered(msg.undelivered, &info));
        if matches!(
            msg.reason,
            DisconnectReason::ConnectionLost | DisconnectReason::WriteTimeout
        ) {
            if let Some(ack) = self.rel.ack_tracker() {
                ack.do_send(SessionLost {
                    client_id: msg.client_id.clone(),
                    user_id: msg.user_id.clone(),
                });
            }
        }
        publish(
            &mut self.router.subscribers().disconnected,
            &SessionDisconnected {
                client_id: msg.client_id,
                user_id: msg.user_id,
                reason: msg.reason,
            },
        );
        self.wake_shutdown_waiters();
    }
}

impl Handler<JoinGroup> for Hub {
    type Result = Result<bool, crate::error::GroupError>;

    fn handle(&mut self, msg: JoinGroup, _: &mut Context<Self>) -> Self::Result {
        self.router.write().join(&msg.client_id, &msg.group)
    }
}

impl Handler<LeaveGroup> for Hub {
    type Result = Result<bool, crate::error::GroupError>;

    fn handle(&mut self, msg: LeaveGroup, _: &mut Context<Self>) -> Self::Result {
        self.router.write().leave(&msg.client_id, &msg.group)
    }
}

impl Handler<Dispatch> for Hub {
    type Result = MessageResult<Dispatch>;

    fn handle(&mut self, msg: Dispatch, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.dispatch(&msg.target, msg.envelope, msg.exclude.as_ref()))
    }
}

impl Handler<DispatchLater> for Hub {
    type Result = MessageResult<DispatchLater>;

    fn handle(&mut self, msg: DispatchLater, ctx: &mut Context<Self>) -> Self::Result {
        let id = msg.envelope.id.clone();
        let (target, envelope) = (msg.target, msg.envelope);
        ctx.run_later(msg.delay, move |hub, _| {
            hub.dispatch(&target, envelope, None);
        });
        MessageResult(id)
    }
}

impl Handler<KickUser> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: KickUser, _: &mut Context<Self>) -> usize {
        let victims = self.sessions_where(|i| i.user_id == msg.user_id);
        for (handle, info) in &victims {
            log::info!(
                "kicking client_id={} user_id={}",
                info.client_id,
                info.user_id
            );
            self.close_session(handle, info, CloseCode::Kicked, &msg.reason, false);
        }
        victims.len()
    }
}

impl Handler<DisconnectClient> for Hub {
    type Result = bool;

    fn handle(&mut self, msg: DisconnectClient, _: &mut Context<Self>) -> bool {
        let found = self.sessions_where(|i| i.client_id == msg.client_id);
        for (handle, info) in &found {
            self.close_session(handle, info, msg.code, &msg.reason, false);
        }
        !found.is_empty()
    }
}

impl Handler<GetOnlineUsers> for Hub {
    type Result = MessageResult<GetOnlineUsers>;

    fn handle(&mut self, _: GetOnlineUsers, _: &mut Context<Self>) -> Self::Result {
        let users: Vec<OnlineUser> = self
            .router
            .read()
            .online_users()
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
        self.router.read().is_online(&msg.user_id)
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

impl Handler<GetStats> for Hub {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        let table = self.router.read();
        MessageResult(HubStats::snapshot(
            &self.config.hub.node_id,
            self.router.counters(),
            table.session_count(),
            table.user_count(),
        ))
    }
}

impl Handler<DeliveriesFailed> for Hub {
    type Result = ();

    fn handle(&mut self, msg: DeliveriesFailed, _: &mut Context<Self>) {
        self.report_failures(msg.failures);
    }
}

impl Handler<Shutdown> for Hub {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let all = self.sessions_where(|_| true);
        let count = all.len();
        log::info!("shutting down: closing {count} sessions with 1001");
        for (handle, info) in &all {
            self.close_session(
                handle,
                info,
                CloseCode::GoingAway,
                "server shutting down",
                true,
            );
        }
        let (tx, rx) = oneshot::channel();
        self.shutdown_waiters.push(tx);
        self.wake_shutdown_waiters();
        Box::pin(async move {
            if tokio::time::timeout(msg.timeout, rx).await.is_err() {
                log::warn!("shutdown: sessions still open after {:?}", msg.timeout);
            }
            count
        })
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

/// The longest a single close waits before it is forced (see [`Shutdown`]).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
