//! The hub's reliable-delivery API: send with ack, send with retry, retry failed messages,
//! and the message records.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;

use super::{Hub, RouteReport, Target};
use crate::error::FailureKind;
use crate::model::{Attempt, MessageKey, MessageRecord, MessageStatus};
use crate::protocol::{Envelope, MessageId, UserId};
use crate::store::StoreError;
use crate::supervision::{RetryFailed, TrackOptions};

/// Routes a message with a record (so `/api/messages/{id}` can show what happened),
/// requiring acks and retrying as `options` say, and stores it for offline recipients
/// (answering once it is durable).
#[derive(Message)]
#[rtype(result = "SendReport")]
pub struct SendTracked {
    /// Who gets it.
    pub target: Target,
    /// The message.
    pub envelope: Envelope,
    /// Ack and retry options (see [`crate::supervision::Reliability::default_options`]).
    pub options: Option<TrackOptions>,
    /// Application tags kept on the record.
    pub tags: Vec<String>,
    /// After this long the message is not sent again (overrides `options`).
    pub expires_in: Option<Duration>,
}

impl SendTracked {
    /// Default options from the configuration, no tags, no expiry.
    pub fn new(target: Target, envelope: Envelope) -> Self {
        SendTracked {
            target,
            envelope,
            options: None,
            tags: Vec::new(),
            expires_in: None,
        }
    }
}

/// Which records [`QueryRecords`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFilter {
    /// Records with this status.
    Status(MessageStatus),
    /// Records in any failure status.
    Failed,
    /// Failed records that may still be retried (not expired).
    Retryable,
}

/// Lists records, oldest first, at most `limit`.
#[derive(Message)]
#[rtype(result = "Vec<MessageRecord>")]
pub struct QueryRecords {
    /// Which.
    pub filter: RecordFilter,
    /// At most this many.
    pub limit: usize,
}

/// What [`SendTracked`] did.
#[derive(Debug, Clone)]
pub struct SendReport {
    /// Routing to live sessions.
    pub route: RouteReport,
    /// Offline users the message is durably stored for.
    pub stored_offline: Vec<UserId>,
    /// Storing failed (the failure handlers heard about it too).
    pub store_error: Option<StoreError>,
    /// The hub took responsibility for the live part (see [`crate::delivery::Sent`]).
    pub accepted: bool,
}

/// Per-call overrides for [`SendWithAck`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AckOptions {
    /// ACK wait per attempt (defaults to `ack.ack_timeout_ms`).
    pub timeout: Option<Duration>,
    /// Resends (defaults to `retry.max_retries`).
    pub max_retries: Option<u32>,
}

/// Sends to every session of a user and waits until the user acknowledges or the last
/// resend times out.
#[derive(Message)]
#[rtype(result = "DeliveryOutcome")]
pub struct SendWithAck {
    /// The user.
    pub user_id: UserId,
    /// The message (`require_ack` is set for you).
    pub envelope: Envelope,
    /// Overrides.
    pub options: AckOptions,
}

/// Sends to a user, retrying routing failures (queue full, connection errors) with backoff.
#[derive(Message)]
#[rtype(result = "DeliveryOutcome")]
pub struct SendWithRetry {
    /// The user.
    pub user_id: UserId,
    /// The message.
    pub envelope: Envelope,
}

/// How a tracked send ended.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    /// The message id.
    pub id: MessageId,
    /// Delivered (and acknowledged, when acks were required).
    pub success: bool,
    /// The final status.
    pub status: MessageStatus,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
    /// Retries made.
    pub total_retries: u32,
    /// From the first attempt to the outcome.
    pub total_time: Duration,
    /// Why it failed, when it did.
    pub final_error: Option<FailureKind>,
    /// A copy waits in the offline store for the recipient's next connection.
    pub stored_offline: bool,
}

impl DeliveryOutcome {
    fn from_record(r: &MessageRecord) -> Self {
        DeliveryOutcome {
            id: r.key.id.clone(),
            success: matches!(r.status, MessageStatus::Acked | MessageStatus::Delivered),
            stored_offline: r.stored_offline,
            status: r.status,
            attempts: r.attempts.clone(),
            total_retries: r.retry_count,
            total_time: r.total_time(),
            final_error: r.failure_reason,
        }
    }

    fn lost(id: MessageId) -> Self {
        DeliveryOutcome {
            id,
            success: false,
            status: MessageStatus::Failed,
            attempts: Vec::new(),
            total_retries: 0,
            total_time: Duration::ZERO,
            final_error: Some(FailureKind::Internal),
            stored_offline: false,
        }
    }
}

/// Sends a failed message again (fresh retry budget), exactly where it was meant to go;
/// `false` if it is not a failed record.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RetryFailedMessage {
    /// The message (sender and id).
    pub key: MessageKey,
}

/// Sends every failed, unexpired message again; answers how many.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct RetryAllFailed;

/// One message record (from memory, else from the durable store).
#[derive(Message)]
#[rtype(result = "Option<MessageRecord>")]
pub struct GetRecord {
    /// The message (sender and id).
    pub key: MessageKey,
}

/// The records with this id, from any sender (an id is unique per sender only).
#[derive(Message)]
#[rtype(result = "Vec<MessageRecord>")]
pub struct FindRecords {
    /// The message id.
    pub id: MessageId,
}

/// Record counts by status.
#[derive(Message)]
#[rtype(result = "BTreeMap<MessageStatus, usize>")]
pub struct GetRecordStats;

impl Hub {
    fn send_and_wait(
        &self,
        user_id: UserId,
        envelope: Envelope,
        options: TrackOptions,
    ) -> ResponseFuture<DeliveryOutcome> {
        let key = MessageKey::of(&envelope);
        let id = envelope.id.clone();
        let records = self.rel.records().clone();
        let rx = records.wait_final(&key);
        // Registered before the first attempt, so even an instant outcome is seen.
        let sent = self.rel.send(
            &Target::User(user_id),
            std::sync::Arc::new(envelope),
            None,
            Some(options),
            Vec::new(),
        );
        let c = &self.config.retry;
        let per_attempt = options.ack_timeout + Duration::from_millis(c.max_delay_ms);
        let bound = per_attempt * (options.max_retries + 2);
        Box::pin(async move {
            if let Some(durable) = sent.durable {
                // A failure to store is on the record and with the handlers.
                let _ = durable.await;
            }
            match tokio::time::timeout(bound, rx).await {
                Ok(Ok(record)) => DeliveryOutcome::from_record(&record),
                _ => match records.get(&key) {
                    Some(r) => DeliveryOutcome::from_record(&r),
                    None => DeliveryOutcome::lost(id),
                },
            }
        })
    }
}

impl Handler<SendTracked> for Hub {
    type Result = ResponseFuture<SendReport>;

    fn handle(&mut self, msg: SendTracked, _: &mut Context<Self>) -> Self::Result {
        let mut options = msg
            .options
            .unwrap_or_else(|| self.rel.default_options(msg.envelope.require_ack));
        if msg.expires_in.is_some() {
            options.expires_in = msg.expires_in;
        }
        let sent = self.rel.send(
            &msg.target,
            std::sync::Arc::new(msg.envelope),
            None,
            Some(options),
            msg.tags,
        );
        Box::pin(async move {
            let (route, accepted) = (sent.report, sent.accepted);
            let Some(durable) = sent.durable else {
                return SendReport {
                    route,
                    stored_offline: Vec::new(),
                    store_error: None,
                    accepted,
                };
            };
            match durable.await {
                Ok(()) => SendReport {
                    route,
                    stored_offline: sent.stored_for,
                    store_error: None,
                    accepted,
                },
                Err(e) => SendReport {
                    route,
                    stored_offline: Vec::new(),
                    store_error: Some(e),
                    accepted,
                },
            }
        })
    }
}

impl Handler<SendWithAck> for Hub {
    type Result = ResponseFuture<DeliveryOutcome>;

    fn handle(&mut self, msg: SendWithAck, _: &mut Context<Self>) -> Self::Result {
        let mut options = self.rel.default_options(true);
        if let Some(t) = msg.options.timeout {
            options.ack_timeout = t;
        }
        if let Some(n) = msg.options.max_retries {
            options.max_retries = n;
        }
        self.send_and_wait(msg.user_id, msg.envelope.with_require_ack(true), options)
    }
}

impl Handler<SendWithRetry> for Hub {
    type Result = ResponseFuture<DeliveryOutcome>;

    fn handle(&mut self, msg: SendWithRetry, _: &mut Context<Self>) -> Self::Result {
        let mut options = self.rel.default_options(false);
        options.retry_on_failure = true;
        self.send_and_wait(msg.user_id, msg.envelope, options)
    }
}

impl Handler<RetryFailedMessage> for Hub {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: RetryFailedMessage, _: &mut Context<Self>) -> Self::Result {
        let retry = self.supervisors.as_ref().map(|s| s.retry_actor.clone());
        Box::pin(async move {
            match retry {
                Some(r) => r.send(RetryFailed { key: msg.key }).await.unwrap_or(false),
                None => false,
            }
        })
    }
}

impl Handler<RetryAllFailed> for Hub {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: RetryAllFailed, _: &mut Context<Self>) -> Self::Result {
        let retry = self.supervisors.as_ref().map(|s| s.retry_actor.clone());
        let keys: Vec<MessageKey> = self
            .rel
            .records()
            .retryable()
            .into_iter()
            .map(|r| r.key)
            .collect();
        Box::pin(async move {
            let Some(r) = retry else { return 0 };
            let mut n = 0;
            for key in keys {
                if r.send(RetryFailed { key }).await.unwrap_or(false) {
                    n += 1;
                }
            }
            n
        })
    }
}

impl Handler<GetRecord> for Hub {
    type Result = ResponseFuture<Option<MessageRecord>>;

    fn handle(&mut self, msg: GetRecord, _: &mut Context<Self>) -> Self::Result {
        let found = self.rel.records().get(&msg.key);
        let store = self.rel.store().cloned();
        Box::pin(async move {
            if found.is_some() {
                return found;
            }
            let store = store?;
            match store.get_record(msg.key.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    log::error!("cannot read record {} from the store: {e}", msg.key);
                    None
                }
            }
        })
    }
}

impl Handler<FindRecords> for Hub {
    type Result = ResponseFuture<Vec<MessageRecord>>;

    /// The records this node holds; when it holds none, those in the store (in cluster
    /// mode, the records of every node).
    fn handle(&mut self, msg: FindRecords, _: &mut Context<Self>) -> Self::Result {
        let found = self.rel.records().find_by_id(&msg.id);
        let store = self.rel.store().cloned();
        Box::pin(async move {
            let Some(store) = store.filter(|_| found.is_empty()) else {
                return found;
            };
            match store.find_records(msg.id.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    log::error!(
                        "cannot look up records of message {} in the store: {e}",
                        msg.id
                    );
                    found
                }
            }
        })
    }
}

impl Handler<QueryRecords> for Hub {
    type Result = MessageResult<QueryRecords>;

    fn handle(&mut self, msg: QueryRecords, _: &mut Context<Self>) -> Self::Result {
        let records = self.rel.records();
        let mut list = match msg.filter {
            RecordFilter::Status(s) => records.by_status(s),
            RecordFilter::Failed => records.failed(),
            RecordFilter::Retryable => records.retryable(),
        };
        list.truncate(msg.limit);
        MessageResult(list)
    }
}

impl Handler<GetRecordStats> for Hub {
    type Result = MessageResult<GetRecordStats>;

    fn handle(&mut self, _: GetRecordStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.rel.records().stats())
    }
}
