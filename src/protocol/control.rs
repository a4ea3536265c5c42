//! Server-generated control frames: pong, receipts, error frames, the welcome frame.

use bytestring::ByteString;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ids::{ClientId, MessageId, NodeId, UserId};
use super::time::now_rfc3339;
use super::types::ErrorCode;
use crate::error::FrameError;

/// The protocol name sent in the welcome frame.
pub const PROTOCOL_NAME: &str = "wsc.v1";

/// `{"type":"pong"}`.
pub fn pong() -> ByteString {
    ByteString::from_static(r#"{"type":"pong"}"#)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
}

#[derive(Serialize)]
struct Receipt<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a MessageId>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
}

fn to_frame<T: Serialize>(value: &T) -> ByteString {
    match serde_json::to_string(value) {
        Ok(s) => ByteString::from(s),
        Err(e) => {
            log::error!("cannot encode control frame: {e}");
            ByteString::from_static(
                r#"{"type":"error","error":{"code":"internal","message":"encoding failed"}}"#,
            )
        }
    }
}

/// A receipt: `{"type":"ack","id":..,"status":"accepted"}`.
pub fn receipt_accepted(id: Option<&MessageId>) -> ByteString {
    to_frame(&Receipt {
        kind: "ack",
        id,
        status: "accepted",
        error: None,
    })
}

/// A failed receipt with an error object.
pub fn receipt_failed(id: Option<&MessageId>, code: ErrorCode, message: &str) -> ByteString {
    to_frame(&Receipt {
        kind: "ack",
        id,
        status: "failed",
        error: Some(ErrorBody { code, message }),
    })
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a MessageId>,
    error: ErrorBody<'a>,
}

/// An error frame for a frame the server could not accept.
pub fn error_frame(err: &FrameError) -> ByteString {
    to_frame(&ErrorFrame {
        kind: "error",
        id: err.id.as_ref(),
        error: ErrorBody {
            code: err.code,
            message: &err.message,
        },
    })
}

/// The values a welcome frame reports.
#[derive(Debug, Clone)]
pub struct WelcomeInfo {
    /// The session's client id.
    pub client_id: ClientId,
    /// The session's user.
    pub user_id: UserId,
    /// The node.
    pub node_id: NodeId,
    /// Server heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Silence after which the server closes with 4001.
    pub client_timeout_ms: u64,
    /// How long the server waits for an ack.
    pub ack_timeout_ms: u64,
    /// Resends before the ack times out for good.
    pub max_retries: u32,
}

/// The welcome frame; `content` and `extra` come from the application's welcome provider
/// (extra fields never override the protocol fields).
pub fn welcome(
    info: &WelcomeInfo,
    content: &str,
    extra: Option<&Map<String, Value>>,
) -> ByteString {
    let mut data = Map::new();
    if let Some(extra) = extra {
        data.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    data.insert("event".into(), "connected".into());
    data.insert("client_id".into(), info.client_id.as_str().into());
    data.insert("user_id".into(), info.user_id.as_str().into());
    data.insert("node_id".into(), info.node_id.as_str().into());
    data.insert("protocol".into(), PROTOCOL_NAME.into());
    data.insert(
        "heartbeat_interval_ms".into(),
        info.heartbeat_interval_ms.into(),
    );
    data.insert("client_timeout_ms".into(), info.client_timeout_ms.into());
    data.insert("ack_timeout_ms".into(), info.ack_timeout_ms.into());
    data.insert("max_retries".into(), info.max_retries.into());
    let frame = serde_json::json!({
        "id": MessageId::generate(),
        "type": "system",
        "from": "system",
        "to": info.user_id,
        "content": content,
        "create_at": now_rfc3339(),
        "data": data,
    });
    to_frame(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_have_the_protocol_shape() {
        let v: Value = serde_json::from_str(&receipt_accepted(Some(&"a1".into()))).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"type":"ack","id":"a1","status":"accepted"})
        );
        let e = FrameError::new(ErrorCode::UnknownType, "nope").with_id(Some("x".into()));
        let v: Value = serde_json::from_str(&error_frame(&e)).expect("json");
        assert_eq!(v["error"]["code"], "unknown_type");
        assert_eq!(v["id"], "x");
    }
}
