//! The routed message ([`Envelope`]) and its wire encoding ([`OutboundFrame`]): encoded once,
//! shared by every recipient, completed per session with its `seq_no`.

use std::sync::Arc;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ids::{GroupId, MessageId, UserId};
use super::inbound::{ClientMessage, Destination};
use super::time::now_rfc3339;
use super::types::{MessageType, Priority};

/// Where a delivery came from (the `source` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Routed to a live session as it was sent.
    Live,
    /// Delivered from the offline store.
    Offline,
}

/// An application message as the hub routes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Message id (assigned by the server when the sender left it empty).
    pub id: MessageId,
    /// Message type.
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    /// Sender's user id, set by the server.
    pub from: UserId,
    /// Recipient user, for point-to-point messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<UserId>,
    /// Recipient group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
    /// Payload text.
    #[serde(default)]
    pub content: String,
    /// Structured payload, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    /// RFC 3339 accept time.
    pub create_at: String,
    /// Priority.
    #[serde(default)]
    pub priority: Priority,
    /// Referenced message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_msg_id: Option<MessageId>,
    /// Recipients must acknowledge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_ack: bool,
}

impl Envelope {
    /// A new message from `from` with a fresh id and the current time.
    pub fn new(msg_type: MessageType, from: impl Into<UserId>, content: impl Into<String>) -> Self {
        Envelope {
            id: MessageId::generate(),
            msg_type,
            from: from.into(),
            to: None,
            group: None,
            content: content.into(),
            data: None,
            create_at: now_rfc3339(),
            priority: Priority::Normal,
            reply_to_msg_id: None,
            require_ack: false,
        }
    }

    /// A `text` message from the `system` user.
    pub fn system_text(content: impl Into<String>) -> Self {
        Envelope::new(MessageType::Text, "system", content)
    }

    /// The message a client sent, stamped with the server's view: `from` is the session's
    /// user, the id is assigned when the client sent none, `create_at` is now.
    pub fn from_client(msg: ClientMessage, from: UserId) -> Self {
        let (to, group) = match msg.destination {
            Destination::User(u) => (Some(u), None),
            Destination::Group(g) => (None, Some(g)),
        };
        Envelope {
            id: msg.id.unwrap_or_else(MessageId::generate),
            msg_type: msg.msg_type,
            from,
            to,
            group,
            content: msg.content,
            data: msg.data,
            create_at: now_rfc3339(),
            priority: msg.priority,
            reply_to_msg_id: msg.reply_to_msg_id,
            require_ack: msg.require_ack,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<MessageId>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the structured payload.
    pub fn with_data(mut self, data: &serde_json::Value) -> Self {
        self.data = serde_json::value::to_raw_value(data).ok();
        self
    }

    /// Asks recipients to acknowledge.
    pub fn with_require_ack(mut self, require_ack: bool) -> Self {
        self.require_ack = require_ack;
        self
    }

    /// Encodes the frame once for every recipient.
    pub fn encode(self, source: Source) -> OutboundFrame {
        OutboundFrame::new(Arc::new(self), source)
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(flatten)]
    envelope: &'a Envelope,
    source: Source,
}

/// An encoded application frame shared by all its recipients. Cloning is two reference-count
/// bumps; the JSON is written once. A session completes it with its own `seq_no`.
#[derive(Debug, Clone)]
pub struct OutboundFrame {
    envelope: Arc<Envelope>,
    /// The JSON object without its closing brace.
    prefix: Arc<str>,
}

impl OutboundFrame {
    /// Encodes `envelope`.
    pub fn new(envelope: Arc<Envelope>, source: Source) -> Self {
        let mut json = serde_json::to_string(&Wire {
            envelope: &envelope,
            source,
        })
        .unwrap_or_else(|e| {
            // Serializing plain strings and validated raw JSON cannot fail; keep a frame anyway.
            log::error!("cannot encode message id={}: {e}", envelope.id);
            String::from("{\"type\":\"error\"}")
        });
        json.pop(); // the closing brace: `seq_no` goes there per session
        OutboundFrame {
            envelope,
            prefix: json.into(),
        }
    }

    /// A frame encoded elsewhere (another node): `prefix` must be what
    /// [`OutboundFrame::encoded_prefix`] gave for `envelope` there.
    pub(crate) fn from_encoded(envelope: Arc<Envelope>, prefix: Arc<str>) -> Self {
        OutboundFrame { envelope, prefix }
    }

    /// The encoded frame without its closing brace (what [`OutboundFrame::render`] completes).
    pub(crate) fn encoded_prefix(&self) -> &str {
        &self.prefix
    }

    /// The message.
    pub fn envelope(&self) -> &Arc<Envelope> {
        &self.envelope
    }

    /// The message id.
    pub fn id(&self) -> &MessageId {
        &self.envelope.id
    }

    /// The priority.
    pub fn priority(&self) -> Priority {
        self.envelope.priority
    }

    /// Encoded size in bytes (what a session queue accounts).
    pub fn len(&self) -> usize {
        self.prefix.len() + 32
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The complete frame for one session.
    pub fn render(&self, seq_no: u64) -> ByteString {
        use std::fmt::Write;
        let mut out = String::with_capacity(self.prefix.len() + 32);
        out.push_str(&self.prefix);
        let _ = write!(out, ",\"seq_no\":{seq_no}}}");
        ByteString::from(out)
    }

    /// Appends the complete frame for one session to `out` as an unmasked WebSocket text
    /// frame (a server's), header included: the same bytes [`OutboundFrame::render`] gives,
    /// without building them apart first.
    pub fn write_ws_text(&self, seq_no: u64, out: &mut bytes::BytesMut) {
        // `,"seq_no":` + at most 20 digits + `}`.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = seq_no;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = &digits[at..];
        const KEY: &[u8] = b",\"seq_no\":";
        let len = self.prefix.len() + KEY.len() + digits.len() + 1;
        out.reserve(len + 10);
        out.extend_from_slice(&[0x81]); // FIN + text
        if len < 126 {
            out.extend_from_slice(&[len as u8]);
        } else if let Ok(short) = u16::try_from(len) {
            out.extend_from_slice(&[126]);
            out.extend_from_slice(&short.to_be_bytes());
        } else {
            out.extend_from_slice(&[127]);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(KEY);
        out.extend_from_slice(digits);
        out.extend_from_slice(b"}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_appends_seq_no_to_one_encoding() {
        let mut env = Envelope::system_text("hi").with_id("m1");
        env.to = Some("bob".into());
        let frame = env.encode(Source::Live);
        let a: serde_json::Value = serde_json::from_str(&frame.render(1)).expect("json");
        let b: serde_json::Value = serde_json::from_str(&frame.render(2)).expect("json");
        assert_eq!(a["seq_no"], 1);
        assert_eq!(b["seq_no"], 2);
        assert_eq!(a["id"], "m1");
        assert_eq!(a["to"], "bob");
        assert_eq!(a["source"], "live");
        assert_eq!(a["type"], "text");
        assert!(a.get("group").is_none());
        assert!(frame.len() >= frame.render(99).len());
    }

    /// The frame written straight into the output buffer is what actix-http's codec makes of
    /// the rendered text, for each length encoding (7-bit, 16-bit and 64-bit).
    #[test]
    fn ws_text_matches_the_codec_for_every_length_form() {
        use actix_http::ws::{Codec, Message};
        use tokio_util::codec::Encoder;
        for (size, seq) in [(1usize, 0u64), (60, 7), (200, 1234), (70_000, u64::MAX)] {
            let mut env = Envelope::system_text("x".repeat(size)).with_id("m1");
            env.to = Some("bob".into());
            let frame = env.encode(Source::Live);
            let mut ours = bytes::BytesMut::new();
            frame.write_ws_text(seq, &mut ours);
            let mut theirs = bytes::BytesMut::new();
            Codec::new()
                .encode(Message::Text(frame.render(seq)), &mut theirs)
                .expect("encode");
            assert_eq!(ours, theirs, "content of {size} bytes");
        }
    }
}
