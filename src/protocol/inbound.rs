//! Parsing and validating client-to-server frames.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::ids::{GroupId, MessageId, UserId};
use super::types::{ErrorCode, MessageType, Priority};
use crate::error::FrameError;

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Every session of one user.
    User(UserId),
    /// Every member session of a group (the sending session excluded).
    Group(GroupId),
}

/// An application message sent by a client, validated.
#[derive(Debug, Clone)]
pub struct ClientMessage {
    /// The client's id, if it set one.
    pub id: Option<MessageId>,
    /// The message type (never a control type).
    pub msg_type: MessageType,
    /// The destination.
    pub destination: Destination,
    /// The payload text.
    pub content: String,
    /// The structured payload, passed through unparsed.
    pub data: Option<Box<RawValue>>,
    /// The priority.
    pub priority: Priority,
    /// A referenced message.
    pub reply_to_msg_id: Option<MessageId>,
    /// Whether the sender wants a receipt and recipients must acknowledge.
    pub require_ack: bool,
}

/// Deepest nesting of objects and arrays accepted in a message's `data`.
pub const MAX_DATA_DEPTH: usize = 64;

/// The deepest nesting of objects and arrays in valid JSON text (strings are skipped).
pub(crate) fn json_depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A validated client frame.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Inbound {
    /// `{"type":"ping"}`.
    Ping,
    /// `{"type":"pong"}`: keeps the session alive.
    Pong,
    /// Join a group.
    Join {
        /// The join frame's id, echoed in the receipt.
        id: Option<MessageId>,
        /// The group.
        group: GroupId,
    },
    /// Leave a group.
    Leave {
        /// The leave frame's id, echoed in the receipt.
        id: Option<MessageId>,
        /// The group.
        group: GroupId,
    },
    /// Acknowledges a delivered message.
    Ack {
        /// The delivered message's id.
        id: MessageId,
        /// The delivered message's sender, when the client names it (ids are unique per
        /// sender only).
        from: Option<UserId>,
    },
    /// An application message to route.
    Message(ClientMessage),
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    ticket_id: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    reply_to_msg_id: Option<String>,
    #[serde(default)]
    require_ack: Option<bool>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    from: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

/// Parses one text frame. The error carries the offending id when one could be read.
pub fn parse_inbound(text: &str) -> Result<Inbound, FrameError> {
    let raw: RawFrame = serde_json::from_str(text).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidFrame,
            _ => ErrorCode::InvalidJson,
        };
        FrameError::new(code, format!("cannot read frame: {e}"))
    })?;
    let id = non_empty(raw.id).map(MessageId::from);
    let err = |code, msg: &str| FrameError::new(code, msg).with_id(id.clone());

    let Some(kind) = raw.kind.filter(|k| !k.is_empty()) else {
        // go-wsc acknowledgement shape: {"message_id":"..","status":"confirmed"}.
        if let (Some(mid), Some("confirmed")) = (non_empty(raw.message_id), raw.status.as_deref()) {
            return Ok(Inbound::Ack {
                id: mid.into(),
                from: non_empty(raw.from).map(UserId::from),
            });
        }
        return Err(err(ErrorCode::InvalidFrame, "missing field `type`"));
    };
    let Some(msg_type) = MessageType::parse(&kind) else {
        return Err(FrameError::new(
            ErrorCode::UnknownType,
            format!("unknown message type `{kind}`"),
        )
        .with_id(id));
    };
    let group = non_empty(raw.group).or_else(|| non_empty(raw.ticket_id));
    match msg_type {
        MessageType::Ping => Ok(Inbound::Ping),
        MessageType::Pong | MessageType::Heartbeat => Ok(Inbound::Pong),
        MessageType::Join | MessageType::Leave => {
            let Some(group) = group else {
                return Err(err(
                    ErrorCode::InvalidFrame,
                    "`group` must be a non-empty string",
                ));
            };
            let group = GroupId::from(group);
            Ok(if msg_type == MessageType::Join {
                Inbound::Join { id, group }
            } else {
                Inbound::Leave { id, group }
            })
        }
        MessageType::Ack => match id
            .clone()
            .or_else(|| non_empty(raw.message_id).map(MessageId::from))
        {
            Some(id) => Ok(Inbound::Ack {
                id,
                from: non_empty(raw.from).map(UserId::from),
            }),
            None => Err(err(
                ErrorCode::InvalidFrame,
                "an ack needs the delivered `id`",
            )),
        },
        MessageType::Error => Err(err(
            ErrorCode::InvalidFrame,
            "error frames are sent by the server only",
        )),
        _ => {
            let destination = match (non_empty(raw.to), group) {
                (Some(to), None) => Destination::User(to.into()),
                (None, Some(g)) => Destination::Group(g.into()),
                (Some(_), Some(_)) => {
                    return Err(err(
                        ErrorCode::InvalidFrame,
                        "set exactly one of `to` and `group`, not both",
                    ))
                }
                (None, None) => {
                    return Err(err(
                        ErrorCode::InvalidFrame,
                        "set exactly one of `to` and `group`",
                    ))
                }
            };
            let priority = match raw.priority.as_deref() {
                None | Some("") => Priority::Normal,
                Some(p) => Priority::parse(p).ok_or_else(|| {
                    FrameError::new(ErrorCode::InvalidFrame, format!("unknown priority `{p}`"))
                        .with_id(id.clone())
                })?,
            };
            if let Some(data) = &raw.data {
                let first = data.get().trim_start().as_bytes().first().copied();
                if !matches!(first, Some(b'{') | Some(b'n')) {
                    return Err(err(ErrorCode::InvalidFrame, "`data` must be a JSON object"));
                }
                if json_depth(data.get()) > MAX_DATA_DEPTH {
                    // Forwarded as is, it would break receivers' parsers (serde_json stops at
                    // 128 levels), so it is refused like any JSON the server cannot read.
                    return Err(err(
                        ErrorCode::InvalidJson,
                        "`data` nests deeper than 64 levels (MAX_DATA_DEPTH)",
                    ));
                }
            }
            Ok(Inbound::Message(ClientMessage {
                id,
                msg_type,
                destination,
                content: raw.content.unwrap_or_default(),
                data: raw.data.filter(|d| d.get().trim() != "null"),
                priority,
                reply_to_msg_id: non_empty(raw.reply_to_msg_id).map(MessageId::from),
                require_ack: raw.require_ack.unwrap_or(false),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_data_is_refused_and_depth_skips_strings() {
        assert_eq!(super::json_depth(r#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
        assert_eq!(super::json_depth(r#"{"a":"\"[["}"#), 1);
        let ok = format!(
            r#"{{"type":"text","to":"u","data":{}1{}}}"#,
            "{\"a\":".repeat(64),
            "}".repeat(64)
        );
        assert!(super::parse_inbound(&ok).is_ok());
        let deep = format!(
            r#"{{"type":"text","to":"u","data":{}1{}}}"#,
            "{\"a\":".repeat(65),
            "}".repeat(65)
        );
        let err = super::parse_inbound(&deep).expect_err("too deep");
        assert_eq!(err.code, crate::protocol::ErrorCode::InvalidJson);
    }

    use super::*;

    fn code(text: &str) -> ErrorCode {
        parse_inbound(text).expect_err("should fail").code
    }

    #[test]
    fn bad_frames_get_the_protocol_codes() {
        assert_eq!(code("{not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidFrame);
        assert_eq!(code("42"), ErrorCode::InvalidFrame);
        assert_eq!(
            code(r#"{"type":"teleport","to":"a"}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(
            code(r#"{"type":"text","to":"a","group":"g"}"#),
            ErrorCode::InvalidFrame
        );
        assert_eq!(code(r#"{"type":"text"}"#), ErrorCode::InvalidFrame);
        assert_eq!(
            code(r#"{"type":"join","group":""}"#),
            ErrorCode::InvalidFrame
        );
        assert_eq!(code(r#"{"type":"text","to":5}"#), ErrorCode::InvalidFrame);
        assert_eq!(
            code(r#"{"type":"text","to":"a","priority":"max"}"#),
            ErrorCode::InvalidFrame
        );
        assert_eq!(
            code(r#"{"type":"text","to":"a","data":[1]}"#),
            ErrorCode::InvalidFrame
        );
    }

    #[test]
    fn error_keeps_the_offending_id() {
        let e = parse_inbound(r#"{"id":"x1","type":"text"}"#).expect_err("no destination");
        assert_eq!(e.id.as_ref().map(MessageId::as_str), Some("x1"));
    }

    #[test]
    fn message_and_controls_parse() {
        let m = parse_inbound(
            r#"{"id":"1","type":"text","to":"bob","from":"mallory","content":"hi","data":{"k":1},"require_ack":true,"priority":"high"}"#,
        );
        let Ok(Inbound::Message(m)) = m else {
            panic!("expected a message")
        };
        assert_eq!(m.destination, Destination::User("bob".into()));
        assert_eq!(m.priority, Priority::High);
        assert!(m.require_ack);
        assert_eq!(
            m.data.map(|d| d.get().to_owned()).as_deref(),
            Some(r#"{"k":1}"#)
        );
        assert!(matches!(
            parse_inbound(r#"{"type":"ping"}"#),
            Ok(Inbound::Ping)
        ));
        assert!(matches!(
            parse_inbound(r#"{"type":"text","ticket_id":"t1"}"#),
            Ok(Inbound::Message(ClientMessage {
                destination: Destination::Group(_),
                ..
            }))
        ));
        assert!(matches!(
            parse_inbound(r#"{"message_id":"m1","status":"confirmed"}"#),
            Ok(Inbound::Ack { .. })
        ));
        assert!(matches!(
            parse_inbound(r#"{"type":"join","id":"j1","group":"room"}"#),
            Ok(Inbound::Join { .. })
        ));
    }
}
