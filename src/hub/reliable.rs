//! The hub's reliable-delivery API: send with ack, send with retry, retry failed messages,
//! and the message records.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;

use super::{Hub, RouteReport, Target};
use crate::error::FailureKind;
use crate::protocol::{Envelope, MessageId, UserId};
use crate::store::StoreError;
use crate::supervision::{Attempt, MessageRecord, MessageStatus, RetryFailed, TrackOptions};

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
}

impl DeliveryOutcome {
    fn from_record(r: &MessageRecord) -> Self {
        DeliveryOutcome {
            id: r.id.clone(),
            success: matches!(r.status, MessageStatus::Acked | MessageStatus::Delivered),
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
        }
    }
}

/// Sends a failed message again (fresh retry budget); `false` if it is not a failed record.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RetryFailedMessage {
    /// The message.
    pub id: MessageId,
}

/// Sends every failed, unexpired message again; answers how many.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct RetryAllFailed;

/// One message record.
#[derive(Message)]
#[rtype(result = "Option<MessageRecord>")]
pub struct GetRecord {
    /// The message.
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
        let id = envelope.id.clone();
        let records = self.rel.records().clone();
        let rx = records.wait_final(&id);
        // Registered before the first attempt, so even an instant outcome is seen.
        self.rel
            .send_tracked(Target::User(user_id), envelope, options, None);
        let c = &self.config.retry;
        let per_attempt = options.ack_timeout + Duration::from_millis(c.max_delay_ms);
        let bound = per_attempt * (options.max_retries + 2);
        Box::pin(async move {
            match tokio::time::timeout(bound, rx).await {
                Ok(Ok(record)) => DeliveryOutcome::from_record(&record),
                _ => match records.get(&id) {
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
        let envelope = msg.envelope.clone();
        let route = self
            .rel
            .send_tracked(msg.target, msg.envelope, options, None);
        if !msg.tags.is_empty() {
            let tags = msg.tags;
            self.rel.records().update(&envelope.id, |r| r.tags = tags);
        }
        let stored = self.rel.store_offline(&route.offline_users, &envelope);
        let rel = self.rel.clone();
        Box::pin(async move {
            let Some(stored) = stored else {
                return SendReport {
                    route,
                    stored_offline: Vec::new(),
                    store_error: None,
                };
            };
            match stored.await {
                Ok(()) => SendReport {
                    stored_offline: route.offline_users.clone(),
                    route,
                    store_error: None,
                },
                Err(e) => {
                    rel.report_store_error(&envelope, &route.offline_users, &e);
                    SendReport {
                        route,
                        stored_offline: Vec::new(),
                        store_error: Some(e),
                    }
                }
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
        let retry = self.rel.retry_actor().cloned();
        Box::pin(async move {
            match retry {
                Some(r) => r.send(RetryFailed { id: msg.id }).await.unwrap_or(false),
                None => false,
            }
        })
    }
}

impl Handler<RetryAllFailed> for Hub {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: RetryAllFailed, _: &mut Context<Self>) -> Self::Result {
        let retry = self.rel.retry_actor().cloned();
        let ids: Vec<MessageId> = self
            .rel
            .records()
            .retryable()
            .into_iter()
            .map(|r| r.id)
            .collect();
        Box::pin(async move {
            let Some(r) = retry else { return 0 };
            let mut n = 0;
            for id in ids {
                if r.send(RetryFailed { id }).await.unwrap_or(false) {
                    n += 1;
                }
            }
            n
        })
    }
}

impl Handler<GetRecord> for Hub {
    type Result = Option<MessageRecord>;

    fn handle(&mut self, msg: GetRecord, _: &mut Context<Self>) -> Self::Result {
        self.rel.records().get(&msg.id)
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
