//! What one node knows of the other nodes' sessions: a [`RoutingTable`] whose handles name
//! the node holding each session, kept up to date from presence messages. Pure: no Redis,
//! no actors; the cluster actor applies messages and acts on the users that went offline.

use std::collections::HashMap;
use std::sync::Arc;

use super::wire::SessionWire;
use crate::protocol::{ClientId, UserId};
use crate::routing::RoutingTable;

/// Where a remote session lives.
#[derive(Debug, Clone)]
pub struct RemoteHandle {
    /// Its node.
    pub node: Arc<str>,
    /// When it connected (ms): the newer of two sessions with one client id wins.
    pub connected_ms: u64,
}

/// Other nodes' sessions.
#[derive(Debug, Default)]
pub struct Mirror {
    /// Sessions by client, user and group.
    pub table: RoutingTable<RemoteHandle>,
    /// Sessions per node (a node with none still appears once it said it is live).
    nodes: HashMap<Arc<str>, usize>,
}

impl Mirror {
    fn intern(&mut self, node: &str) -> Arc<str> {
        match self.nodes.get_key_value(node) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<str> = node.into();
                self.nodes.insert(k.clone(), 0);
                k
            }
        }
    }

    fn remove_client(&mut self, client: &ClientId) -> Option<UserId> {
        let conn = self.table.get(client)?.info.conn;
        let e = self.table.remove(client, conn)?;
        if let Some(n) = self.nodes.get_mut(&*e.handle.node) {
            *n = n.saturating_sub(1);
        }
        Some(e.info.user_id)
    }

    fn gone(&self, users: Vec<UserId>) -> Vec<UserId> {
        let mut out: Vec<UserId> = users
            .into_iter()
            .filter(|u| !self.table.is_online(u))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A session of `node` is live. A newer session with the same client id on another
    /// node keeps its place. Answers users that now have no remote session (a client id
    /// that moved to another user).
    pub fn up(&mut self, node: &str, s: SessionWire) -> Vec<UserId> {
        let node = self.intern(node);
        let mut left = Vec::new();
        if let Some(e) = self.table.get(&s.client_id) {
            if *e.handle.node != *node && e.handle.connected_ms > s.connected_ms {
                return left;
            }
            left.extend(self.remove_client(&s.client_id));
        }
        let handle = RemoteHandle {
            node: node.clone(),
            connected_ms: s.connected_ms,
        };
        let client = s.client_id.clone();
        let user = s.user_id.clone();
        if self.table.insert(s.info(), handle).is_ok() {
            *self.nodes.entry(node).or_insert(0) += 1;
            for g in &s.groups {
                if let Err(e) = self.table.join(&client, g) {
                    log::warn!("cluster: remote session {client} cannot be put in group {g}: {e}");
                }
            }
        }
        left.retain(|u| *u != user);
        self.gone(left)
    }

    /// A session of `node` ended (ignored if the client id lives on another node now).
    /// Answers the user if it has no remote session left.
    pub fn down(&mut self, node: &str, client: &ClientId) -> Vec<UserId> {
        match self.table.get(client) {
            Some(e) if *e.handle.node == *node => {}
            _ => return Vec::new(),
        }
        let users = self.remove_client(client).into_iter().collect();
        self.gone(users)
    }

    /// Replaces everything known of `node` with `sessions` (`None`: the node is gone).
    /// Answers users that have no remote session any more.
    pub fn replace_node(&mut self, node: &str, sessions: Option<Vec<SessionWire>>) -> Vec<UserId> {
        let held: Vec<ClientId> = self
            .table
            .sessions()
            .filter(|e| *e.handle.node == *node)
            .map(|e| e.info.client_id.clone())
            .collect();
        let mut users: Vec<UserId> = held.iter().filter_map(|c| self.remove_client(c)).collect();
        match sessions {
            Some(list) => {
                self.intern(node);
                for s in list {
                    users.extend(self.up(node, s));
                }
            }
            None => {
                self.nodes.remove(node);
            }
        }
        self.gone(users)
    }

    /// Replaces everything with a fresh read of every live node. Answers users that have
    /// no remote session any more.
    pub fn replace_all(&mut self, nodes: Vec<(String, Vec<SessionWire>)>) -> Vec<UserId> {
        let before: Vec<UserId> = self
            .table
            .online_users()
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        self.table = RoutingTable::default();
        self.nodes.clear();
        for (node, sessions) in nodes {
            self.intern(&node);
            for s in sessions {
                self.up(&node, s);
            }
        }
        self.gone(before)
    }

    /// Live nodes with their session counts, sorted by id.
    pub fn nodes(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .nodes
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(client: &str, user: &str, at: u64, groups: &[&str]) -> SessionWire {
        SessionWire {
            client_id: client.into(),
            user_id: user.into(),
            user_type: Default::default(),
            role: None,
            conn: at,
            connected_ms: at,
            groups: groups.iter().map(|g| (*g).into()).collect(),
        }
    }

    #[test]
    fn up_down_and_moves_between_nodes() {
        let mut m = Mirror::default();
        assert!(m.up("b", s("c1", "u", 10, &["g"])).is_empty());
        assert!(m.table.is_online(&"u".into()));
        assert_eq!(m.table.group_members(&"g".into()), Some(1));
        // The client moves to node c: the newer session wins, b's late news is ignored.
        m.up("c", s("c1", "u", 20, &[]));
        assert!(m.up("b", s("c1", "u", 10, &["g"])).is_empty());
        assert_eq!(m.down("b", &"c1".into()), Vec::<UserId>::new());
        assert_eq!(&*m.table.get(&"c1".into()).expect("on c").handle.node, "c");
        assert_eq!(m.table.group_members(&"g".into()), None);
        assert_eq!(m.down("c", &"c1".into()), vec![UserId::from("u")]);
        assert_eq!(m.table.session_count(), 0);
    }

    #[test]
    fn a_dead_node_takes_its_users_offline() {
        let mut m = Mirror::default();
        m.up("b", s("c1", "u", 1, &[]));
        m.up("b", s("c2", "v", 1, &[]));
        m.up("c", s("c3", "v", 1, &[]));
        assert_eq!(m.nodes(), vec![("b".into(), 2), ("c".into(), 1)]);
        assert_eq!(m.replace_node("b", None), vec![UserId::from("u")]);
        assert!(m.table.is_online(&"v".into()));
        assert_eq!(m.nodes(), vec![("c".into(), 1)]);
        let gone = m.replace_all(vec![("d".into(), vec![s("c9", "w", 5, &[])])]);
        assert_eq!(gone, vec![UserId::from("v")]);
        assert_eq!(m.nodes(), vec![("d".into(), 1)]);
    }
}
