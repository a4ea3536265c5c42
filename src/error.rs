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
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::ClientIdInUse(id) => {
                write!(f, "client id {id} is in use by another user")
            }
            ConnectError::ShuttingDown => f.write_str("the server is shutting down"),
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
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::UnknownSession(id) => write!(f, "no session with client id {id}"),
            GroupError::EmptyName => f.write_str("group name must not be empty"),
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
