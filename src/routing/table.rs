//! The pure routing table: sessions by client id, user and group. No actors, no locks: the
//! hub owns writes, routing reads it under a read lock (see [`super::router`]).

use std::collections::hash_map::Entry;

use foldhash::fast::RandomState;

use crate::error::{ConnectError, GroupError};

/// The table's maps hash with foldhash (seeded per process), as the record book does:
/// lookups are on every routed message, and SipHash showed in its profile.
type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;
type HashSet<K> = std::collections::HashSet<K, RandomState>;
use crate::model::{SessionInfo, Target};
use crate::protocol::{ClientId, GroupId, UserId};

/// A session in the table: its info, the handle routing pushes to, its groups.
#[derive(Debug)]
pub struct SessionEntry<H> {
    /// What the hub knows about the session.
    pub info: SessionInfo,
    /// The handle frames are pushed to.
    pub handle: H,
    groups: HashSet<GroupId>,
}

impl<H> SessionEntry<H> {
    /// The groups the session is in.
    pub fn groups(&self) -> impl Iterator<Item = &GroupId> {
        self.groups.iter()
    }
}

/// Who a target selected, for reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Sessions selected.
    pub sessions: usize,
    /// Users named by the target that have no session.
    pub offline_users: Vec<UserId>,
    /// The target named a group that does not exist.
    pub unknown_group: bool,
}

/// Sessions indexed by client id, user and group.
#[derive(Debug)]
pub struct RoutingTable<H> {
    sessions: HashMap<ClientId, SessionEntry<H>>,
    users: HashMap<UserId, Vec<ClientId>>,
    groups: HashMap<GroupId, HashSet<ClientId>>,
}

impl<H> Default for RoutingTable<H> {
    fn default() -> Self {
        RoutingTable {
            sessions: HashMap::default(),
            users: HashMap::default(),
            groups: HashMap::default(),
        }
    }
}

impl<H> RoutingTable<H> {
    /// Adds a session. A session of the same user with the same client id is removed and
    /// returned (the caller closes it with 4002); another user's is an error.
    pub fn insert(
        &mut self,
        info: SessionInfo,
        handle: H,
    ) -> Result<Option<SessionEntry<H>>, ConnectError> {
        let replaced = match self.sessions.get(&info.client_id) {
            Some(old) if old.info.user_id != info.user_id => {
                return Err(ConnectError::ClientIdInUse(info.client_id));
            }
            Some(old) => {
                let conn = old.info.conn;
                self.remove(&info.client_id, conn)
            }
            None => None,
        };
        self.users
            .entry(info.user_id.clone())
            .or_default()
            .push(info.client_id.clone());
        self.sessions.insert(
            info.client_id.clone(),
            SessionEntry {
                info,
                handle,
                groups: HashSet::default(),
            },
        );
        Ok(replaced)
    }

    /// Removes a session if `conn` still names it (a replaced session's late disconnect must
    /// not remove its successor).
    pub fn remove(&mut self, client_id: &ClientId, conn: u64) -> Option<SessionEntry<H>> {
        match self.sessions.get(client_id) {
            Some(e) if e.info.conn == conn => {}
            _ => return None,
        }
        let entry = self.sessions.remove(client_id)?;
        if let Entry::Occupied(mut o) = self.users.entry(entry.info.user_id.clone()) {
            o.get_mut().retain(|c| c != client_id);
            if o.get().is_empty() {
                o.remove();
            }
        }
        for g in &entry.groups {
            if let Entry::Occupied(mut o) = self.groups.entry(g.clone()) {
                o.get_mut().remove(client_id);
                if o.get().is_empty() {
                    o.remove();
                }
            }
        }
        Some(entry)
    }

    /// Adds a session to a group; `Ok(false)` if it was a member already.
    pub fn join(&mut self, client_id: &ClientId, group: &GroupId) -> Result<bool, GroupError> {
        if group.as_str().is_empty() {
            return Err(GroupError::EmptyName);
        }
        let entry = self
            .sessions
            .get_mut(client_id)
            .ok_or_else(|| GroupError::UnknownSession(client_id.clone()))?;
        if !entry.groups.insert(group.clone()) {
            return Ok(false);
        }
        self.groups
            .entry(group.clone())
            .or_default()
            .insert(client_id.clone());
        Ok(true)
    }

    /// [`RoutingTable::join`] within limits: at most `max_groups` groups for the session and
    /// `max_members` sessions in the group.
    pub fn join_within(
        &mut self,
        client_id: &ClientId,
        group: &GroupId,
        max_groups: usize,
        max_members: usize,
    ) -> Result<bool, GroupError> {
        if let Some(entry) = self.sessions.get(client_id) {
            if entry.groups.contains(group) {
                return Ok(false);
            }
            if entry.groups.len() >= max_groups {
                return Err(GroupError::TooManyGroups(max_groups));
            }
            if self.groups.get(group).map_or(0, HashSet::len) >= max_members {
                return Err(GroupError::GroupFull(max_members));
            }
        }
        self.join(client_id, group)
    }

    /// Removes a session from a group; `Ok(false)` if it was not a member.
    pub fn leave(&mut self, client_id: &ClientId, group: &GroupId) -> Result<bool, GroupError> {
        let entry = self
            .sessions
            .get_mut(client_id)
            .ok_or_else(|| GroupError::UnknownSession(client_id.clone()))?;
        if !entry.groups.remove(group) {
            return Ok(false);
        }
        if let Entry::Occupied(mut o) = self.groups.entry(group.clone()) {
            o.get_mut().remove(client_id);
            if o.get().is_empty() {
                o.remove();
            }
        }
        Ok(true)
    }

    /// One session.
    pub fn get(&self, client_id: &ClientId) -> Option<&SessionEntry<H>> {
        self.sessions.get(client_id)
    }

    /// One session, mutable (for metadata).
    pub fn get_mut(&mut self, client_id: &ClientId) -> Option<&mut SessionEntry<H>> {
        self.sessions.get_mut(client_id)
    }

    /// The sessions of one user.
    pub fn user_sessions<'a>(&'a self, user: &UserId) -> impl Iterator<Item = &'a SessionEntry<H>> {
        self.users
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|c| self.sessions.get(c))
    }

    /// Every session.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionEntry<H>> {
        self.sessions.values()
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of users with at least one session.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether a user has a session.
    pub fn is_online(&self, user: &UserId) -> bool {
        self.users.contains_key(user)
    }

    /// Users with their session counts, sorted by user id.
    pub fn online_users(&self) -> Vec<(UserId, usize)> {
        let mut out: Vec<_> = self
            .users
            .iter()
            .map(|(u, s)| (u.clone(), s.len()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of groups with at least one member.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Members of a group, `None` if the group does not exist.
    pub fn group_members(&self, group: &GroupId) -> Option<usize> {
        self.groups.get(group).map(HashSet::len)
    }

    /// The member sessions of a group, `None` if the group does not exist.
    pub fn group_clients(&self, group: &GroupId) -> Option<Vec<&SessionEntry<H>>> {
        let members = self.groups.get(group)?;
        Some(members.iter().filter_map(|c| self.get(c)).collect())
    }

    /// Calls `f` for every session `target` selects, except `exclude`.
    pub fn select(
        &self,
        target: &Target,
        exclude: Option<&ClientId>,
        mut f: impl FnMut(&SessionEntry<H>),
    ) -> Selection {
        let mut sel = Selection::default();
        let mut visit = |e: &SessionEntry<H>| {
            if exclude != Some(&e.info.client_id) {
                sel.sessions += 1;
                f(e);
            }
        };
        let mut offline = Vec::new();
        let mut unknown_group = false;
        match target {
            Target::User(u) => {
                let before = self.users.contains_key(u);
                self.user_sessions(u).for_each(&mut visit);
                if !before {
                    offline.push(u.clone());
                }
            }
            Target::Users(us) => {
                for u in us {
                    if self.users.contains_key(u) {
                        self.user_sessions(u).for_each(&mut visit);
                    } else {
                        offline.push(u.clone());
                    }
                }
            }
            Target::Group(g) => match self.groups.get(g) {
                Some(members) => members
                    .iter()
                    .filter_map(|c| self.sessions.get(c))
                    .for_each(&mut visit),
                None => unknown_group = true,
            },
            Target::Broadcast => self.sessions.values().for_each(&mut visit),
            Target::UserType(t) => self
                .sessions
                .values()
                .filter(|e| e.info.user_type == *t)
                .for_each(&mut visit),
            Target::Role(r) => self
                .sessions
                .values()
                .filter(|e| e.info.role.as_deref() == Some(r.as_str()))
                .for_each(&mut visit),
            Target::Client(c) => self.sessions.get(c).into_iter().for_each(&mut visit),
            Target::Clients(cs) => cs
                .iter()
                .filter_map(|c| self.sessions.get(c))
                .for_each(&mut visit),
            Target::Matching(pred) => self
                .sessions
                .values()
                .filter(|e| pred(&e.info))
                .for_each(&mut visit),
        }
        sel.offline_users = offline;
        sel.unknown_group = unknown_group;
        sel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionPredicate;
    use crate::protocol::UserType;
    use serde_json::Map;
    use std::sync::Arc;
    use std::time::SystemTime;

    fn info(client: &str, user: &str, conn: u64) -> SessionInfo {
        SessionInfo {
            client_id: client.into(),
            user_id: user.into(),
            user_type: UserType::Customer,
            role: None,
            conn,
            connected_at: SystemTime::now(),
            metadata: Map::new(),
        }
    }

    fn picked(t: &RoutingTable<u32>, target: &Target, exclude: Option<&str>) -> Vec<u32> {
        let ex = exclude.map(ClientId::from);
        let mut out = Vec::new();
        t.select(target, ex.as_ref(), |e| out.push(e.handle));
        out.sort();
        out
    }

    #[test]
    fn users_have_several_sessions_and_groups_exclude_the_sender() {
        let mut t = RoutingTable::default();
        t.insert(info("a1", "alice", 1), 1).expect("insert");
        t.insert(info("a2", "alice", 2), 2).expect("insert");
        t.insert(info("b1", "bob", 3), 3).expect("insert");
        assert_eq!(picked(&t, &Target::User("alice".into()), None), vec![1, 2]);
        for c in ["a1", "b1"] {
            t.join(&c.into(), &"room".into()).expect("join");
        }
        assert_eq!(
            picked(&t, &Target::Group("room".into()), Some("a1")),
            vec![3]
        );
        assert_eq!(picked(&t, &Target::Broadcast, None), vec![1, 2, 3]);
        assert_eq!(
            t.online_users(),
            vec![("alice".into(), 2), ("bob".into(), 1)]
        );
        let sel = t.select(
            &Target::Users(vec!["bob".into(), "carol".into()]),
            None,
            |_| {},
        );
        assert_eq!(sel.sessions, 1);
        assert_eq!(sel.offline_users, vec![UserId::from("carol")]);
        assert!(
            t.select(&Target::Group("nope".into()), None, |_| {})
                .unknown_group
        );
        assert_eq!(t.join(&"a1".into(), &"".into()), Err(GroupError::EmptyName));
    }

    #[test]
    fn replacement_and_stale_removal() {
        let mut t = RoutingTable::default();
        t.insert(info("c", "alice", 1), 1).expect("insert");
        t.join(&"c".into(), &"g".into()).expect("join");
        let old = t
            .insert(info("c", "alice", 2), 2)
            .expect("same user replaces");
        assert_eq!(old.map(|e| e.handle), Some(1));
        assert_eq!(
            t.group_members(&"g".into()),
            None,
            "replaced session left its groups"
        );
        assert!(matches!(
            t.insert(info("c", "bob", 3), 3),
            Err(ConnectError::ClientIdInUse(_))
        ));
        assert!(
            t.remove(&"c".into(), 1).is_none(),
            "stale conn does not remove the new one"
        );
        assert!(t.remove(&"c".into(), 2).is_some());
        assert_eq!(t.session_count(), 0);
        assert_eq!(t.user_count(), 0);
    }

    #[test]
    fn type_role_and_predicate_targets() {
        let mut t = RoutingTable::default();
        let mut agent = info("x", "ann", 1);
        agent.user_type = UserType::Agent;
        agent.role = Some("lead".into());
        t.insert(agent, 1).expect("insert");
        t.insert(info("y", "bo", 2), 2).expect("insert");
        assert_eq!(
            picked(&t, &Target::UserType(UserType::Agent), None),
            vec![1]
        );
        assert_eq!(picked(&t, &Target::Role("lead".into()), None), vec![1]);
        let pred: SessionPredicate = Arc::new(|i| i.user_id.as_str() == "bo");
        assert_eq!(picked(&t, &Target::Matching(pred), None), vec![2]);
    }
}
