//! The [`WscClient`] actor: its state and its connection lifecycle (dial, welcome, drop,
//! backoff, reconnect, close). Commands are in `commands.rs`, server frames in `inbound.rs`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::backoff::Backoff;
use super::config::ClientConfig;
use super::connection::{self, ConnEvent, ConnEventKind, Ending, Outbound, Timings};
use super::dedup::DedupWindow;
use super::dial::DialRequest;
use super::error::{DialError, FlushError, ReceiptError, SendFailure, StopReason};
use super::events::{notify, ClientEvents, Closed, ConnectFailed, Disconnected, SendFailed};
use super::frame::{OutgoingMessage, Receipt};
use super::messages::ClientState;
use crate::error::ConfigError;
use crate::protocol::{ClientId, GroupId, MessageId};

/// A frame waiting for its receipt.
pub(super) struct PendingReceipt {
    pub(super) message: OutgoingMessage,
    pub(super) reply: oneshot::Sender<Result<Receipt, ReceiptError>>,
    pub(super) timer: SpawnHandle,
}

/// The reconnecting WebSocket client (see the [module docs](super)).
pub struct WscClient {
    pub(super) config: ClientConfig,
    /// TLS settings for a `wss://` url (read once, at construction).
    pub(super) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub(super) events: ClientEvents,
    pub(super) state: ClientState,
    /// Serial number of the current connection attempt; reports of older ones are stale.
    pub(super) gen: u64,
    /// The current connection's writer, once upgraded.
    pub(super) conn: Option<mpsc::UnboundedSender<Outbound>>,
    /// The writer of the connection being dialed.
    pending_conn: Option<mpsc::UnboundedSender<Outbound>>,
    /// A dial is in progress.
    pub(super) dialing: bool,
    /// The current connection got its welcome frame.
    pub(super) welcomed: bool,
    pub(super) ever_connected: bool,
    /// Application frames not yet handed to a connection, oldest first.
    pub(super) outbox: VecDeque<OutgoingMessage>,
    /// Application frames handed to the connection and not yet reported written.
    pub(super) in_flight: usize,
    /// Frames waiting for their receipt, by id. The id alone names them: they are all this
    /// user's own messages (ids are unique per sender), and receipts go to the sending session.
    pub(super) receipts: HashMap<MessageId, PendingReceipt>,
    /// Join frames sent to restore membership after a reconnect, by id.
    pub(super) rejoins: HashMap<MessageId, OutgoingMessage>,
    /// Groups to be in on every connection.
    pub(super) groups: BTreeSet<GroupId>,
    pub(super) dedup: DedupWindow,
    pub(super) backoff: Backoff,
    /// The configured client id, or the one the server assigned (reused on reconnect).
    pub(super) client_id: Option<ClientId>,
    pub(super) closing: bool,
    pub(super) close_waiters: Vec<oneshot::Sender<()>>,
    pub(super) flush_waiters: Vec<oneshot::Sender<Result<(), FlushError>>>,
    pub(super) reconnect_timer: Option<SpawnHandle>,
    pub(super) close_timer: Option<SpawnHandle>,
    id_prefix: String,
    next_id: u64,
}

impl WscClient {
    /// A client for `config` (validated); start it with [`Actor::start`].
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let tls = if config.url.starts_with("wss://") {
            let c = crate::tls::client_config(config.tls_ca_file.as_deref())
                .map_err(|e| ConfigError::new("tls_ca_file", e.to_string()))?;
            Some(std::sync::Arc::new(c))
        } else {
            None
        };
        let backoff = Backoff::new(
            Duration::from_millis(config.min_reconnect_ms),
            Duration::from_millis(config.max_reconnect_ms),
            config.reconnect_factor,
        );
        let id_prefix = format!("{:08x}", rand::random::<u32>());
        Ok(WscClient {
            tls,
            groups: config
                .groups
                .iter()
                .map(|g| GroupId::from(g.as_str()))
                .collect(),
            dedup: DedupWindow::new(config.dedup_window),
            client_id: config.client_id.as_deref().map(ClientId::from),
            config,
            events: ClientEvents::default(),
            state: ClientState::Connecting,
            gen: 0,
            conn: None,
            pending_conn: None,
            dialing: false,
            welcomed: false,
            ever_connected: false,
            outbox: VecDeque::new(),
            in_flight: 0,
            receipts: HashMap::new(),
            rejoins: HashMap::new(),
            backoff,
            closing: false,
            close_waiters: Vec::new(),
            flush_waiters: Vec::new(),
            reconnect_timer: None,
            close_timer: None,
            id_prefix,
            next_id: 0,
        })
    }

    /// Sets the recipients of the client's events.
    pub fn with_events(mut self, events: ClientEvents) -> Self {
        self.events = events;
        self
    }

    /// A fresh id for a frame this client sends: unique per client (random prefix, counter).
    pub(super) fn fresh_id(&mut self) -> MessageId {
        self.next_id += 1;
        MessageId::from(format!("{}-{}", self.id_prefix, self.next_id))
    }

    fn timings(&self) -> Timings {
        Timings {
            ping_interval: Duration::from_millis(self.config.ping_interval_ms),
            server_timeout: Duration::from_millis(self.config.server_timeout_ms),
            close_timeout: Duration::from_millis(self.config.close_timeout_ms),
        }
    }

    /// Starts a connection attempt (a connection task that dials, then serves).
    pub(super) fn dial(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.reconnect_timer.take() {
            ctx.cancel_future(t);
        }
        self.gen += 1;
        self.dialing = true;
        let (tx, rx) = mpsc::unbounded_channel();
        // Held back until the upgrade succeeds; dropping it ends the task.
        self.conn = None;
        let req = DialRequest::new(&self.config, self.client_id.as_ref(), self.tls.clone());
        log::debug!(
            "connecting user_id={} gen={} url={}",
            self.config.user_id,
            self.gen,
            self.config.url
        );
        let task = connection::run(req, rx, ctx.address().downgrade(), self.gen, self.timings());
        actix_rt::spawn(task);
        self.pending_conn = Some(tx);
    }
}

impl Actor for WscClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        log::info!(
            "client starting user_id={} url={}",
            self.config.user_id,
            self.config.url
        );
        self.dial(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Dropping the writers ends the connection task; waiters see their channel close.
        log::debug!("client actor stopped user_id={}", self.config.user_id);
    }
}

impl Handler<ConnEvent> for WscClient {
    type Result = ();

    fn handle(&mut self, ev: ConnEvent, ctx: &mut Context<Self>) {
        if ev.gen != self.gen {
            // Only an abandoned connection reports late; give back what it did not write.
            if let ConnEventKind::Ended(ending) = ev.kind {
                self.give_back(ending.unwritten);
            }
            return;
        }
        match ev.kind {
            ConnEventKind::Dialed(Ok(())) => self.on_upgraded(ctx),
            ConnEventKind::Dialed(Err(e)) => self.on_dial_failed(e, ctx),
            ConnEventKind::Text(text) => self.on_text(text, ctx),
            ConnEventKind::Ping => notify(&self.events.ping, || super::events::Ping),
            ConnEventKind::Pong(rtt) => notify(&self.events.pong, || super::events::Pong { rtt }),
            ConnEventKind::Written(ids) => self.on_written(ids),
            ConnEventKind::Ended(ending) => self.on_ended(ending, ctx),
        }
    }
}

impl WscClient {
    fn on_upgraded(&mut self, ctx: &mut Context<Self>) {
        self.dialing = false;
        let Some(tx) = self.pending_conn.take() else {
            return;
        };
        if self.state == ClientState::Closed {
            // Closed while dialing: say goodbye properly.
            let _ = tx.send(Outbound::Close);
            return;
        }
        log::debug!(
            "upgraded user_id={} client_id={:?} gen={}",
            self.config.user_id,
            self.client_id.as_ref().map(ClientId::as_str),
            self.gen
        );
        self.state = ClientState::Connected;
        self.welcomed = false;
        self.conn = Some(tx);
        if !self.closing {
            self.rejoin_groups();
        }
        self.hand_off_outbox();
        if self.closing {
            if let Some(t) = self.close_timer.take() {
                ctx.cancel_future(t);
            }
            self.send_outbound(Outbound::Close);
        }
    }

    /// Joins every remembered group on a new connection.
    fn rejoin_groups(&mut self) {
        self.rejoins.clear();
        let groups: Vec<GroupId> = self.groups.iter().cloned().collect();
        for group in groups {
            let id = self.fresh_id();
            let join = OutgoingMessage::join(group).with_id(id.clone());
            self.send_outbound(Outbound::Control(join.encode()));
            self.rejoins.insert(id, join);
        }
    }

    /// Hands every queued frame to the connection, in order.
    pub(super) fn hand_off_outbox(&mut self) {
        while self.conn.is_some() {
            let Some(message) = self.outbox.pop_front() else {
                break;
            };
            self.hand_off(message);
        }
    }

    /// Hands one frame to the connection, or queues it when there is none (any more).
    pub(super) fn hand_off(&mut self, message: OutgoingMessage) {
        let Some(tx) = &self.conn else {
            self.outbox.push_back(message);
            return;
        };
        let Some(id) = message.id.clone() else {
            log::error!("frame without an id reached the writer; dropping it");
            return;
        };
        let text = message.encode();
        match tx.send(Outbound::Frame { id, text, message }) {
            Ok(()) => self.in_flight += 1,
            Err(mpsc::error::SendError(Outbound::Frame { message, .. })) => {
                // The task ended; its Ended report gives back what it held, before this.
                self.conn = None;
                self.outbox.push_back(message);
            }
            Err(_) => {}
        }
    }

    /// Sends a control frame; `false` when there is no connection.
    pub(super) fn send_outbound(&mut self, out: Outbound) -> bool {
        match &self.conn {
            Some(tx) => tx.send(out).is_ok(),
            None => false,
        }
    }

    fn on_written(&mut self, ids: Vec<MessageId>) {
        self.in_flight = self.in_flight.saturating_sub(ids.len());
        for id in ids {
            notify(&self.events.sent, || super::events::Sent { id });
        }
        self.check_flush();
    }

    pub(super) fn check_flush(&mut self) {
        if self.outbox.is_empty() && self.in_flight == 0 {
            for w in self.flush_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
        }
    }

    /// Puts frames a connection did not write back at the front of the queue (they are
    /// older than anything queued since), or reports them when the client is closed.
    fn give_back(&mut self, unwritten: Vec<OutgoingMessage>) {
        if self.state == ClientState::Closed {
            for message in unwritten {
                self.report_unsent(message);
            }
            return;
        }
        for message in unwritten.into_iter().rev() {
            self.outbox.push_front(message);
        }
    }

    fn report_unsent(&mut self, message: OutgoingMessage) {
        notify(&self.events.send_failed, || SendFailed {
            id: message.id.clone(),
            message: Some(message),
            reason: SendFailure::Closed,
        });
    }

    fn on_dial_failed(&mut self, error: DialError, ctx: &mut Context<Self>) {
        self.dialing = false;
        self.pending_conn = None;
        if self.state == ClientState::Closed {
            return;
        }
        let attempt = self.backoff.attempt() + 1;
        let max = self.config.max_reconnect_attempts;
        let exhausted = max > 0 && attempt >= max;
        let retry = error.is_retryable() && !exhausted;
        log::warn!(
            "connect failed user_id={} attempt={attempt}: {error}{}",
            self.config.user_id,
            if retry { "" } else { "; giving up" }
        );
        if !retry {
            notify(&self.events.connect_failed, || ConnectFailed {
                error: error.clone(),
                attempt,
                will_reconnect: false,
                retry_in: None,
            });
            let reason = if error.is_retryable() {
                StopReason::RetriesExhausted { attempts: attempt }
            } else {
                StopReason::Refused(error)
            };
            return self.finish_close(reason, ctx);
        }
        let delay = self.schedule_reconnect(ctx);
        notify(&self.events.connect_failed, || ConnectFailed {
            error,
            attempt,
            will_reconnect: true,
            retry_in: Some(delay),
        });
    }

    /// Arms the reconnect timer with the next backoff delay.
    fn schedule_reconnect(&mut self, ctx: &mut Context<Self>) -> Duration {
        let delay = self.backoff.next_delay(&mut rand::thread_rng());
        if self.state != ClientState::Connecting {
            self.state = ClientState::Reconnecting;
        }
        if let Some(t) = self.reconnect_timer.take() {
            ctx.cancel_future(t);
        }
        self.reconnect_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.reconnect_timer = None;
            if act.state != ClientState::Closed {
                act.dial(ctx);
            }
        }));
        delay
    }

    fn on_ended(&mut self, ending: Ending, ctx: &mut Context<Self>) {
        let Ending {
            close,
            cause,
            unwritten,
        } = ending;
        self.conn = None;
        self.in_flight = 0;
        self.rejoins.clear();
        self.give_back(unwritten);
        if self.state == ClientState::Closed {
            // A connection that came up after the client closed, said goodbye and ended.
            return;
        }
        let was_welcomed = std::mem::replace(&mut self.welcomed, false);
        let (code, reason) = match &close {
            Some((code, reason)) => (Some(*code), reason.clone()),
            None => (None, cause),
        };
        log::info!(
            "disconnected user_id={} code={:?} reason={reason}",
            self.config.user_id,
            code.map(|c| c.code())
        );
        if self.closing {
            notify(&self.events.disconnected, || Disconnected {
                code,
                reason,
                will_reconnect: false,
                retry_in: None,
            });
            return self.finish_close(StopReason::ClientClosed, ctx);
        }
        let reconnect = code.is_none_or(|c| c.should_reconnect());
        let max = self.config.max_reconnect_attempts;
        // A connection dropped before its welcome counts as a failed attempt.
        let exhausted = !was_welcomed && max > 0 && self.backoff.attempt() + 1 >= max;
        if reconnect && !exhausted {
            let delay = self.schedule_reconnect(ctx);
            self.state = ClientState::Reconnecting;
            notify(&self.events.disconnected, || Disconnected {
                code,
                reason,
                will_reconnect: true,
                retry_in: Some(delay),
            });
            return;
        }
        notify(&self.events.disconnected, || Disconnected {
            code,
            reason: reason.clone(),
            will_reconnect: false,
            retry_in: None,
        });
        let stop = match code {
            Some(code) if !reconnect => StopReason::ServerClosed { code, reason },
            _ => StopReason::RetriesExhausted {
                attempts: self.backoff.attempt() + 1,
            },
        };
        self.finish_close(stop, ctx);
    }

    /// Stops for good: reports every frame still held, fails pending receipts and flushes,
    /// wakes `Close` callers, and sends `Closed`.
    pub(super) fn finish_close(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        if self.state == ClientState::Closed {
            return;
        }
        log::info!("client closed user_id={}: {reason}", self.config.user_id);
        self.state = ClientState::Closed;
        self.closing = false;
        for t in [self.reconnect_timer.take(), self.close_timer.take()]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(t);
        }
        if let Some(tx) = self.conn.take() {
            // Still connected (the close deadline passed): end the connection.
            let _ = tx.send(Outbound::Close);
        }
        let unsent: Vec<OutgoingMessage> = self.outbox.drain(..).collect();
        for message in unsent {
            self.report_unsent(message);
        }
        for (_, pending) in self.receipts.drain() {
            ctx.cancel_future(pending.timer);
            let _ = pending
                .reply
                .send(Err(ReceiptError::Closed(pending.message)));
        }
        self.rejoins.clear();
        let flushed = self.in_flight == 0;
        for w in self.flush_waiters.drain(..) {
            let _ = w.send(if flushed {
                Ok(())
            } else {
                Err(FlushError::Closed)
            });
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(());
        }
        notify(&self.events.closed, || Closed { reason });
    }
}
