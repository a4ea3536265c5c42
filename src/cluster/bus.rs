//! The writer thread: every publish, presence write and heartbeat of this node goes through
//! one Redis connection, pipelined (all commands waiting are sent in one round trip), so a
//! node's messages leave in the order they were made. It reconnects by itself; while Redis
//! is away, deliveries to other nodes fail to the handlers at once and presence is written
//! again in full on reconnect.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Connection, Script, Value};

use super::wire::{SessionWire, Wire};
use super::{Reaped, Shared};
use crate::error::FailureKind;
use crate::model::{failure, now_ms, DeliveryFailed};
use crate::protocol::{ClientId, Envelope, UserId};

/// Commands sent per round trip at most.
const BATCH: usize = 1024;
/// Wait between reconnect attempts.
const RECONNECT_EVERY: Duration = Duration::from_millis(200);

/// Who to tell when a delivery to another node cannot be made.
pub(crate) struct FailNote {
    pub envelope: Arc<Envelope>,
    pub sessions: Vec<(UserId, ClientId)>,
}

/// What the writer thread does.
pub(crate) enum Cmd {
    /// Publish `payload` to one node (`Some`) or to all. A node-directed publish nobody
    /// receives (the node is gone) fails `fail`'s sessions.
    Publish {
        to: Option<Arc<str>>,
        payload: Vec<u8>,
        fail: Option<FailNote>,
    },
    /// A local session changed: write and announce its current state.
    Touch(ClientId),
    /// Leave the cluster (graceful shutdown): presence removed, others told.
    Stop(std::sync::mpsc::Sender<()>),
}

const REAP: &str = r#"
local p, dead, me, cutoff = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local score = redis.call('ZSCORE', p .. ':cl:nodes', dead)
if (not score) or tonumber(score) >= cutoff then
  return {}
end
redis.call('ZREM', p .. ':cl:nodes', dead)
redis.call('DEL', p .. ':cl:sess:' .. dead)
local out = {'reaped', '0'}
local keys = redis.call('SMEMBERS', p .. ':recown:' .. dead)
for _, k in ipairs(keys) do
  redis.call('SADD', p .. ':recown:' .. me, k)
  redis.call('HSET', p .. ':recowner', k, me)
  if not redis.call('ZSCORE', p .. ':recfinal', k) then
    local rec = redis.call('HGET', p .. ':rec', k)
    if rec then
      table.insert(out, rec)
    end
  end
end
redis.call('DEL', p .. ':recown:' .. dead)
out[2] = tostring(#out - 2)
local delayed = redis.call('HGETALL', p .. ':delayed:' .. dead)
for j = 1, #delayed, 2 do
  redis.call('HSET', p .. ':delayed:' .. me, delayed[j], delayed[j + 1])
  table.insert(out, delayed[j + 1])
end
redis.call('DEL', p .. ':delayed:' .. dead)
redis.call('PUBLISH', p .. ':cl:all', cjson.encode({t = 'node_down', node = dead, by = me}))
return out
"#;

/// What one pipeline answered, and which replies matter.
struct Round {
    values: Vec<Value>,
    /// Reply index of each node-directed publish with a failure note, in batch order.
    watched: Vec<usize>,
    /// Reply index of the heartbeat, when one was sent.
    beat_at: Option<usize>,
    /// The full presence was written.
    full: bool,
}

struct Writer {
    shared: Arc<Shared>,
    conn: Option<Connection>,
    connected_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Presence must be written in full (first connect, after an outage, after being reaped).
    dirty: bool,
    next_beat: Instant,
    reap: Script,
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Cmd>) {
    let mut w = Writer {
        shared,
        conn: None,
        connected_at: None,
        last_attempt: None,
        dirty: true,
        next_beat: Instant::now(),
        reap: Script::new(REAP),
    };
    loop {
        let wait = w.next_beat.saturating_duration_since(Instant::now());
        let mut batch = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(c) => batch.push(c),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        if let Some(pos) = batch.iter().position(|c| matches!(c, Cmd::Stop(_))) {
            let rest = batch.split_off(pos);
            w.round(batch);
            if let Some(Cmd::Stop(done)) = rest.into_iter().next() {
                w.leave();
                if done.send(()).is_err() {
                    log::debug!("cluster: nobody waited for the leave");
                }
            }
            return;
        }
        w.round(batch);
    }
}

impl Writer {
    fn down(&mut self, why: &str) {
        if self.conn.take().is_some() || self.shared.bus_up.load(Ordering::Relaxed) {
            log::error!(
                "cluster: lost Redis at {} (writer): {why}; deliveries to other nodes fail until it is back",
                crate::store::redacted_url(&self.shared.url)
            );
        }
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        self.shared.bus_up.store(false, Ordering::Release);
        self.connected_at = None;
        self.dirty = true;
    }

    fn ensure_connected(&mut self) {
        if self.conn.is_some() {
            return;
        }
        if self
            .last_attempt
            .is_some_and(|t| t.elapsed() < RECONNECT_EVERY)
        {
            return;
        }
        self.last_attempt = Some(Instant::now());
        match super::connect(&self.shared.url) {
            Ok(c) => {
                log::info!(
                    "cluster: writer connected to Redis at {}",
                    crate::store::redacted_url(&self.shared.url)
                );
                self.conn = Some(c);
                self.connected_at = Some(Instant::now());
                self.dirty = true;
            }
            Err(e) => {
                if self.shared.bus_up.swap(false, Ordering::AcqRel) {
                    log::error!("cluster: cannot reach Redis: {e}");
                }
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One round trip: the batch, the full presence when dirty, the heartbeat when due. A
    /// connection that turns out dead (Redis restarted under it) is replaced and the round
    /// sent once more before anything is given up.
    fn round(&mut self, batch: Vec<Cmd>) {
        if self.shared.stale.swap(false, Ordering::AcqRel) && self.conn.is_some() {
            // The listener lost Redis: this connection is likely dead too.
            self.conn = None;
            self.last_attempt = None;
        }
        self.ensure_connected();
        if self.conn.is_none() {
            self.fail_all(batch, "Redis unreachable");
            // The next attempt (and heartbeat) when the reconnect pause is over, not at once.
            self.next_beat = Instant::now() + RECONNECT_EVERY;
            return;
        }
        let beat = Instant::now() >= self.next_beat;
        let mut sent = self.send_round(&batch, beat);
        if let Err(e) = &sent {
            self.down(&e.to_string());
            self.last_attempt = None;
            self.ensure_connected();
            if self.conn.is_some() {
                sent = self.send_round(&batch, beat);
                if let Err(e) = &sent {
                    self.down(&e.to_string());
                }
            }
        }
        if beat {
            self.next_beat = Instant::now() + Duration::from_millis(self.shared.heartbeat_ms);
        }
        let s = self.shared.clone();
        let notes = batch.into_iter().filter_map(|c| match c {
            Cmd::Publish {
                to: Some(node),
                fail: Some(note),
                ..
            } => Some((node, note)),
            _ => None,
        });
        match sent {
            Ok(Round {
                values,
                watched,
                beat_at,
                full,
            }) => {
                s.bus_up.store(true, Ordering::Release);
                if full {
                    self.dirty = false;
                }
                let mut failures = Vec::new();
                for ((node, note), i) in notes.zip(watched) {
                    match values.get(i) {
                        Some(Value::Int(n)) if *n > 0 => {
                            s.published.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => failures.extend(note_failures(
                            note,
                            &format!("node {node} is not listening (gone?)"),
                        )),
                    }
                }
                s.report(failures);
                if let Some(at) = beat_at {
                    // 1: our entry was missing (reaped while we were away): write it all again.
                    if matches!(values.get(at), Some(Value::Int(1))) && !full {
                        log::warn!(
                            "cluster: node {} was missing from the node list; writing its presence again",
                            s.node
                        );
                        self.dirty = true;
                    }
                    self.reap_dead();
                }
            }
            Err(e) => {
                let failures = notes
                    .flat_map(|(_, n)| note_failures(n, &format!("Redis error: {e}")))
                    .collect();
                s.report(failures);
            }
        }
    }

    /// Builds and sends one pipeline for `batch`.
    fn send_round(&mut self, batch: &[Cmd], beat: bool) -> redis::RedisResult<Round> {
        let s = self.shared.clone();
        let mut pipe = redis::pipe();
        let mut watched = Vec::new();
        let mut replies = 0usize;
        let full = self.dirty;
        if full {
            self.full_presence(&mut pipe);
        }
        for cmd in batch {
            match cmd {
                Cmd::Publish { to, payload, fail } => {
                    let chan = match to {
                        Some(n) => s.chan_node(n),
                        None => s.chan_all(),
                    };
                    pipe.cmd("PUBLISH").arg(chan).arg(&payload[..]);
                    if to.is_some() && fail.is_some() {
                        watched.push(replies);
                    }
                    replies += 1;
                }
                Cmd::Touch(client) => self.touch(&mut pipe, client),
                Cmd::Stop(_) => {}
            }
        }
        let beat_at = beat.then(|| {
            pipe.cmd("ZADD")
                .arg(s.key_nodes())
                .arg(now_ms())
                .arg(&*s.node);
            replies
        });
        if !full && batch.is_empty() && beat_at.is_none() {
            return Ok(Round {
                values: Vec::new(),
                watched,
                beat_at,
                full,
            });
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Io, "not connected")))?;
        let values = pipe.query::<Vec<Value>>(conn)?;
        Ok(Round {
            values,
            watched,
            beat_at,
            full,
        })
    }

    fn fail_all(&mut self, batch: Vec<Cmd>, why: &str) {
        let mut failures = Vec::new();
        for cmd in batch {
            match cmd {
                Cmd::Publish {
                    fail: Some(note), ..
                } => failures.extend(note_failures(note, why)),
                Cmd::Publish { to, .. } => {
                    log::warn!(
                        "cluster: a message to {} was not sent: {why}",
                        to.as_deref().unwrap_or("all nodes")
                    );
                }
                Cmd::Touch(_) => self.dirty = true,
                Cmd::Stop(_) => {}
            }
        }
        self.shared.report(failures);
    }

    /// This node's sessions, written anew (no replies: all ignored).
    fn full_presence(&self, pipe: &mut redis::Pipeline) {
        let s = &self.shared;
        let key = s.key_sessions(&s.node);
        let table = s.router.read();
        pipe.cmd("MULTI").ignore();
        pipe.cmd("DEL").arg(&key).ignore();
        for e in table.sessions() {
            let json =
                serde_json::to_string(&SessionWire::of(&e.info, e.groups())).unwrap_or_default();
            pipe.cmd("HSET")
                .arg(&key)
                .arg(e.info.client_id.as_str())
                .arg(json)
                .ignore();
        }
        drop(table);
        pipe.cmd("ZADD")
            .arg(s.key_nodes())
            .arg(now_ms())
            .arg(&*s.node)
            .ignore();
        let resync = Wire::Resync {
            node: s.node.to_string(),
        };
        pipe.cmd("PUBLISH")
            .arg(s.chan_all())
            .arg(serde_json::to_string(&resync).unwrap_or_default())
            .ignore();
        pipe.cmd("EXEC").ignore();
    }

    /// One session's current state: written and announced (no replies: all ignored).
    fn touch(&self, pipe: &mut redis::Pipeline, client: &ClientId) {
        let s = &self.shared;
        let key = s.key_sessions(&s.node);
        let now = s
            .router
            .read()
            .get(client)
            .map(|e| SessionWire::of(&e.info, e.groups()));
        let msg = match now {
            Some(session) => {
                let json = serde_json::to_string(&session).unwrap_or_default();
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg(client.as_str())
                    .arg(json)
                    .ignore();
                Wire::Up {
                    node: s.node.to_string(),
                    session,
                }
            }
            None => {
                pipe.cmd("HDEL").arg(&key).arg(client.as_str()).ignore();
                Wire::Down {
                    node: s.node.to_string(),
                    client: client.clone(),
                }
            }
        };
        pipe.cmd("PUBLISH")
            .arg(s.chan_all())
            .arg(serde_json::to_string(&msg).unwrap_or_default())
            .ignore();
    }

    /// Nodes whose heartbeat is older than the TTL: the first live node to see one takes it
    /// over (its presence removed, its records adopted). Only after this node has been
    /// connected for a TTL itself, so that nodes that were cut off with it can renew first.
    fn reap_dead(&mut self) {
        let s = self.shared.clone();
        let settled = self
            .connected_at
            .is_some_and(|t| t.elapsed() >= Duration::from_millis(s.ttl_ms));
        if !settled {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let cutoff = now_ms().saturating_sub(s.ttl_ms);
        let stale: Vec<String> = match redis::cmd("ZRANGEBYSCORE")
            .arg(s.key_nodes())
            .arg("-inf")
            .arg(format!("({cutoff}"))
            .query(conn)
        {
            Ok(v) => v,
            Err(e) => {
                self.down(&e.to_string());
                return;
            }
        };
        for dead in stale.into_iter().filter(|n| *n != *s.node) {
            let out: Result<Vec<String>, _> = self
                .reap
                .arg(&s.prefix)
                .arg(&dead)
                .arg(&*s.node)
                .arg(cutoff)
                .invoke(conn);
            match out {
                Ok(v) if v.first().map(String::as_str) == Some("reaped") => {
                    let n: usize = v.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                    let mut rest = v.into_iter().skip(2);
                    let records: Vec<String> = rest.by_ref().take(n).collect();
                    let delayed: Vec<String> = rest.collect();
                    log::warn!(
                        "cluster: node {dead} missed its heartbeat for {} ms: taken over ({} records not settled, {} delayed messages adopted)",
                        s.ttl_ms,
                        records.len(),
                        delayed.len()
                    );
                    s.to_inbound(Reaped {
                        node: dead,
                        records,
                        delayed,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    self.down(&e.to_string());
                    return;
                }
            }
        }
    }

    /// Graceful leave: presence removed, the others told (they see the sessions' own downs
    /// first, as those were published before).
    fn leave(&mut self) {
        self.ensure_connected();
        let s = self.shared.clone();
        let Some(conn) = self.conn.as_mut() else {
            log::warn!("cluster: leaving without Redis: the other nodes see this node expire");
            return;
        };
        let bye = Wire::NodeDown {
            node: s.node.to_string(),
            by: s.node.to_string(),
        };
        let res = redis::pipe()
            .cmd("ZREM")
            .arg(s.key_nodes())
            .arg(&*s.node)
            .ignore()
            .cmd("DEL")
            .arg(s.key_sessions(&s.node))
            .ignore()
            .cmd("PUBLISH")
            .arg(s.chan_all())
            .arg(serde_json::to_string(&bye).unwrap_or_default())
            .ignore()
            .query::<()>(conn);
        match res {
            Ok(()) => log::info!("cluster: node {} left the cluster", s.node),
            Err(e) => {
                log::error!("cluster: leaving failed ({e}): the other nodes see this node expire")
            }
        }
    }
}

pub(crate) fn note_failures(note: FailNote, why: &str) -> Vec<DeliveryFailed> {
    note.sessions
        .into_iter()
        .map(|(u, c)| {
            failure(
                FailureKind::ConnectionError,
                &note.envelope,
                Some(u),
                Some(c),
                format!("cluster: delivery to another node failed: {why}"),
            )
        })
        .collect()
}
