//! The [`Hub`] actor: supervises sessions, owns writes to the routing table, routes messages
//! sent through it, publishes lifecycle events and failures.
//!
//! Sessions route their clients' messages themselves through the shared [`Router`] (a read
//! lock and one encode per message), so the hub's single thread is not on the hot path of
//! client-to-client traffic; it handles connects, disconnects, groups and API sends.

mod messages;
mod queries;
mod reliable;
mod router;
mod stats;
mod table;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

pub use messages::*;
pub use queries::GetReliability;
pub use reliable::*;
pub use router::{RouteReport, Router, SessionFailure, SessionHandle};
pub use stats::HubStats;
pub use table::{RoutingTable, Selection, SessionEntry, SessionInfo, SessionPredicate, Target};

pub(crate) use router::publish;
pub(crate) use stats::Counters;

use crate::auth::{DefaultWelcome, WelcomeProvider};
use crate::config::Config;
use crate::config::StoreBackend;
use crate::error::FailureKind;
use crate::handlers::{DisconnectReason, SessionConnected, SessionDisconnected};
use crate::protocol::control::{self, WelcomeInfo};
use crate::protocol::{CloseCode, Envelope};
use crate::session::{CloseSession, Inbox, Outgoing};
use crate::store::{MemoryStore, SqliteStore, Store, StoreError, StoreHandle};
use crate::supervision::{
    unwritten_failures, DeliveriesFailed, DeliveryFailed, Records, Reliability, SessionLost,
};

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
    pending_store: Option<Box<dyn Store>>,
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
            flushing: Default::default(),
            welcome: Arc::new(DefaultWelcome),
            pending_store: Some(Box::new(MemoryStore::default())),
        }
    }

    /// A hub with the store `config.store.backend` names (memory when unset): the SQLite
    /// backend opens (creating and migrating) `<server.data_dir>/wsc.db` and loads the
    /// message records it holds. Fails with a clear error if the directory is not writable.
    pub fn from_config(config: Config) -> Result<Self, StoreError> {
        let store: Box<dyn Store> = match config.store.backend.unwrap_or(StoreBackend::Memory) {
            StoreBackend::Memory => Box::new(MemoryStore::default()),
            StoreBackend::Sqlite => Box::new(SqliteStore::open_limited(
                &config.server.data_dir,
                config.store.max_db_bytes,
            )?),
        };
        Ok(Hub::new(config).with_store(store))
    }

    /// Uses `store` (instead of the in-memory default), loading the records it holds.
    pub fn with_store(mut self, mut store: Box<dyn Store>) -> Self {
        match store.load_records() {
            Ok(records) => {
                if !records.is_empty() {
                    log::info!("loaded {} message records", records.len());
                }
                self.rel.records().load(records);
            }
            Err(e) => log::error!("cannot load message records: {e}"),
        }
        self.pending_store = Some(store);
        self
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
        if let Some(stored) = self.rel.store_offline(&report.offline_users, &envelope) {
            let (rel, users) = (self.rel.clone(), report.offline_users.clone());
            actix_rt::spawn(async move {
                if let Err(e) = stored.await {
                    rel.report_store_error(&envelope, &users, &e);
                }
            });
        }
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

    /// Fetches the user's stored messages and pushes them into the new session's inbox
    /// (after its welcome frame), if the session is still there.
    fn deliver_stored(&self, info: &SessionInfo, ctx: &mut Context<Self>) {
        let Some(store) = self.rel.store().cloned() else {
            return;
        };
        let (user, client, conn) = (info.user_id.clone(), info.client_id.clone(), info.conn);
        let limit = self.config.store.per_user_cap;
        let fetch = {
            let user = user.clone();
            async move { store.fetch(user, limit).await }
        };
        ctx.spawn(fetch.into_actor(self).map(move |res, hub, _| match res {
            Ok(items) if !items.is_empty() => {
                let handle = hub
                    .router
                    .read()
                    .get(&client)
                    .filter(|e| e.info.conn == conn)
                    .map(|e| e.handle.clone());
                if let Some(handle) = handle {
                    log::info!(
                        "delivering {} stored messages to client_id={client}",
                        items.len()
                    );
                    hub.rel.deliver_stored(&user, &client, &handle, items);
                }
            }
            Ok(_) => {}
            Err(e) => log::error!("cannot read stored messages of user_id={user}: {e}"),
        }));
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
        self.rel.start_actors();
        if let Some(store) = self.pending_store.take() {
            self.rel
                .attach_store(StoreHandle::start(store, self.rel.clone()));
        }
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

    fn handle(&mut self, mut msg: Connect, ctx: &mut Context<Self>) -> Self::Result {
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
        self.deliver_stored(&info, ctx);
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
        if msg.still_flushing {
            self.flushing.insert(msg.conn);
        }
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
