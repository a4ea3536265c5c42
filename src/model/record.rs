//! A tracked message's record: its key, exact target, one entry per recipient user, the
//! attempt history and the derived status. The transitions live in [`super::lifecycle`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::target::RecordTarget;
use crate::error::FailureKind;
use crate::protocol::time::now_rfc3339;
use crate::protocol::{ClientId, Envelope, MessageId, UserId};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What identifies a message: its sender and the sender's id (ids are unique per sender).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageKey {
    /// The sender's user id.
    pub from: UserId,
    /// The sender's message id.
    pub id: MessageId,
}

impl MessageKey {
    /// The key of `id` sent by `from`.
    pub fn new(from: impl Into<UserId>, id: impl Into<MessageId>) -> Self {
        MessageKey {
            from: from.into(),
            id: id.into(),
        }
    }

    /// The key of a message.
    pub fn of(envelope: &Envelope) -> Self {
        MessageKey {
            from: envelope.from.clone(),
            id: envelope.id.clone(),
        }
    }
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id={} from={}", self.id, self.from)
    }
}

/// A record's status (the names of PROTOCOL.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Created, not yet routed.
    Pending,
    /// Being routed.
    Sending,
    /// Queued to at least one session (waiting for acks when they are required).
    Delivered,
    /// Every recipient acknowledged.
    Acked,
    /// A resend is scheduled.
    Retrying,
    /// Not acknowledged after every retry.
    AckTimeout,
    /// The recipient had no live session.
    UserOffline,
    /// Failed for good.
    Failed,
    /// Expired before delivery.
    Expired,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [MessageStatus; 9] = [
        MessageStatus::Pending,
        MessageStatus::Sending,
        MessageStatus::Delivered,
        MessageStatus::Acked,
        MessageStatus::Retrying,
        MessageStatus::AckTimeout,
        MessageStatus::UserOffline,
        MessageStatus::Failed,
        MessageStatus::Expired,
    ];

    /// A failure status that `retry_failed` may restart.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            MessageStatus::AckTimeout
                | MessageStatus::UserOffline
                | MessageStatus::Failed
                | MessageStatus::Expired
        )
    }

    /// The status a final failure leaves, from the reason given and the underlying kind.
    pub fn of_failure(reason: FailureKind, kind: FailureKind) -> Self {
        match (reason, kind) {
            (FailureKind::Expired, _) => MessageStatus::Expired,
            (_, FailureKind::AckTimeout) => MessageStatus::AckTimeout,
            (_, FailureKind::UserOffline) => MessageStatus::UserOffline,
            _ => MessageStatus::Failed,
        }
    }
}

/// Where one recipient user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet sent (a resend is about to run).
    Pending,
    /// Queued to the user's sessions, waiting for the ack.
    AwaitingAck,
    /// Queued to the user's sessions, no ack asked.
    Delivered,
    /// The user acknowledged.
    Acked,
    /// A resend is scheduled.
    Retrying,
    /// Kept in the offline store for the user's next connection.
    Stored,
    /// Given up; the handlers were told.
    Failed,
}

impl DeliveryState {
    /// Whether the server is still actively delivering (an ack or a resend is awaited).
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            DeliveryState::AwaitingAck | DeliveryState::Retrying | DeliveryState::Pending
        )
    }
}

/// One recipient user of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDelivery {
    /// The user.
    pub user_id: UserId,
    /// Resends go to this session only (a `client` target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// Where the delivery stands.
    pub state: DeliveryState,
    /// The ack deadline (`awaiting_ack`) or the resend time (`retrying`), epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<u64>,
    /// Resends scheduled for this user so far.
    pub retries: u32,
    /// The record attempt that last sent to this user (a stale timer is recognised by it).
    pub attempt: u32,
    /// A copy waits in this user's offline queue.
    #[serde(default)]
    pub stored: bool,
    /// The last failure for this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<FailureKind>,
}

impl UserDelivery {
    /// A recipient not sent to yet.
    pub fn new(user_id: UserId, client_id: Option<ClientId>) -> Self {
        UserDelivery {
            user_id,
            client_id,
            state: DeliveryState::Pending,
            due_ms: None,
            retries: 0,
            attempt: 0,
            stored: false,
            last_error: None,
        }
    }
}

/// One delivery attempt (a send to the target, a resend to one user, or a delivery from the
/// offline store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first send.
    pub number: u32,
    /// The user a resend or stored delivery went to (`None`: the whole target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Milliseconds from start to outcome (routing, or routing plus the ack wait).
    pub duration_ms: u64,
    /// Why it failed.
    pub error: Option<FailureKind>,
    /// Whether it succeeded.
    pub success: bool,
    /// Start time in epoch milliseconds (for durations).
    #[serde(default)]
    pub started_ms: u64,
    /// Whether the outcome is known.
    #[serde(default)]
    pub ended: bool,
}

/// What the server knows about one tracked message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The sender and its message id.
    #[serde(flatten)]
    pub key: MessageKey,
    /// The message.
    pub envelope: Arc<Envelope>,
    /// Exactly where it goes.
    pub target: RecordTarget,
    /// Recipients must acknowledge.
    pub require_ack: bool,
    /// Routing failures are retried (send-with-retry).
    pub retry_on_failure: bool,
    /// A copy is kept in the offline store for a recipient that misses it for good.
    #[serde(default)]
    pub storable: bool,
    /// Current status (derived from the recipients).
    pub status: MessageStatus,
    /// Why it failed, when it did.
    pub failure_reason: Option<FailureKind>,
    /// The last error's description.
    pub error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// Resends scheduled so far (all recipients).
    pub retry_count: u32,
    /// Application tags.
    pub tags: Vec<String>,
    /// One entry per recipient user, sorted by user id.
    pub recipients: Vec<UserDelivery>,
    /// Resends allowed per recipient.
    pub max_retries: u32,
    /// ACK wait per attempt, in milliseconds.
    pub ack_timeout_ms: u64,
    /// After this (epoch ms) the message is not sent again.
    pub expires_at_ms: Option<u64>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339; set when persisted).
    pub updated_at: String,
    /// Creation time in epoch ms.
    pub created_ms: u64,
    /// A copy waits in some recipient's offline queue.
    #[serde(default)]
    pub stored_offline: bool,
    /// The status the last final failure left (used while nothing is in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failed_status: Option<MessageStatus>,
    /// Rebuilt from a stored copy by the node the user connected to (the node that accepted
    /// the message may hold the original record: in cluster mode it is told of the ack).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebuilt: bool,
}

impl MessageRecord {
    /// A new record in `pending`.
    pub fn new(
        envelope: impl Into<Arc<Envelope>>,
        target: RecordTarget,
        require_ack: bool,
        ack_timeout: Duration,
    ) -> Self {
        let envelope = envelope.into();
        let now = now_ms();
        MessageRecord {
            key: MessageKey::of(&envelope),
            envelope,
            target,
            require_ack,
            retry_on_failure: false,
            storable: require_ack,
            status: MessageStatus::Pending,
            failure_reason: None,
            error: None,
            attempts: Vec::new(),
            retry_count: 0,
            tags: Vec::new(),
            recipients: Vec::new(),
            max_retries: 3,
            ack_timeout_ms: ack_timeout.as_millis() as u64,
            expires_at_ms: None,
            created_at: String::new(),
            updated_at: String::new(),
            created_ms: now,
            stored_offline: false,
            failed_status: None,
            rebuilt: false,
        }
    }

    /// The message id.
    pub fn id(&self) -> &MessageId {
        &self.key.id
    }

    /// The recipient entry of `user`.
    pub fn recipient(&self, user: &UserId) -> Option<&UserDelivery> {
        self.recipients
            .binary_search_by(|r| r.user_id.cmp(user))
            .ok()
            .map(|i| &self.recipients[i])
    }

    pub(crate) fn recipient_mut(&mut self, user: &UserId) -> Option<&mut UserDelivery> {
        match self.recipients.binary_search_by(|r| r.user_id.cmp(user)) {
            Ok(i) => Some(&mut self.recipients[i]),
            Err(_) => None,
        }
    }

    /// The recipient entry of `user`, added if missing.
    pub(crate) fn recipient_entry(
        &mut self,
        user: &UserId,
        client: Option<&ClientId>,
    ) -> &mut UserDelivery {
        let i = match self.recipients.binary_search_by(|r| r.user_id.cmp(user)) {
            Ok(i) => i,
            Err(i) => {
                self.recipients
                    .insert(i, UserDelivery::new(user.clone(), client.cloned()));
                i
            }
        };
        &mut self.recipients[i]
    }

    /// Users whose acknowledgement is awaited.
    pub fn pending_acks(&self) -> impl Iterator<Item = &UserId> {
        self.recipients
            .iter()
            .filter(|r| r.state == DeliveryState::AwaitingAck)
            .map(|r| &r.user_id)
    }

    /// Whether an ack or a resend is still awaited for some recipient.
    pub fn in_flight(&self) -> bool {
        matches!(self.status, MessageStatus::Pending | MessageStatus::Sending)
            || self.recipients.iter().any(|r| r.state.in_flight())
    }

    /// Whether the record reached an outcome (nothing is in flight).
    pub fn is_final(&self) -> bool {
        !self.in_flight()
    }

    /// Whether the message may not be sent again.
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at_ms.is_some_and(|e| e <= now)
    }

    /// Total time from creation to the last attempt's outcome (or to now while in flight).
    pub fn total_time(&self) -> Duration {
        let end = self
            .attempts
            .iter()
            .map(|a| a.started_ms + a.duration_ms)
            .max()
            .unwrap_or(self.created_ms);
        Duration::from_millis(end.saturating_sub(self.created_ms))
    }

    /// Stamps the RFC 3339 times (creation, last change) for display or persistence.
    pub fn stamp(&mut self) {
        if self.created_at.is_empty() {
            self.created_at = super::lifecycle::rfc3339_of(self.created_ms);
        }
        self.updated_at = now_rfc3339();
    }
}

/// Counts for `/api/stats` and tests: what is in flight now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStats {
    /// Records in memory.
    pub records: usize,
    /// Records with an ack or a resend still awaited.
    pub in_flight: usize,
    /// Deliveries awaiting an ack (recipient users).
    pub awaiting_acks: usize,
    /// Resends scheduled (recipient users).
    pub scheduled_retries: usize,
    /// Delayed messages waiting for their time (filled in by the hub).
    pub delayed: usize,
}
