//! What nodes tell each other through Redis pub/sub (JSON, one message per publish).
//!
//! Two channels per cluster: `{prefix}:cl:n:{node}` for what one node must act on (a
//! delivery to its sessions, a close of one of its clients) and `{prefix}:cl:all` for what
//! every node hears (presence changes, deliveries to groups and broadcasts, acks, kicks).
//! Redis hands one subscriber the messages of one publisher in the order they were
//! published, so a node's presence changes arrive in order everywhere.

use serde::{Deserialize, Serialize};

use crate::model::{RecordTarget, SessionInfo};
use crate::protocol::{ClientId, Envelope, GroupId, MessageId, OutboundFrame, UserId, UserType};

/// A session as other nodes see it (what presence keeps in Redis and announces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionWire {
    /// Client id.
    pub client_id: ClientId,
    /// User.
    pub user_id: UserId,
    /// User type.
    pub user_type: UserType,
    /// Role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The session's serial number on its node.
    pub conn: u64,
    /// When it connected (ms since the epoch): the newer of two sessions with one client id
    /// wins.
    pub connected_ms: u64,
    /// Groups it is in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupId>,
}

impl SessionWire {
    /// From a local session's info and groups.
    pub fn of<'a>(info: &SessionInfo, groups: impl Iterator<Item = &'a GroupId>) -> Self {
        let connected_ms = info
            .connected_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut groups: Vec<GroupId> = groups.cloned().collect();
        groups.sort();
        SessionWire {
            client_id: info.client_id.clone(),
            user_id: info.user_id.clone(),
            user_type: info.user_type,
            role: info.role.clone(),
            conn: info.conn,
            connected_ms,
            groups,
        }
    }

    /// The session info a mirror keeps (no metadata crosses nodes).
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            client_id: self.client_id.clone(),
            user_id: self.user_id.clone(),
            user_type: self.user_type,
            role: self.role.clone(),
            conn: self.conn,
            connected_at: std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(self.connected_ms),
            metadata: Default::default(),
        }
    }
}

/// Which of a node's sessions a close names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// Every session of a user.
    User(UserId),
    /// One client.
    Client(ClientId),
}

/// One message between nodes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// A recipient on `origin` acknowledged: the node holding the record applies it.
    Ack {
        /// The node the ack arrived at.
        origin: String,
        /// Who acknowledged.
        user: UserId,
        /// The message id.
        id: MessageId,
        /// The sender, when the ack named it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<UserId>,
    },
    /// Close sessions (kick, disconnect, a client id taken over on another node).
    Close {
        /// The node asking.
        origin: String,
        /// Whose sessions.
        who: Who,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Add or remove a user's sessions to/from a group.
    Group {
        /// The node asking.
        origin: String,
        /// The user.
        user: UserId,
        /// The group.
        group: GroupId,
        /// Join (true) or leave.
        join: bool,
    },
    /// A session of `node` is live (new, or its groups changed).
    Up {
        /// Its node.
        node: String,
        /// The session.
        session: SessionWire,
    },
    /// A session of `node` ended.
    Down {
        /// Its node.
        node: String,
        /// The client id.
        client: ClientId,
    },
    /// `node` rewrote its presence (after a Redis outage): read it again.
    Resync {
        /// The node.
        node: String,
    },
    /// `node` is gone (stopped, or its heartbeat expired and `by` took over its records).
    NodeDown {
        /// The node.
        node: String,
        /// The node that noticed.
        by: String,
    },
    /// A copy of a message was stored for `user` (who was offline as far as `origin` knew).
    Stored {
        /// The node that stored it.
        origin: String,
        /// The user.
        user: UserId,
    },
}

/// First byte of a delivery frame (every [`Wire`] message is a JSON object: `{`).
pub const DELIVERY_TAG: u8 = b'D';

/// What a delivery frame says besides the message: `D{head}\n{frame}`, where `head` is
/// this as JSON (one line: JSON strings escape newlines) and `frame` the encoded frame the
/// sending node's sessions get, without its closing brace ([`OutboundFrame`]'s prefix). The
/// receiving node sends that text as it is: a message is encoded once in the cluster.
#[derive(Debug, Deserialize)]
pub struct DeliverHead {
    /// The sending node.
    pub origin: String,
    /// The target for the receiving node's own sessions.
    pub target: RecordTarget,
    /// A session that must not get it (the sender's own).
    #[serde(default)]
    pub exclude: Option<ClientId>,
}

/// [`DeliverHead`] as the sender writes it.
#[derive(Serialize)]
struct DeliverHeadRef<'a> {
    origin: &'a str,
    target: &'a RecordTarget,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclude: Option<&'a ClientId>,
}

/// Encodes a delivery frame of `frame` for another node.
pub fn encode_delivery(
    origin: &str,
    target: &RecordTarget,
    exclude: Option<&ClientId>,
    frame: &OutboundFrame,
) -> Result<Vec<u8>, serde_json::Error> {
    let prefix = frame.encoded_prefix();
    let mut out = Vec::with_capacity(prefix.len() + 96);
    out.push(DELIVERY_TAG);
    serde_json::to_writer(
        &mut out,
        &DeliverHeadRef {
            origin,
            target,
            exclude,
        },
    )?;
    out.push(b'\n');
    out.extend_from_slice(prefix.as_bytes());
    Ok(out)
}

/// Decodes a delivery frame: its head and the frame, ready for this node's sessions.
pub fn decode_delivery(payload: &[u8]) -> Result<(DeliverHead, OutboundFrame), String> {
    let body = payload
        .strip_prefix(&[DELIVERY_TAG])
        .ok_or("not a delivery frame")?;
    let nl = body
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("delivery frame without a message")?;
    let head: DeliverHead =
        serde_json::from_slice(&body[..nl]).map_err(|e| format!("delivery head: {e}"))?;
    let prefix =
        std::str::from_utf8(&body[nl + 1..]).map_err(|e| format!("delivery message: {e}"))?;
    let mut whole = String::with_capacity(prefix.len() + 1);
    whole.push_str(prefix);
    whole.push('}');
    let envelope: Envelope =
        serde_json::from_str(&whole).map_err(|e| format!("delivery message: {e}"))?;
    whole.pop();
    Ok((
        head,
        OutboundFrame::from_encoded(std::sync::Arc::new(envelope), whole.into()),
    ))
}

impl Wire {
    /// The node a message came from (its own messages come back on `all`: ignored).
    pub fn origin(&self) -> &str {
        match self {
            Wire::Ack { origin, .. }
            | Wire::Close { origin, .. }
            | Wire::Group { origin, .. }
            | Wire::Stored { origin, .. } => origin,
            Wire::Up { node, .. } | Wire::Down { node, .. } | Wire::Resync { node } => node,
            Wire::NodeDown { by, .. } => by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let w = Wire::Stored {
            origin: "n1".into(),
            user: "bob".into(),
        };
        let text = serde_json::to_string(&w).expect("encodes");
        match serde_json::from_str::<Wire>(&text).expect("decodes") {
            Wire::Stored { origin, user } => {
                assert_eq!(origin, "n1");
                assert_eq!(user.as_str(), "bob");
            }
            other => panic!("{other:?}"),
        }
        let bad = serde_json::from_str::<Wire>(r#"{"t":"nope"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn a_delivery_frame_carries_the_encoded_frame_unchanged() {
        let mut env = Envelope::system_text("line one\nline \"two\"").with_id("m1");
        env.to = Some("bob".into());
        let frame = OutboundFrame::new(std::sync::Arc::new(env), crate::protocol::Source::Live);
        let exclude = ClientId::from("c-1");
        let text = encode_delivery(
            "n1",
            &RecordTarget::User("bob".into()),
            Some(&exclude),
            &frame,
        )
        .expect("encodes");
        assert_eq!(text[0], DELIVERY_TAG);
        assert_eq!(
            text.iter().filter(|b| **b == b'\n').count(),
            1,
            "head and frame on one line each"
        );
        let (head, back) = decode_delivery(&text).expect("decodes");
        assert_eq!(head.origin, "n1");
        assert_eq!(head.exclude.as_ref(), Some(&exclude));
        assert!(matches!(head.target, RecordTarget::User(ref u) if u.as_str() == "bob"));
        assert_eq!(back.id().as_str(), "m1");
        assert_eq!(back.envelope().content, "line one\nline \"two\"");
        assert_eq!(back.render(7), frame.render(7));
        for bad in [
            &b"{}"[..],
            b"D{}",
            b"Dnot json\n{}",
            b"D{\"origin\":\"n\",\"target\":{\"broadcast\":null}}\n{\"id\":",
        ] {
            assert!(
                decode_delivery(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
