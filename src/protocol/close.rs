//! Close codes (PROTOCOL.md section 6), typed, with the reconnect ranges.

use std::fmt;

/// A WebSocket close code the server sends, with its meaning for clients.
///
/// Codes 4000-4499 mean "reconnect", 4500-4999 "do not reconnect".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal close.
    Normal,
    /// 1001: server going away (shutdown).
    GoingAway,
    /// 1002: the peer broke the WebSocket protocol.
    ProtocolError,
    /// 1007: a text frame that is not UTF-8.
    InvalidPayload,
    /// 1008: policy violation (authentication revoked).
    Policy,
    /// 1009: frame too large.
    TooLarge,
    /// 1011: internal error.
    Internal,
    /// 4000: slow consumer, outbound queue overflow.
    SlowConsumer,
    /// 4001: heartbeat timeout.
    HeartbeatTimeout,
    /// 4002: replaced by a newer session with the same client id.
    Replaced,
    /// 4500: kicked by the application.
    Kicked,
    /// Any other code (from a peer, or an application code in 4000-4999).
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooLarge => 1009,
            CloseCode::Internal => 1011,
            CloseCode::SlowConsumer => 4000,
            CloseCode::HeartbeatTimeout => 4001,
            CloseCode::Replaced => 4002,
            CloseCode::Kicked => 4500,
            CloseCode::Other(code) => code,
        }
    }

    /// The typed code for a number.
    pub fn from_code(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::ProtocolError,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::Policy,
            1009 => CloseCode::TooLarge,
            1011 => CloseCode::Internal,
            4000 => CloseCode::SlowConsumer,
            4001 => CloseCode::HeartbeatTimeout,
            4002 => CloseCode::Replaced,
            4500 => CloseCode::Kicked,
            other => CloseCode::Other(other),
        }
    }

    /// Whether a client should reconnect after this close (PROTOCOL.md section 6).
    pub fn should_reconnect(self) -> bool {
        match self.code() {
            1000 | 1008 | 4002 => false,
            1001 | 1009 | 1011 => true,
            4000..=4499 => true,
            4500..=4999 => false,
            // Abnormal or unknown codes: the connection was lost, try again.
            _ => true,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl From<CloseCode> for actix_ws::CloseCode {
    fn from(code: CloseCode) -> Self {
        actix_ws::CloseCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_ranges_follow_the_protocol() {
        for code in [1001, 1009, 1011, 4000, 4001, 4499] {
            assert!(CloseCode::from_code(code).should_reconnect(), "{code}");
        }
        for code in [1000, 1008, 4002, 4500, 4999] {
            assert!(!CloseCode::from_code(code).should_reconnect(), "{code}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for code in [
            1000, 1001, 1002, 1007, 1008, 1009, 1011, 4000, 4001, 4002, 4500, 4321,
        ] {
            assert_eq!(CloseCode::from_code(code).code(), code);
        }
    }
}
