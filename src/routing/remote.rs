//! Other nodes' sessions, as routing sees them: the [`Remote`] hook cluster mode installs
//! on the [`super::Router`]. Without it (one node) routing never leaves this process.
//!
//! The hook lives here, below the cluster module, so that routing and the hub call into
//! other nodes without knowing how they are reached (Redis in [`crate::cluster`]).

use crate::model::{RouteReport, Target};
use crate::protocol::{ClientId, CloseCode, GroupId, MessageId, OutboundFrame, UserId};

/// Which sessions a cluster-wide close names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseWho {
    /// Every session of this user.
    User(UserId),
    /// The session with this client id.
    Client(ClientId),
}

/// Sessions of other nodes, and how to reach them.
pub trait Remote: Send + Sync + 'static {
    /// Routes `frame` to the sessions of other nodes `target` selects (skipping `exclude`),
    /// adding them to `report`: sessions reached count as delivered (listed in
    /// `recipients` when `collect`), users found there leave `offline_users`, a group with
    /// members there is not unknown; sessions that cannot be reached (Redis down) are added
    /// to `failed`.
    fn route(
        &self,
        target: &Target,
        frame: &OutboundFrame,
        exclude: Option<&ClientId>,
        collect: bool,
        report: &mut RouteReport,
    );

    /// Whether `user` has a session on another node.
    fn is_online(&self, user: &UserId) -> bool;

    /// The user holding `client` on another node, if any.
    fn owner(&self, client: &ClientId) -> Option<UserId>;

    /// A local session changed (connected, left, joined or left a group): tell the other
    /// nodes.
    fn session_changed(&self, client: &ClientId);

    /// Closes `who`'s sessions on other nodes; answers how many they held.
    fn close(&self, who: &CloseWho, code: CloseCode, reason: &str) -> usize;

    /// Adds (`join`) or removes `user`'s sessions on other nodes to/from `group`; answers
    /// how many sessions they held.
    fn group(&self, user: &UserId, group: &GroupId, join: bool) -> usize;

    /// Other nodes' members of `group`: `(client, user)`.
    fn group_members(&self, group: &GroupId) -> Vec<(ClientId, UserId)>;

    /// Users with sessions on other nodes, with their session counts there.
    fn online_users(&self) -> Vec<(UserId, usize)>;

    /// Sessions on other nodes.
    fn session_count(&self) -> usize;

    /// A local session acknowledged a message this node holds no record of: the node that
    /// holds it applies the ack.
    fn forward_ack(&self, user: &UserId, id: &MessageId, from: Option<&UserId>);

    /// A copy of a message was stored for `user`, who was offline: nodes where the user
    /// connected meanwhile deliver it.
    fn stored_for(&self, user: &UserId);

    /// Whether other nodes can be reached (Redis answers).
    fn ready(&self) -> bool;

    /// What `/api/stats` shows under `cluster` (and `/metrics` exports).
    fn status(&self) -> ClusterStatus;
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct ClusterStatus {
    /// This node.
    pub node_id: String,
    /// `"up"` while Redis answers (publishing and subscribed), `"down"` otherwise.
    pub redis: &'static str,
    /// Times a Redis connection failed since start.
    pub redis_errors: u64,
    /// Live nodes (this one first) with their session counts.
    pub nodes: Vec<NodeStatus>,
    /// Deliveries published to other nodes that a subscriber received.
    pub published: u64,
    /// Deliveries received from other nodes (presence and control messages not counted).
    pub received: u64,
}

/// One node in [`ClusterStatus`].
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its id.
    pub node_id: String,
    /// Its live sessions.
    pub sessions: usize,
}
