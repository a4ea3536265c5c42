//! Error types, one enum per operation.

use std::fmt;

use crate::protocol::{ClientId, ErrorCode, MessageId};

/// A client frame the server cannot accept; becomes an error frame on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The protocol error code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// The offending frame's id, when it could be read.
    pub id: Option<MessageId>,
}

impl FrameError {
    /// A new error without an id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
            id: None,
        }
    }

    /// Attaches the offending frame's id.
    pub fn with_id(mut self, id: Option<MessageId>) -> Self {
        self.id = id;
        self
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for FrameError {}

/// Why the hub refused a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The client id is held by another user's session (HTTP 409).
    ClientIdInUse(ClientId),
    /// The hub is shutting down (HTTP 503).
    ShuttingDown,
    /// `limits.max_connections` sessions are live (HTTP 503).
    TooManyConnections(usize),
    /// The user holds `limits.max_sessions_per_user` sessions and the limit refuses new
    /// ones (HTTP 429).
    TooManySessions(usize),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::ClientIdInUse(id) => {
                write!(f, "client id {id} is in use by another user")
            }
            ConnectError::ShuttingDown => f.write_str("the server is shutting down"),
            ConnectError::TooManyConnections(max) => {
                write!(
                    f,
                    "the server holds its maximum of {max} connections (limits.max_connections)"
                )
            }
            ConnectError::TooManySessions(max) => write!(
                f,
                "this user already holds {max} sessions (limits.max_sessions_per_user)"
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// The session is not connected (any more).
    UnknownSession(ClientId),
    /// The group name is empty.
    EmptyName,
    /// The session is in `limits.max_groups_per_session` groups already.
    TooManyGroups(usize),
    /// The group holds `limits.max_members_per_group` sessions already.
    GroupFull(usize),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::UnknownSession(id) => write!(f, "no session with client id {id}"),
            GroupError::EmptyName => f.write_str("group name must not be empty"),
            GroupError::TooManyGroups(max) => write!(
                f,
                "this session is in {max} groups already (limits.max_groups_per_session)"
            ),
            GroupError::GroupFull(max) => write!(
                f,
                "the group has {max} members already (limits.max_members_per_group)"
            ),
        }
    }
}

impl std::error::Error for GroupError {}

/// An invalid configuration value; names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field or environment variable.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A failure to deliver, as the failure classifier sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// A session's outbound queue overflowed.
    QueueFull,
    /// The recipient user has no live session.
    UserOffline,
    /// The recipient session's connection failed or closed with the message in flight.
    ConnectionError,
    /// A socket write made no progress within the write timeout.
    WriteTimeout,
    /// The recipient did not acknowledge within the ACK timeout.
    AckTimeout,
    /// The message is invalid (bad target, unknown group).
    Validation,
    /// The sender may not send this.
    Permission,
    /// Every allowed attempt failed.
    RetriesExhausted,
    /// The message expired before it could be delivered.
    Expired,
    /// A server fault.
    Internal,
}

impl FailureKind {
    /// The snake_case name (as in config files and records).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::QueueFull => "queue_full",
            FailureKind::UserOffline => "user_offline",
            FailureKind::ConnectionError => "connection_error",
            FailureKind::WriteTimeout => "write_timeout",
            FailureKind::AckTimeout => "ack_timeout",
            FailureKind::Validation => "validation",
            FailureKind::Permission => "permission",
            FailureKind::RetriesExhausted => "retries_exhausted",
            FailureKind::Expired => "expired",
            FailureKind::Internal => "internal",
        }
    }

    /// Whether a failure of this kind is worth another attempt by default. An exhaustive
    /// match: a new kind does not compile until someone decides.
    pub fn retryable_by_default(self) -> bool {
        match self {
            FailureKind::QueueFull
            | FailureKind::ConnectionError
            | FailureKind::WriteTimeout
            | FailureKind::AckTimeout => true,
            FailureKind::UserOffline
            | FailureKind::Validation
            | FailureKind::Permission
            | FailureKind::RetriesExhausted
            | FailureKind::Expired
            | FailureKind::Internal => false,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
