//! Cluster mode: several `wsc-server` nodes behind one Redis.
//!
//! Off unless `cluster.redis_url` is set (`--redis-url`). Then:
//!
//! - **Presence.** Each node writes its sessions to `{p}:cl:sess:{node}` (a hash, client id
//!   -> session) and renews its heartbeat in `{p}:cl:nodes` (a sorted set, node -> last
//!   beat in ms) every third of `cluster.node_ttl_ms`; every change is also announced on
//!   `{p}:cl:all`. Every node keeps a [`mirror::Mirror`] of the others' sessions from those
//!   announcements (read in full after each (re)subscribe), so routing and `/api/online`
//!   never wait on Redis. A node whose heartbeat is older than the TTL is taken over by the
//!   first live node that notices: its presence is removed, its message records move to the
//!   taker, and what it had in flight is stored for its recipients.
//! - **Routing.** [`Cluster`] is the router's [`Remote`]: a message to sessions on other
//!   nodes is published once per node that holds any (`{p}:cl:n:{node}`), and that node
//!   delivers it to its own sessions only. A node gets p2p traffic only for users it holds.
//! - **Reliability.** The sending node owns the record (ack deadline, retries, handlers);
//!   an ack arriving at another node is forwarded on `{p}:cl:all`. Records and the offline
//!   store are the Redis store backend, shared by all nodes.
//! - **Faults.** The writer thread ([`bus`]), the listener thread ([`listen`]) and every
//!   delivery lane ([`lane`]) have their own connection and reconnect by themselves; while
//!   Redis is away `/health` says `not_ready`, deliveries to other nodes fail to the
//!   handlers, local ones go on.
//!
//! The hot path: a delivery to another node leaves from the routing thread's own lane (a task
//! on that thread speaking RESP to Redis, pipelined), carries the frame as the sessions get
//! it (encoded once, [`wire::encode_delivery`]), and the receiving node's listener thread hands
//! it to its sessions as it is. Presence, heartbeats, closes, acks and group changes go
//! through the writer thread, which keeps them in order.
//!
//! The crate is `redis` (its sync API, on the writer and listener threads of our own): the
//! commands are few and pipelined, a blocking connection per thread keeps the order of a
//! node's control messages obvious, and it is the crate the Redis store already uses. The
//! lanes speak the two replies they need (`PUBLISH`'s count, `AUTH`'s status) themselves:
//! the crate's multiplexed async connection (a driver task, a channel and a timer per
//! request) cost more CPU per message than the writer thread it was meant to replace.

mod bus;
mod lane;
mod listen;
pub mod mirror;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use actix::prelude::*;

use crate::config::Config;
use crate::hub::{AdoptDelayed, CloseLocal, GroupLocal, Hub, RedeliverStored};
use crate::model::{
    DeliveryFailed, MessageRecord, RecordTarget, RouteReport, SessionFailure, Target,
};
use crate::protocol::{ClientId, CloseCode, GroupId, MessageId, OutboundFrame, UserId};
use crate::routing::{CloseWho, ClusterStatus, NodeStatus, Remote, Router};
use crate::supervision::Reliability;
use bus::{Cmd, FailNote};
use mirror::Mirror;
use wire::{SessionWire, Who, Wire};

/// Why cluster mode cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError(pub String);

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

pub(crate) fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(conn)
}

pub(crate) struct Shared {
    /// Unique in this process (keys this cluster's per-thread lanes).
    id: u64,
    node: Arc<str>,
    prefix: String,
    url: String,
    ttl_ms: u64,
    heartbeat_ms: u64,
    mirror: RwLock<Mirror>,
    bus_up: AtomicBool,
    listen_up: AtomicBool,
    /// The listener lost Redis: the writer replaces its connection before the next round.
    stale: AtomicBool,
    errors: AtomicU64,
    published: AtomicU64,
    received: AtomicU64,
    stop: AtomicBool,
    tx: mpsc::Sender<Cmd>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<Cmd>>>,
    router: Router,
    rel: Reliability,
    actor: OnceLock<Addr<ClusterActor>>,
}

impl Shared {
    fn chan_node(&self, node: &str) -> String {
        format!("{}:cl:n:{node}", self.prefix)
    }
    fn chan_all(&self) -> String {
        format!("{}:cl:all", self.prefix)
    }
    fn key_nodes(&self) -> String {
        format!("{}:cl:nodes", self.prefix)
    }
    fn key_sessions(&self, node: &str) -> String {
        format!("{}:cl:sess:{node}", self.prefix)
    }

    fn mirror(&self) -> std::sync::RwLockReadGuard<'_, Mirror> {
        self.mirror.read().unwrap_or_else(|p| p.into_inner())
    }

    fn mirror_mut(&self) -> std::sync::RwLockWriteGuard<'_, Mirror> {
        self.mirror.write().unwrap_or_else(|p| p.into_inner())
    }

    fn ready(&self) -> bool {
        self.bus_up.load(Ordering::Acquire) && self.listen_up.load(Ordering::Acquire)
    }

    fn report(&self, failures: Vec<DeliveryFailed>) {
        self.rel.report(failures);
    }

    fn send(&self, cmd: Cmd) {
        if let Err(mpsc::SendError(cmd)) = self.tx.send(cmd) {
            log::error!("cluster: the writer thread is gone; a message to other nodes is lost");
            if let Cmd::Publish {
                fail: Some(note), ..
            } = cmd
            {
                let why = "cluster writer stopped";
                self.report(
                    note.sessions
                        .into_iter()
                        .map(|(u, c)| {
                            crate::model::failure(
                                crate::error::FailureKind::ConnectionError,
                                &note.envelope,
                                Some(u),
                                Some(c),
                                why,
                            )
                        })
                        .collect(),
                );
            }
        }
    }

    fn publish(&self, to: Option<Arc<str>>, wire: &Wire, fail: Option<FailNote>) {
        match serde_json::to_vec(wire) {
            Ok(payload) => self.send(Cmd::Publish { to, payload, fail }),
            Err(e) => log::error!("cluster: cannot encode a message for other nodes: {e}"),
        }
    }

    fn to_inbound<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        ClusterActor: Handler<M>,
    {
        match self.actor.get() {
            Some(a) => {
                if let Err(e) = a.try_send(msg) {
                    log::error!("cluster: the cluster actor cannot take a message: {e}");
                }
            }
            None => log::error!("cluster: a message arrived before the cluster actor started"),
        }
    }
}

/// Checks that Redis answers at `cluster.redis_url` (a clear startup error otherwise).
pub fn check_redis(config: &Config) -> Result<(), ClusterError> {
    let url = config
        .cluster
        .redis_url
        .as_deref()
        .ok_or_else(|| ClusterError("cluster.redis_url is not set".into()))?;
    let shown = crate::store::redacted_url(url);
    let mut conn =
        connect(url).map_err(|e| ClusterError(format!("cannot reach Redis at {shown}: {e}")))?;
    redis::cmd("PING")
        .query::<String>(&mut conn)
        .map_err(|e| ClusterError(format!("Redis at {shown} does not answer PING: {e}")))?;
    Ok(())
}

/// This node's membership of the cluster: the router's [`Remote`], two Redis threads and
/// the actor that acts on what other nodes say. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

impl Cluster {
    /// Checks that Redis answers at `cluster.redis_url` and hooks this node's router into
    /// the cluster (nothing is sent before [`Cluster::start`]).
    pub fn connect(
        config: &Config,
        router: Router,
        rel: Reliability,
    ) -> Result<Cluster, ClusterError> {
        let url = config
            .cluster
            .redis_url
            .clone()
            .ok_or_else(|| ClusterError("cluster.redis_url is not set".into()))?;
        check_redis(config)?;
        let (tx, rx) = mpsc::channel();
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            node: config.hub.node_id.as_str().into(),
            prefix: config.store.redis_prefix.clone(),
            url,
            ttl_ms: config.cluster.node_ttl_ms,
            heartbeat_ms: config.cluster.heartbeat_ms(),
            mirror: RwLock::new(Mirror::default()),
            bus_up: AtomicBool::new(false),
            listen_up: AtomicBool::new(false),
            stale: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            router: router.clone(),
            rel,
            actor: OnceLock::new(),
        });
        let cluster = Cluster { shared };
        router.attach_remote(Arc::new(cluster.clone()));
        Ok(cluster)
    }

    /// Starts the actor (on the current arbiter) and the writer and listener threads.
    pub fn start(&self, hub: Addr<Hub>) -> Result<(), ClusterError> {
        let rx = self
            .shared
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| ClusterError("the cluster is started already".into()))?;
        let actor = ClusterActor {
            shared: self.shared.clone(),
            hub,
        }
        .start();
        if self.shared.actor.set(actor).is_err() {
            return Err(ClusterError("the cluster is started already".into()));
        }
        let s = self.shared.clone();
        std::thread::Builder::new()
            .name("wsc-cluster-writer".into())
            .spawn(move || bus::run(s, rx))
            .map_err(|e| ClusterError(format!("cannot start the cluster writer thread: {e}")))?;
        let s = self.shared.clone();
        std::thread::Builder::new()
            .name("wsc-cluster-listener".into())
            .spawn(move || listen::run(s))
            .map_err(|e| ClusterError(format!("cannot start the cluster listener thread: {e}")))?;
        log::info!(
            "cluster mode: node {} on Redis {} (node_ttl_ms={})",
            self.shared.node,
            crate::store::redacted_url(&self.shared.url),
            self.shared.ttl_ms
        );
        Ok(())
    }

    /// Leaves the cluster (after the hub closed its sessions): presence removed, the other
    /// nodes told at once instead of waiting for the heartbeat to expire.
    pub async fn leave(&self, timeout: Duration) {
        let (tx, rx) = mpsc::channel();
        self.shared.send(Cmd::Stop(tx));
        self.shared.stop.store(true, Ordering::Release);
        let waited = actix_web::rt::task::spawn_blocking(move || rx.recv_timeout(timeout)).await;
        if !matches!(waited, Ok(Ok(()))) {
            log::warn!("cluster: leaving did not finish within {timeout:?}");
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.shared.node
    }

    /// Whether Redis answers (writer and listener connected).
    pub fn ready(&self) -> bool {
        self.shared.ready()
    }
}

/// Sessions of one node: `(user, client)`.
type Sessions = Vec<(UserId, ClientId)>;

/// The target another node should route for sessions selected here: the exact sessions
/// for targets that name users or clients (so that node reports nobody offline), the
/// original target otherwise (that node selects its own members).
fn narrowed(target: &Target, sessions: &[(UserId, ClientId)]) -> RecordTarget {
    match target {
        Target::Group(g) => RecordTarget::Group(g.clone()),
        Target::Broadcast => RecordTarget::Broadcast,
        Target::UserType(t) => RecordTarget::UserType(*t),
        Target::Role(r) => RecordTarget::Role(r.clone()),
        _ => RecordTarget::Clients(sessions.iter().map(|(_, c)| c.clone()).collect()),
    }
}

impl Remote for Cluster {
    fn route(
        &self,
        target: &Target,
        frame: &OutboundFrame,
        exclude: Option<&ClientId>,
        collect: bool,
        report: &mut RouteReport,
    ) {
        let s = &self.shared;
        let mut per_node: Vec<(Arc<str>, Sessions)> = Vec::new();
        {
            let m = s.mirror();
            if m.table.session_count() == 0 {
                return;
            }
            let sel = m.table.select(target, exclude, |e| {
                let pair = (e.info.user_id.clone(), e.info.client_id.clone());
                match per_node.iter_mut().find(|(n, _)| *n == e.handle.node) {
                    Some((_, v)) => v.push(pair),
                    None => per_node.push((e.handle.node.clone(), vec![pair])),
                }
            });
            if s.ready() {
                report.offline_users.retain(|u| !m.table.is_online(u));
            }
            if report.unknown_group && matches!(target, Target::Group(_)) && !sel.unknown_group {
                report.unknown_group = false;
            }
        }
        if per_node.is_empty() {
            return;
        }
        let up = s.ready();
        let envelope = frame.envelope();
        for (node, sessions) in per_node {
            if !up {
                // Redis is away: a user reachable only through another node stays offline
                // (stored, or its sender told); other sessions there failed.
                let failed = sessions
                    .into_iter()
                    .filter(|(u, _)| !report.offline_users.contains(u))
                    .map(|(u, c)| SessionFailure {
                        client_id: c,
                        user_id: u,
                        kind: crate::error::FailureKind::ConnectionError,
                    });
                report.failed.extend(failed);
                continue;
            }
            report.delivered += sessions.len();
            if collect {
                report.recipients.extend(sessions.iter().cloned());
            }
            let narrowed = narrowed(target, &sessions);
            let note = FailNote {
                envelope: envelope.clone(),
                sessions,
            };
            match wire::encode_delivery(&s.node, &narrowed, exclude, frame) {
                Ok(payload) => {
                    let d = lane::Delivery {
                        to: node,
                        payload,
                        fail: note,
                    };
                    if let Err(d) = lane::send(s, d) {
                        s.send(Cmd::Publish {
                            to: Some(d.to),
                            payload: d.payload,
                            fail: Some(d.fail),
                        });
                    }
                }
                Err(e) => {
                    log::error!("cluster: cannot encode a message for node {node}: {e}");
                    s.report(bus::note_failures(note, "cannot encode the message"));
                }
            }
        }
    }

    fn is_online(&self, user: &UserId) -> bool {
        self.shared.mirror().table.is_online(user)
    }

    fn owner(&self, client: &ClientId) -> Option<UserId> {
        self.shared
            .mirror()
            .table
            .get(client)
            .map(|e| e.info.user_id.clone())
    }

    fn session_changed(&self, client: &ClientId) {
        self.shared.send(Cmd::Touch(client.clone()));
    }

    fn close(&self, who: &CloseWho, code: CloseCode, reason: &str) -> usize {
        let s = &self.shared;
        let (n, node) = {
            let m = s.mirror();
            match who {
                CloseWho::User(u) => (m.table.user_sessions(u).count(), None),
                CloseWho::Client(c) => match m.table.get(c) {
                    Some(e) => (1, Some(e.handle.node.clone())),
                    None => (0, None),
                },
            }
        };
        if n == 0 {
            return 0;
        }
        let wire = Wire::Close {
            origin: s.node.to_string(),
            who: match who {
                CloseWho::User(u) => Who::User(u.clone()),
                CloseWho::Client(c) => Who::Client(c.clone()),
            },
            code: code.code(),
            reason: reason.to_owned(),
        };
        s.publish(node, &wire, None);
        n
    }

    fn group(&self, user: &UserId, group: &GroupId, join: bool) -> usize {
        let s = &self.shared;
        let n = s.mirror().table.user_sessions(user).count();
        if n > 0 {
            let wire = Wire::Group {
                origin: s.node.to_string(),
                user: user.clone(),
                group: group.clone(),
                join,
            };
            s.publish(None, &wire, None);
        }
        n
    }

    fn group_members(&self, group: &GroupId) -> Vec<(ClientId, UserId)> {
        self.shared
            .mirror()
            .table
            .group_clients(group)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.info.client_id.clone(), e.info.user_id.clone()))
            .collect()
    }

    fn online_users(&self) -> Vec<(UserId, usize)> {
        self.shared.mirror().table.online_users()
    }

    fn session_count(&self) -> usize {
        self.shared.mirror().table.session_count()
    }

    fn forward_ack(&self, user: &UserId, id: &MessageId, from: Option<&UserId>) {
        let s = &self.shared;
        let wire = Wire::Ack {
            origin: s.node.to_string(),
            user: user.clone(),
            id: id.clone(),
            from: from.cloned(),
        };
        s.publish(None, &wire, None);
    }

    fn stored_for(&self, user: &UserId) {
        // Published although no other node is known to hold the user: it may have connected
        // elsewhere a moment ago, after its backlog was read there.
        let s = &self.shared;
        let wire = Wire::Stored {
            origin: s.node.to_string(),
            user: user.clone(),
        };
        s.publish(None, &wire, None);
    }

    fn ready(&self) -> bool {
        self.shared.ready()
    }

    fn status(&self) -> ClusterStatus {
        let s = &self.shared;
        let mut nodes = vec![NodeStatus {
            node_id: s.node.to_string(),
            sessions: s.router.read().session_count(),
        }];
        nodes.extend(
            s.mirror()
                .nodes()
                .into_iter()
                .filter(|(n, _)| **n != *s.node)
                .map(|(node_id, sessions)| NodeStatus { node_id, sessions }),
        );
        ClusterStatus {
            node_id: s.node.to_string(),
            redis: if s.ready() { "up" } else { "down" },
            redis_errors: s.errors.load(Ordering::Relaxed),
            nodes,
            published: s.published.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
        }
    }
}

/// Delivers what another node sent to this node's sessions; what misses is reported here.
fn deliver_here(s: &Shared, payload: &[u8]) {
    match wire::decode_delivery(payload) {
        Ok((head, frame)) => {
            let report = s.router.route_frame_local(
                &head.target.to_target(),
                &frame,
                head.exclude.as_ref(),
                false,
            );
            s.rel.report(report.failures(frame.envelope()));
        }
        Err(e) => log::error!(
            "cluster: malformed delivery from another node ({} bytes): {e}",
            payload.len()
        ),
    }
}

/// A message from another node.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Inbound(pub Wire);

/// Every other live node's sessions, read after a (re)subscribe.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Snapshot {
    pub nodes: Vec<(String, Vec<SessionWire>)>,
}

/// One node's sessions, read again after it rewrote them.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct NodeSnapshot {
    pub node: String,
    pub sessions: Vec<SessionWire>,
}

/// This node took over a dead node: its records that were not settled (JSON).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reaped {
    pub node: String,
    pub records: Vec<String>,
    pub delayed: Vec<String>,
}

/// Acts on what other nodes say: deliveries to local sessions, acks for records held here,
/// closes, group changes, presence.
pub(crate) struct ClusterActor {
    shared: Arc<Shared>,
    hub: Addr<Hub>,
}

impl Actor for ClusterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl ClusterActor {
    /// Users that have no session left anywhere: what awaited their ack is stored.
    fn gone(&self, users: Vec<UserId>) {
        for u in users {
            if !self.shared.router.is_online_anywhere(&u) {
                self.shared.rel.user_gone_everywhere(&u);
            }
        }
    }

    fn to_hub<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        Hub: Handler<M>,
    {
        if let Err(e) = self.hub.try_send(msg) {
            log::error!("cluster: the hub cannot take a message from another node: {e}");
        }
    }
}

impl Handler<Inbound> for ClusterActor {
    type Result = ();

    fn handle(&mut self, Inbound(wire): Inbound, _: &mut Context<Self>) {
        let s = &self.shared;
        match wire {
            Wire::Ack { user, id, from, .. } => {
                s.rel.ack_here(&user, &id, from.as_ref());
            }
            Wire::Close {
                who, code, reason, ..
            } => {
                let who = match who {
                    Who::User(u) => CloseWho::User(u),
                    Who::Client(c) => CloseWho::Client(c),
                };
                let code = CloseCode::from_code(code);
                self.to_hub(CloseLocal { who, code, reason });
            }
            Wire::Group {
                user, group, join, ..
            } => self.to_hub(GroupLocal { user, group, join }),
            Wire::Up { node, session } => {
                let gone = s.mirror_mut().up(&node, session);
                self.gone(gone);
            }
            Wire::Down { node, client } => {
                let gone = s.mirror_mut().down(&node, &client);
                self.gone(gone);
            }
            Wire::NodeDown { node, .. } => {
                if node == *s.node {
                    // Another node took us for dead (a pause longer than the TTL): the
                    // writer notices its missing heartbeat and writes presence again.
                    log::warn!("cluster: another node declared this node dead");
                    return;
                }
                let gone = s.mirror_mut().replace_node(&node, None);
                log::info!(
                    "cluster: node {node} left; {} users went offline with it",
                    gone.len()
                );
                self.gone(gone);
            }
            Wire::Stored { user, .. } => {
                if s.router.read().is_online(&user) {
                    self.to_hub(RedeliverStored { user });
                }
            }
            Wire::Resync { .. } => {}
        }
    }
}

impl Handler<Snapshot> for ClusterActor {
    type Result = ();

    fn handle(&mut self, msg: Snapshot, _: &mut Context<Self>) {
        let n = msg.nodes.len();
        let gone = self.shared.mirror_mut().replace_all(msg.nodes);
        log::info!("cluster: {n} other live nodes");
        self.gone(gone);
    }
}

impl Handler<NodeSnapshot> for ClusterActor {
    type Result = ();

    fn handle(&mut self, msg: NodeSnapshot, _: &mut Context<Self>) {
        let gone = self
            .shared
            .mirror_mut()
            .replace_node(&msg.node, Some(msg.sessions));
        self.gone(gone);
    }
}

impl Handler<Reaped> for ClusterActor {
    type Result = ();

    fn handle(&mut self, msg: Reaped, _: &mut Context<Self>) {
        let s = &self.shared;
        let gone = s.mirror_mut().replace_node(&msg.node, None);
        let records: Vec<MessageRecord> = msg
            .records
            .iter()
            .filter_map(|json| match serde_json::from_str(json) {
                Ok(r) => Some(r),
                Err(e) => {
                    log::error!("cluster: unreadable record of dead node {}: {e}", msg.node);
                    None
                }
            })
            .collect();
        s.rel.adopt(records);
        let delayed: Vec<crate::store::DelayedItem> = msg
            .delayed
            .iter()
            .filter_map(|json| match serde_json::from_str(json) {
                Ok(d) => Some(d),
                Err(e) => {
                    log::error!(
                        "cluster: unreadable delayed message of dead node {}: {e}",
                        msg.node
                    );
                    None
                }
            })
            .collect();
        if !delayed.is_empty() {
            self.to_hub(AdoptDelayed { items: delayed });
        }
        self.gone(gone);
    }
}
