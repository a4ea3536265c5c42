//! What nodes tell each other through Redis pub/sub (JSON, one message per publish).
//!
//! Two channels per cluster: `{prefix}:cl:n:{node}` for what one node must act on (a
//! delivery to its sessions, a close of one of its clients) and `{prefix}:cl:all` for what
//! every node hears (presence changes, deliveries to groups and broadcasts, acks, kicks).
//! Redis hands one subscriber the messages of one publisher in the order they were
//! published, so a node's presence changes arrive in order everywhere.

use serde::{Deserialize, Serialize};

use crate::model::{RecordTarget, SessionInfo};
use crate::protocol::{ClientId, Envelope, GroupId, MessageId, UserId, UserType};

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
    /// Deliver `envelope` to this node's sessions `target` selects, except `exclude`.
    Deliver {
        /// The sending node.
        origin: String,
        /// The target, as the sender named it.
        target: RecordTarget,
        /// A session that must not get it (the sender's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exclude: Option<ClientId>,
        /// The message.
        envelope: Envelope,
    },
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

/// [`Wire::Deliver`] as the sender writes it, without copying the envelope.
#[derive(Serialize)]
pub struct DeliverRef<'a> {
    /// Always `"deliver"` (the tag of [`Wire::Deliver`]).
    pub t: &'static str,
    /// The sending node.
    pub origin: &'a str,
    /// The target for that node.
    pub target: &'a RecordTarget,
    /// A session that must not get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<&'a ClientId>,
    /// The message.
    pub envelope: &'a Envelope,
}

impl Wire {
    /// The node a message came from (its own messages come back on `all`: ignored).
    pub fn origin(&self) -> &str {
        match self {
            Wire::Deliver { origin, .. }
            | Wire::Ack { origin, .. }
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
        let mut env = Envelope::system_text("hi").with_id("m1");
        env.to = Some("bob".into());
        let w = Wire::Deliver {
            origin: "n1".into(),
            target: RecordTarget::User("bob".into()),
            exclude: None,
            envelope: env,
        };
        let text = serde_json::to_string(&w).expect("encodes");
        let back: Wire = serde_json::from_str(&text).expect("decodes");
        match back {
            Wire::Deliver {
                origin, envelope, ..
            } => {
                assert_eq!(origin, "n1");
                assert_eq!(envelope.id.as_str(), "m1");
            }
            other => panic!("{other:?}"),
        }
        let env = Envelope::system_text("yo").with_id("m2");
        let by_ref = DeliverRef {
            t: "deliver",
            origin: "n2",
            target: &RecordTarget::Broadcast,
            exclude: None,
            envelope: &env,
        };
        let text = serde_json::to_string(&by_ref).expect("encodes");
        assert!(matches!(
            serde_json::from_str::<Wire>(&text).expect("decodes as Deliver"),
            Wire::Deliver { .. }
        ));
        let bad = serde_json::from_str::<Wire>(r#"{"t":"nope"}"#);
        assert!(bad.is_err());
    }
}
