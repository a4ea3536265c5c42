//! Where a message goes: [`Target`] (what callers ask for) and [`RecordTarget`] (what a
//! record keeps: the exact target, in a form that survives a restart).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::session::SessionInfo;
use crate::protocol::{ClientId, GroupId, UserId, UserType};

/// A predicate over sessions, for [`Target::Matching`].
pub type SessionPredicate = Arc<dyn Fn(&SessionInfo) -> bool + Send + Sync>;

/// Who a message goes to.
#[derive(Clone)]
#[non_exhaustive]
pub enum Target {
    /// Every session of one user.
    User(UserId),
    /// Every session of each of these users.
    Users(Vec<UserId>),
    /// Every member session of a group.
    Group(GroupId),
    /// Every session.
    Broadcast,
    /// Every session of users of this type.
    UserType(UserType),
    /// Every session whose role is this.
    Role(String),
    /// One session.
    Client(ClientId),
    /// These sessions.
    Clients(Vec<ClientId>),
    /// Every session the predicate accepts.
    Matching(SessionPredicate),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::User(u) => write!(f, "User({u})"),
            Target::Users(us) => write!(f, "Users({} users)", us.len()),
            Target::Group(g) => write!(f, "Group({g})"),
            Target::Broadcast => f.write_str("Broadcast"),
            Target::UserType(t) => write!(f, "UserType({t})"),
            Target::Role(r) => write!(f, "Role({r})"),
            Target::Client(c) => write!(f, "Client({c})"),
            Target::Clients(cs) => write!(f, "Clients({} sessions)", cs.len()),
            Target::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

/// The exact target a record keeps, so that a retry goes exactly where the message was meant
/// to go. A [`Target::Matching`] predicate cannot be stored: its record keeps the sessions
/// the predicate selected (`clients`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordTarget {
    /// Every session of a user.
    User(UserId),
    /// Every session of each of these users.
    Users(Vec<UserId>),
    /// Every member of a group.
    Group(GroupId),
    /// Everyone.
    Broadcast,
    /// Every session of users of this type.
    UserType(UserType),
    /// Every session with this role.
    Role(String),
    /// One session.
    Client(ClientId),
    /// These sessions (what a `Matching` predicate selected).
    Clients(Vec<ClientId>),
}

impl RecordTarget {
    /// The record form of `target`; `None` for [`Target::Matching`] (the caller records the
    /// sessions it selected instead).
    pub fn of(target: &Target) -> Option<RecordTarget> {
        Some(match target {
            Target::User(u) => RecordTarget::User(u.clone()),
            Target::Users(us) => RecordTarget::Users(us.clone()),
            Target::Group(g) => RecordTarget::Group(g.clone()),
            Target::Broadcast => RecordTarget::Broadcast,
            Target::UserType(t) => RecordTarget::UserType(*t),
            Target::Role(r) => RecordTarget::Role(r.clone()),
            Target::Client(c) => RecordTarget::Client(c.clone()),
            Target::Clients(cs) => RecordTarget::Clients(cs.clone()),
            Target::Matching(_) => return None,
        })
    }

    /// The routing target this record names.
    pub fn to_target(&self) -> Target {
        match self {
            RecordTarget::User(u) => Target::User(u.clone()),
            RecordTarget::Users(us) => Target::Users(us.clone()),
            RecordTarget::Group(g) => Target::Group(g.clone()),
            RecordTarget::Broadcast => Target::Broadcast,
            RecordTarget::UserType(t) => Target::UserType(*t),
            RecordTarget::Role(r) => Target::Role(r.clone()),
            RecordTarget::Client(c) => Target::Client(c.clone()),
            RecordTarget::Clients(cs) => Target::Clients(cs.clone()),
        }
    }
}
