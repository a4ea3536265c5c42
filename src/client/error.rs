//! The client's errors, one enum per operation. A message that could not be sent comes back
//! inside the error.

use std::fmt;

use super::frame::{OutgoingMessage, ServerError};
use crate::protocol::CloseCode;

/// Why [`super::SendMessage`] refused a message; the message comes back.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SendError {
    /// `send_queue_capacity` frames are waiting to be written already.
    Full(OutgoingMessage),
    /// The client is closed or closing.
    Closed(OutgoingMessage),
}

impl SendError {
    /// The message that was not sent.
    pub fn into_inner(self) -> OutgoingMessage {
        match self {
            SendError::Full(m) | SendError::Closed(m) => m,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("send queue is full"),
            SendError::Closed(_) => f.write_str("client is closed"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why a receipt ([`super::SendWithReceipt`], [`super::Join`], [`super::Leave`]) did not
/// arrive; the message comes back.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The message was not queued: the send queue is full.
    Full(OutgoingMessage),
    /// The client closed before the receipt arrived (the message may have reached the
    /// server).
    Closed(OutgoingMessage),
    /// No receipt within `receipt_timeout_ms` (the message may have reached the server).
    Timeout(OutgoingMessage),
}

impl ReceiptError {
    /// The message the receipt was for.
    pub fn into_inner(self) -> OutgoingMessage {
        match self {
            ReceiptError::Full(m) | ReceiptError::Closed(m) | ReceiptError::Timeout(m) => m,
        }
    }
}

impl From<SendError> for ReceiptError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Full(m) => ReceiptError::Full(m),
            SendError::Closed(m) => ReceiptError::Closed(m),
        }
    }
}

impl fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiptError::Full(_) => f.write_str("send queue is full"),
            ReceiptError::Closed(_) => f.write_str("client closed before the receipt arrived"),
            ReceiptError::Timeout(_) => f.write_str("no receipt within the receipt timeout"),
        }
    }
}

impl std::error::Error for ReceiptError {}

/// Why [`super::Flush`] could not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The client closed with frames still unwritten (each reported as `SendFailed`).
    Closed,
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Closed => f.write_str("client closed before the queue was written"),
        }
    }
}

impl std::error::Error for FlushError {}

/// Why one connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialError {
    /// The url or identity cannot form a request.
    InvalidRequest(String),
    /// The server answered the upgrade with this HTTP status.
    Refused(u16),
    /// No upgrade within `connect_timeout_ms`.
    Timeout,
    /// The TCP connection or the WebSocket handshake failed (described).
    Transport(String),
}

impl DialError {
    /// Whether trying again can help. Stops on a bad request and on the refusals that will
    /// not change by themselves (400 bad identity, 401/403 authentication, 404 wrong path,
    /// 409 client id of another user); retries timeouts, transport failures and any other
    /// status (408, 429, 503 while the server shuts down, other 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            DialError::InvalidRequest(_) => false,
            DialError::Refused(status) => !matches!(status, 400 | 401 | 403 | 404 | 409),
            DialError::Timeout => true,
            DialError::Transport(_) => true,
        }
    }
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::InvalidRequest(e) => write!(f, "invalid connect request: {e}"),
            DialError::Refused(status) => write!(f, "upgrade refused with http {status}"),
            DialError::Timeout => f.write_str("connect timed out"),
            DialError::Transport(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for DialError {}

/// Why the client stopped for good (the [`super::Closed`] event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The application sent [`super::Close`].
    ClientClosed,
    /// The server closed with a code that means "do not reconnect" (1000, 1008, 4002,
    /// 4500-4999; PROTOCOL.md section 6).
    ServerClosed {
        /// The close code.
        code: CloseCode,
        /// The close reason text.
        reason: String,
    },
    /// A connection attempt failed in a way retrying cannot fix.
    Refused(DialError),
    /// `max_reconnect_attempts` attempts in a row failed.
    RetriesExhausted {
        /// The attempts made.
        attempts: u32,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::ClientClosed => f.write_str("closed by the application"),
            StopReason::ServerClosed { code, reason } => {
                write!(f, "closed by the server with {code} ({reason})")
            }
            StopReason::Refused(e) => write!(f, "gave up: {e}"),
            StopReason::RetriesExhausted { attempts } => {
                write!(f, "gave up after {attempts} failed connection attempts")
            }
        }
    }
}

/// Why a frame the client sent did not make it (the [`super::SendFailed`] event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendFailure {
    /// The server refused it: a failed receipt or an error frame naming its id.
    Rejected(ServerError),
    /// The client closed before the frame could be written.
    Closed,
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Rejected(e) => write!(f, "rejected by the server: {e}"),
            SendFailure::Closed => f.write_str("client closed before the frame was written"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_errors_are_classified() {
        for status in [400, 401, 403, 404, 409] {
            assert!(!DialError::Refused(status).is_retryable(), "{status}");
        }
        for status in [408, 429, 500, 502, 503] {
            assert!(DialError::Refused(status).is_retryable(), "{status}");
        }
        assert!(DialError::Timeout.is_retryable());
        assert!(DialError::Transport("refused".into()).is_retryable());
        assert!(!DialError::InvalidRequest("bad url".into()).is_retryable());
    }

    #[test]
    fn errors_give_the_message_back_and_read_lowercase() {
        let m = OutgoingMessage::text_to("a", "x");
        assert_eq!(SendError::Full(m.clone()).into_inner(), m);
        assert_eq!(
            ReceiptError::from(SendError::Closed(m.clone())),
            ReceiptError::Closed(m.clone())
        );
        for text in [
            SendError::Full(m.clone()).to_string(),
            ReceiptError::Timeout(m).to_string(),
            DialError::Timeout.to_string(),
        ] {
            assert!(
                text.chars().next().is_some_and(|c| c.is_lowercase()),
                "{text}"
            );
        }
    }
}
