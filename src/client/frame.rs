//! The client's view of the wire: frames it sends ([`OutgoingMessage`], acks, joins) and the
//! server frames it reads (welcome, receipts, pongs, errors, application messages).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dedup::DeliveryKey;
use crate::protocol::{ErrorCode, GroupId, MessageId, MessageType, Priority, Source, UserId};

/// A frame the client sends: an application message, or a `join`/`leave`. Deserializes from
/// the wire shape (PROTOCOL.md section 2), so a JSON line can be read into one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// Message id; the client assigns a unique one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    /// Message type.
    #[serde(rename = "type", default)]
    pub msg_type: MessageType,
    /// Recipient user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<UserId>,
    /// Recipient group (or the group to join or leave).
    #[serde(default, alias = "ticket_id", skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
    /// Payload text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// Structured payload (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Priority.
    #[serde(default, skip_serializing_if = "is_normal")]
    pub priority: Priority,
    /// A referenced message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_msg_id: Option<MessageId>,
    /// Ask the server for a receipt (and recipients for an ack).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_ack: bool,
}

fn is_normal(p: &Priority) -> bool {
    *p == Priority::Normal
}

impl OutgoingMessage {
    /// A message of `msg_type` with no destination yet.
    pub fn new(msg_type: MessageType, content: impl Into<String>) -> Self {
        OutgoingMessage {
            id: None,
            msg_type,
            to: None,
            group: None,
            content: content.into(),
            data: None,
            priority: Priority::Normal,
            reply_to_msg_id: None,
            require_ack: false,
        }
    }

    /// A `text` message to every session of `user`.
    pub fn text_to(user: impl Into<UserId>, content: impl Into<String>) -> Self {
        OutgoingMessage::new(MessageType::Text, content).to(user)
    }

    /// A `text` message to every member of `group` (except this session).
    pub fn text_to_group(group: impl Into<GroupId>, content: impl Into<String>) -> Self {
        OutgoingMessage::new(MessageType::Text, content).in_group(group)
    }

    /// A `join` frame.
    pub fn join(group: impl Into<GroupId>) -> Self {
        OutgoingMessage::new(MessageType::Join, "").in_group(group)
    }

    /// A `leave` frame.
    pub fn leave(group: impl Into<GroupId>) -> Self {
        OutgoingMessage::new(MessageType::Leave, "").in_group(group)
    }

    /// Sends to `user`.
    pub fn to(mut self, user: impl Into<UserId>) -> Self {
        self.to = Some(user.into());
        self
    }

    /// Sends to `group`.
    pub fn in_group(mut self, group: impl Into<GroupId>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<MessageId>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the structured payload.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Asks for a receipt and for recipients' acks.
    pub fn with_require_ack(mut self, require_ack: bool) -> Self {
        self.require_ack = require_ack;
        self
    }

    /// The id, when one is set (always, once the client accepted the message).
    pub fn message_id(&self) -> Option<&MessageId> {
        self.id.as_ref()
    }

    pub(crate) fn encode(&self) -> String {
        // Plain strings and JSON values: serialization cannot fail; keep a frame anyway.
        serde_json::to_string(self).unwrap_or_else(|e| {
            log::error!("cannot encode message id={:?}: {e}", self.id);
            String::from("{}")
        })
    }
}

/// `{"type":"ack","id":..,"from":..}` for a delivered message: the sender names which
/// message of that id is confirmed (docs/DELIVERY.md "Acks name the sender").
pub(crate) fn ack_frame(key: &DeliveryKey) -> String {
    serde_json::json!({"type": "ack", "id": key.id, "from": key.from}).to_string()
}

/// An application message from the server. A message is identified by `(from, id)`: ids are
/// unique per sender, so two senders' messages may share an id.
#[derive(Debug, Clone, Deserialize)]
pub struct IncomingMessage {
    /// Message id, unique per sender (duplicates share it and `from`).
    pub id: MessageId,
    /// Message type.
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    /// Sender, set by the server (`system` when the frame names none).
    #[serde(default = "system_user")]
    pub from: UserId,
    /// Recipient user, for point-to-point messages.
    #[serde(default)]
    pub to: Option<UserId>,
    /// Recipient group.
    #[serde(default)]
    pub group: Option<GroupId>,
    /// Payload text.
    #[serde(default)]
    pub content: String,
    /// Structured payload.
    #[serde(default)]
    pub data: Option<Value>,
    /// RFC 3339 accept time.
    #[serde(default)]
    pub create_at: String,
    /// Per-session sequence number.
    #[serde(default)]
    pub seq_no: Option<u64>,
    /// Priority.
    #[serde(default)]
    pub priority: Priority,
    /// A referenced message.
    #[serde(default)]
    pub reply_to_msg_id: Option<MessageId>,
    /// The server wants an ack.
    #[serde(default)]
    pub require_ack: bool,
    /// `live` or `offline`.
    #[serde(default)]
    pub source: Option<Source>,
    /// The frame as received.
    #[serde(skip)]
    pub raw: String,
}

impl IncomingMessage {
    /// What the duplicate filter and the ack key it by.
    pub(crate) fn key(&self) -> DeliveryKey {
        DeliveryKey::new(self.from.clone(), self.id.clone())
    }
}

fn system_user() -> UserId {
    UserId::from("system")
}

/// The `error` object of an error frame or a failed receipt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerError {
    /// The code (`invalid_frame`, `user_offline`, ...; see [`ServerError::error_code`]).
    #[serde(default)]
    pub code: String,
    /// The server's explanation.
    #[serde(default)]
    pub message: String,
}

impl ServerError {
    /// The code as a protocol [`ErrorCode`], when it is one this crate knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What the server answered to a frame sent with `require_ack` (or a join or leave).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptStatus {
    /// The server took responsibility for it.
    Accepted,
    /// The server refused it (a failed receipt, or an error frame naming its id).
    Failed(ServerError),
}

/// A server receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The id of the frame it answers.
    pub id: MessageId,
    /// The answer.
    pub status: ReceiptStatus,
}

impl Receipt {
    /// Whether the server accepted the frame.
    pub fn is_accepted(&self) -> bool {
        self.status == ReceiptStatus::Accepted
    }
}

/// The kind of a server frame, as reported by [`super::FrameReceived`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind {
    /// The welcome frame (first on each connection).
    Welcome,
    /// A receipt (`{"type":"ack","status":..}`).
    Receipt,
    /// `{"type":"pong"}`.
    Pong,
    /// An error frame.
    Error,
    /// An application message.
    Message,
    /// Anything the client could not read.
    Unknown,
}

/// A server frame, read.
#[derive(Debug)]
pub(crate) enum ServerFrame {
    Welcome(Value),
    Receipt(Option<MessageId>, ReceiptStatus),
    Pong,
    Error(Option<MessageId>, ServerError),
    Message(Box<IncomingMessage>),
    Unknown(String),
}

impl ServerFrame {
    pub(crate) fn kind(&self) -> FrameKind {
        match self {
            ServerFrame::Welcome(_) => FrameKind::Welcome,
            ServerFrame::Receipt(..) => FrameKind::Receipt,
            ServerFrame::Pong => FrameKind::Pong,
            ServerFrame::Error(..) => FrameKind::Error,
            ServerFrame::Message(_) => FrameKind::Message,
            ServerFrame::Unknown(_) => FrameKind::Unknown,
        }
    }
}

fn id_of(v: &Value) -> Option<MessageId> {
    v.get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(MessageId::from)
}

fn error_of(v: &Value) -> ServerError {
    v.get("error")
        .and_then(|e| ServerError::deserialize(e).ok())
        .unwrap_or_else(|| ServerError {
            code: "internal".into(),
            message: "the server sent no error details".into(),
        })
}

/// Reads one text frame. `first` is true for the first frame of a connection, the only one
/// that can be the welcome.
pub(crate) fn parse_server_frame(text: &str, first: bool) -> ServerFrame {
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return ServerFrame::Unknown("not a JSON object".into()),
        Err(e) => return ServerFrame::Unknown(format!("not JSON: {e}")),
    };
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "system" if first && v["data"]["event"] == "connected" => {
            ServerFrame::Welcome(v.get("data").cloned().unwrap_or(Value::Null))
        }
        "ack" => {
            let status = match v.get("status").and_then(Value::as_str) {
                Some("accepted") => ReceiptStatus::Accepted,
                Some("failed") => ReceiptStatus::Failed(error_of(&v)),
                other => return ServerFrame::Unknown(format!("receipt status {other:?}")),
            };
            ServerFrame::Receipt(id_of(&v), status)
        }
        "pong" => ServerFrame::Pong,
        "error" => ServerFrame::Error(id_of(&v), error_of(&v)),
        _ => match IncomingMessage::deserialize(&v) {
            Ok(mut m) => {
                m.raw = text.to_owned();
                ServerFrame::Message(Box::new(m))
            }
            Err(e) => ServerFrame::Unknown(format!("unreadable message: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_uses_the_wire_shape() {
        let m = OutgoingMessage::text_to("bob", "hi")
            .with_id("c1")
            .with_require_ack(true);
        let v: Value = serde_json::from_str(&m.encode()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"id":"c1","type":"text","to":"bob","content":"hi","require_ack":true})
        );
        let join: Value =
            serde_json::from_str(&OutgoingMessage::join("g").with_id("j").encode()).expect("json");
        assert_eq!(
            join,
            serde_json::json!({"id":"j","type":"join","group":"g"})
        );
        let parsed: OutgoingMessage =
            serde_json::from_str(r#"{"to":"a","content":"x","priority":"high"}"#).expect("line");
        assert_eq!(parsed.msg_type, MessageType::Text);
        assert_eq!(parsed.priority, Priority::High);
        let key = DeliveryKey::new("alice".into(), "m1".into());
        let ack: Value = serde_json::from_str(&ack_frame(&key)).expect("json");
        assert_eq!(
            ack,
            serde_json::json!({"type":"ack","id":"m1","from":"alice"})
        );
    }

    #[test]
    fn server_frames_are_classified() {
        let welcome = r#"{"id":"w","type":"system","from":"system","content":"connected","data":{"event":"connected","client_id":"c-1"}}"#;
        assert!(
            matches!(parse_server_frame(welcome, true), ServerFrame::Welcome(d) if d["client_id"] == "c-1")
        );
        assert!(matches!(
            parse_server_frame(welcome, false),
            ServerFrame::Message(m) if m.msg_type == MessageType::System
        ));
        assert!(matches!(
            parse_server_frame(r#"{"type":"ack","id":"a","status":"accepted"}"#, false),
            ServerFrame::Receipt(Some(id), ReceiptStatus::Accepted) if id.as_str() == "a"
        ));
        match parse_server_frame(
            r#"{"type":"ack","id":"a","status":"failed","error":{"code":"user_offline","message":"gone"}}"#,
            false,
        ) {
            ServerFrame::Receipt(_, ReceiptStatus::Failed(e)) => {
                assert_eq!(e.error_code(), Some(ErrorCode::UserOffline));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_server_frame(r#"{"type":"pong"}"#, false),
            ServerFrame::Pong
        ));
        assert!(matches!(
            parse_server_frame(r#"{"type":"error","error":{"code":"invalid_json","message":"x"}}"#, false),
            ServerFrame::Error(None, e) if e.code == "invalid_json"
        ));
        let msg = r#"{"id":"m1","type":"text","from":"a","to":"b","content":"hi","seq_no":3,"require_ack":true,"source":"offline"}"#;
        match parse_server_frame(msg, false) {
            ServerFrame::Message(m) => {
                assert_eq!(m.seq_no, Some(3));
                assert!(m.require_ack);
                assert_eq!(m.source, Some(Source::Offline));
                assert_eq!(m.raw, msg);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_server_frame("[1]", false).kind(), FrameKind::Unknown);
        assert_eq!(parse_server_frame("{", false).kind(), FrameKind::Unknown);
        assert_eq!(
            parse_server_frame(r#"{"type":"teleport","id":"x"}"#, false).kind(),
            FrameKind::Unknown
        );
    }
}
