//! Who a session is and why it ended.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::protocol::{ClientId, CloseCode, UserId, UserType};

/// What the hub knows about one session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session's client id.
    pub client_id: ClientId,
    /// The session's user.
    pub user_id: UserId,
    /// The user's type.
    pub user_type: UserType,
    /// The user's role, when the authenticator set one.
    pub role: Option<String>,
    /// A serial number that tells two sessions with the same client id apart.
    pub conn: u64,
    /// When the session connected.
    pub connected_at: SystemTime,
    /// Application metadata.
    pub metadata: Map<String, Value>,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent a close frame (with its code, if any).
    ClientClosed(Option<u16>),
    /// The connection ended without a close frame.
    ConnectionLost,
    /// The server closed the session with this code and reason (heartbeat timeout 4001,
    /// slow consumer 4000, replaced 4002, kicked 4500, shutdown 1001, too large 1009, ...).
    ServerClosed(CloseCode, String),
    /// A socket write made no progress within `write_timeout_ms`.
    WriteTimeout,
}
