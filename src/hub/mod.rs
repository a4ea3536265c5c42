//! The [`Hub`] actor: supervises sessions, owns writes to the routing table, routes messages
//! sent through it, publishes lifecycle events and failures.
//!
//! Sessions route their clients' messages themselves through the shared [`Router`] (a read
//! lock and one encode per message), so the hub's single thread is not on the hot path of
//! client-to-client traffic; it handles connects, disconnects, groups and API sends.

mod admin;
mod config_update;
mod delayed;
mod messages;
mod metrics_query;
mod queries;
mod reliable;
mod remote;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

pub use admin::{
    AddUserToGroup, GetGroupMembers, GroupMember, ListRecords, RecordPage, RemoveUserFromGroup,
};
pub use config_update::{validate_log_level, GetConfig, GetLiveConfig, UpdateConfig};
pub use delayed::ScheduleError;
pub use messages::*;
pub use metrics_query::GetMetrics;
pub use queries::{GetReliability, GetSupervisors};
pub use reliable::*;
pub use remote::{AdoptDelayed, CloseLocal, GroupLocal, RedeliverStored};

pub use crate::model::{RouteReport, SessionFailure, SessionInfo, SessionPredicate, Target};
pub use crate::routing::{HubStats, Router, RoutingTable, Selection, SessionEntry, SessionHandle};

pub(crate) use crate::handlers::publish;
pub(crate) use crate::routing::Counters;

use crate::auth::{DefaultWelcome, WelcomeProvider};
use crate::config::Config;
use crate::error::FailureKind;
use crate::handlers::{ActorRestarted, SessionConnected, SessionDisconnected};
use crate::model::{unwritten_failures, DeliveriesFailed, DeliveryFailed};
use crate::protocol::control::{self, WelcomeInfo};
use crate::protocol::{CloseCode, Envelope};
use crate::routing::{CloseSession, Inbox, Outgoing};
use crate::store::{MemoryStore, Store, StoreError, StoreHandle};
use crate::supervision::{Records, Reliability, Supervisors};

/// The hub actor. Start it with [`Hub::new`] and `Actor::start`, then mount
/// [`crate::server::routes`] in an actix-web `App`.
pub struct Hub {
    config: Arc<Config>,
    router: Router,
    next_conn: u64,
    shutting_down: bool,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    /// Sessions that left the table but are still writing their close frame.
    flushing: std::collections::HashSet<u64>,
    welcome: Arc<dyn WelcomeProvider>,
    rel: Reliability,
    supervisors: Option<Supervisors>,
    pending_store: Option<Box<dyn Store>>,
    delayed: delayed::Delayed,
    /// Live sessions to tell about a config update, by serial number.
    reconfigure: std::collections::HashMap<u64, Recipient<crate::session::Reconfigure>>,
}

impl Hub {
    /// A hub with this configuration, using the store `config.store.backend` names (memory
    /// when unset; see [`Hub::try_new`] for what opening SQLite does).
    ///
    /// # Panics
    /// When the configured store cannot be opened or read (an unwritable data directory, a
    /// corrupt database), with the store's error: a hub never runs on a silently different
    /// store. Use [`Hub::try_new`] to handle that error instead (as `wsc-server` does).
    pub fn new(config: Config) -> Self {
        match Hub::try_new(config) {
            Ok(hub) => hub,
            Err(e) => panic!("Hub::new: cannot open the configured store: {e} (use Hub::try_new to handle this error)"),
        }
    }

    /// A hub with the store `config.store.backend` names (memory when unset): the SQLite
    /// backend opens (creating and migrating) `<server.data_dir>/wsc.db`, the Redis one
    /// connects to `store.redis_url`; either loads the message records it holds. Fails with
    /// a clear error if the directory is not writable or Redis cannot be used.
    pub fn try_new(config: Config) -> Result<Self, StoreError> {
        let store = crate::store::open(&config)?;
        Hub::with_memory(config).with_store(store)
    }

    /// The same as [`Hub::try_new`] (its older name).
    pub fn from_config(config: Config) -> Result<Self, StoreError> {
        Hub::try_new(config)
    }

    /// A hub with this configuration and the in-memory store whatever `config.store.backend`
    /// says (for [`Hub::with_store`] with a store of your own, or tests).
    pub fn with_memory(config: Config) -> Self {
        let config = Arc::new(config);
        let router = Router::default();
        let h = &config.hub;
        // In cluster mode every record is written to Redis, settled ones too: a record is
        // readable from any node.
        let records = Records::new(
            h.max_records_in_memory,
            config.store.persist_delay_ms,
            config.store.persist_acked || config.cluster.enabled(),
        );
        let rel = Reliability::new(router.clone(), records, config.clone());
        Hub {
            rel,
            supervisors: None,
            delayed: delayed::Delayed::default(),
            config,
            router,
            next_conn: 0,
            shutting_down: false,
            shutdown_waiters: Vec::new(),
            flushing: Default::default(),
            welcome: Arc::new(DefaultWelcome),
            pending_store: Some(Box::new(MemoryStore::default())),
            reconfigure: Default::default(),
        }
    }

    /// The live configuration handle (shared with sessions and the HTTP routes; a
    /// [`UpdateConfig`] changes what it holds).
    pub fn live_config(&self) -> crate::live_config::LiveConfig {
        self.rel.live_config().clone()
    }

    /// Uses `store` (instead of the in-memory default), loading the records and delayed
    /// messages it holds. A store whose records cannot be read is an error: the hub never
    /// starts empty over a database it could not read.
    pub fn with_store(mut self, mut store: Box<dyn Store>) -> Result<Self, StoreError> {
        let records = store.load_records()?;
        if !records.is_empty() {
            log::info!("loaded {} message records", records.len());
        }
        self.rel.records().load(records);
        let delayed = store.load_delayed()?;
        if !delayed.is_empty() {
            log::info!("loaded {} delayed messages", delayed.len());
        }
        self.delayed.load(delayed);
        self.pending_store = Some(store);
        Ok(self)
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

    /// Routes through the one delivery path (tracked when the message asks for acks) and
    /// stores copies for offline users in the background (errors reach the handlers).
    fn dispatch(
        &self,
        target: &Target,
        envelope: Envelope,
        exclude: Option<&crate::protocol::ClientId>,
    ) -> RouteReport {
        let track = envelope.require_ack.then(|| self.rel.default_options(true));
        let sent = self
            .rel
            .send(target, Arc::new(envelope), exclude, track, Vec::new());
        if let Some(durable) = sent.durable {
            actix_rt::spawn(async move {
                // Failures were reported to the handlers inside.
                let _ = durable.await;
            });
        }
        sent.report
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
        handle.close.do_send(CloseSession {
            code,
            reason: reason.to_owned(),
            flush,
        });
    }

    /// `limits.max_connections` and `limits.max_sessions_per_user` for a new session; with
    /// `replace_oldest`, the user's oldest session is closed with 4002 to make room.
    fn enforce_limits(&self, info: &SessionInfo) -> Result<(), crate::error::ConnectError> {
        use crate::config::SessionOverflow;
        use crate::error::ConnectError;
        let l = &self.config.limits;
        let oldest = {
            let table = self.router.read();
            // A session replacing its own client id takes no new slot.
            if table.get(&info.client_id).is_some() {
                return Ok(());
            }
            if table.session_count() >= l.max_connections {
                log::warn!(
                    "upgrade refused: {} sessions live (limits.max_connections)",
                    l.max_connections
                );
                return Err(ConnectError::TooManyConnections(l.max_connections));
            }
            let max = l.max_sessions_per_user;
            let live: Vec<_> = table
                .user_sessions(&info.user_id)
                .filter(|e| !e.handle.inbox.is_closing())
                .collect();
            if max == 0 || live.len() < max {
                return Ok(());
            }
            if l.sessions_over_limit == SessionOverflow::Refuse {
                log::warn!(
                    "upgrade refused: user_id={} holds {max} sessions (limits.max_sessions_per_user)",
                    info.user_id
                );
                return Err(ConnectError::TooManySessions(max));
            }
            live.into_iter()
                .min_by_key(|e| e.info.conn)
                .map(|e| (e.handle.clone(), e.info.clone()))
        };
        if let Some((handle, old)) = oldest {
            log::info!(
                "session replaced client_id={} user_id={}: over limits.max_sessions_per_user",
                old.client_id,
                old.user_id
            );
            self.close_session(
                &handle,
                &old,
                CloseCode::Replaced,
                "replaced: too many sessions for this user",
                false,
            );
        }
        Ok(())
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
        if self.shutting_down && self.flushing.is_empty() && self.router.read().session_count() == 0
        {
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
    unwritten_failures(
        frames,
        FailureKind::ConnectionError,
        &info.user_id,
        &info.client_id,
    )
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let sup = Supervisors::start(&self.rel);
        if let Some(store) = self.pending_store.take() {
            let router = self.router.clone();
            let on_restart = Arc::new(move |actor: &'static str| {
                router.counters().metrics.restarted(actor);
                publish(
                    &mut router.subscribers().restarted,
                    &ActorRestarted { actor },
                );
            });
            let handle = StoreHandle::start(
                store,
                &self.config.store,
                Arc::new(self.rel.records().clone()),
                sup.classifier.clone().recipient(),
                on_restart,
                self.router.counters().metrics.store_commit.clone(),
            );
            self.rel.attach_store(handle);
            self.rel.replay_after_restart();
        }
        self.supervisors = Some(sup);
        self.delayed.arm(ctx);
        let retention = self.config.hub.records_retention_ms;
        let every = Duration::from_millis((retention / 10).clamp(1_000, 60_000));
        ctx.run_interval(every, move |hub, _| {
            let now = crate::supervision::now_ms();
            let cutoff = now.saturating_sub(retention);
            let n = hub.rel.records().remove_final_before(cutoff);
            if n > 0 {
                log::debug!("removed {n} message records older than the retention");
            }
            if let Some(store) = hub.rel.store().cloned() {
                actix_rt::spawn(async move {
                    match store.purge(now, cutoff).await {
                        Ok(0) => {}
                        Ok(n) => log::debug!("store retention removed {n} rows"),
                        Err(e) => log::error!("store retention failed: {e}"),
                    }
                });
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
        self.enforce_limits(&msg.info)?;
        if let Some(remote) = self.router.remote() {
            // Client ids are unique in the whole cluster.
            match remote.owner(&msg.info.client_id) {
                Some(user) if user != msg.info.user_id => {
                    log::warn!(
                        "upgrade refused: client_id={} is held by another user on another node",
                        msg.info.client_id
                    );
                    return Err(crate::error::ConnectError::ClientIdInUse(
                        msg.info.client_id.clone(),
                    ));
                }
                Some(_) => {
                    log::info!(
                        "session replaced client_id={} user_id={}: it moved here from another node",
                        msg.info.client_id,
                        msg.info.user_id
                    );
                    remote.close(
                        &crate::routing::CloseWho::Client(msg.info.client_id.clone()),
                        CloseCode::Replaced,
                        "replaced by a newer session",
                    );
                }
                None => {}
            }
        }
        self.next_conn += 1;
        msg.info.conn = self.next_conn;
        let info = msg.info.clone();
        let inbox = Arc::new(Inbox::new(self.config.session.queue_bytes));
        // The welcome goes in before the session is routable, so it is always first; live
        // frames wait behind the user's stored ones.
        inbox.push_control(Outgoing::Control(self.welcome_frame(&info)));
        if self.rel.store().is_some() {
            inbox.hold();
        }
        self.reconfigure
            .insert(self.next_conn, msg.addr.clone().recipient());
        let handle = SessionHandle {
            inbox: inbox.clone(),
            overflowed: msg.addr.clone().recipient(),
            close: msg.addr.recipient(),
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
        self.announce(&info.client_id);
        Counters::add(&self.router.counters().total_connections, 1);
        log::info!(
            "session connected client_id={} user_id={} user_type={}",
            info.client_id,
            info.user_id,
            info.user_type
        );
        if self.rel.store().is_some() {
            self.rel
                .deliver_backlog(info.user_id.clone(), info.client_id.clone(), inbox.clone());
        }
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
        if removed.is_some() {
            self.announce(&msg.client_id);
        }
        self.reconfigure.remove(&msg.conn);
        self.router.counters().metrics.closed(&msg.reason);
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
        if msg.still_flushing {
            self.flushing.insert(msg.conn);
        }
        if removed.is_some() && !self.router.is_online_anywhere(&msg.user_id) {
            // The user's last session is gone: what awaited its ack waits in the store.
            self.rel.user_gone(&msg.user_id, &msg.client_id);
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

impl Handler<SessionEnded> for Hub {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, _: &mut Context<Self>) {
        self.flushing.remove(&msg.conn);
        self.wake_shutdown_waiters();
    }
}

impl Handler<JoinGroup> for Hub {
    type Result = Result<bool, crate::error::GroupError>;

    fn handle(&mut self, msg: JoinGroup, _: &mut Context<Self>) -> Self::Result {
        let l = &self.config.limits;
        let joined = self.router.write().join_within(
            &msg.client_id,
            &msg.group,
            l.max_groups_per_session,
            l.max_members_per_group,
        );
        if matches!(joined, Ok(true)) {
            self.announce(&msg.client_id);
        }
        joined
    }
}

impl Handler<LeaveGroup> for Hub {
    type Result = Result<bool, crate::error::GroupError>;

    fn handle(&mut self, msg: LeaveGroup, _: &mut Context<Self>) -> Self::Result {
        let left = self.router.write().leave(&msg.client_id, &msg.group);
        if matches!(left, Ok(true)) {
            self.announce(&msg.client_id);
        }
        left
    }
}

impl Handler<Dispatch> for Hub {
    type Result = MessageResult<Dispatch>;

    fn handle(&mut self, msg: Dispatch, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.dispatch(&msg.target, msg.envelope, msg.exclude.as_ref()))
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
        let elsewhere = self.router.remote().map_or(0, |r| {
            r.close(
                &crate::routing::CloseWho::User(msg.user_id.clone()),
                CloseCode::Kicked,
                &msg.reason,
            )
        });
        victims.len() + elsewhere
    }
}

impl Handler<DisconnectClient> for Hub {
    type Result = bool;

    fn handle(&mut self, msg: DisconnectClient, _: &mut Context<Self>) -> bool {
        let found = self.sessions_where(|i| i.client_id == msg.client_id);
        for (handle, info) in &found {
            self.close_session(handle, info, msg.code, &msg.reason, false);
        }
        if !found.is_empty() {
            return true;
        }
        self.router.remote().is_some_and(|r| {
            r.close(
                &crate::routing::CloseWho::Client(msg.client_id.clone()),
                msg.code,
                &msg.reason,
            ) > 0
        })
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
        let rel = self.rel.clone();
        Box::pin(async move {
            if tokio::time::timeout(msg.timeout, rx).await.is_err() {
                log::warn!("shutdown: sessions still open after {:?}", msg.timeout);
            }
            // Unacked deliveries (and frames that were never written) go to the store.
            if let Err(e) = rel.persist_in_flight().await {
                log::error!("shutdown: in-flight messages may be lost: {e}");
            }
            count
        })
    }
}
