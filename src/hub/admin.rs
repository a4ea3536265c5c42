//! The hub's side of the admin API: group membership by user, group listings, and record
//! queries by status, user and time.

use actix::prelude::*;
use serde::Serialize;

use super::{Hub, RecordFilter};
use crate::error::GroupError;
use crate::model::MessageRecord;
use crate::protocol::{ClientId, GroupId, UserId};

/// Adds every live session of a user to a group; answers how many joined (0 when the user
/// has no session, or all were members already).
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, GroupError>")]
pub struct AddUserToGroup {
    /// The user.
    pub user_id: UserId,
    /// The group.
    pub group: GroupId,
}

/// Removes every live session of a user from a group; answers how many left.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, GroupError>")]
pub struct RemoveUserFromGroup {
    /// The user.
    pub user_id: UserId,
    /// The group.
    pub group: GroupId,
}

/// One member session of a group.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupMember {
    /// The session.
    pub client_id: ClientId,
    /// Its user.
    pub user_id: UserId,
}

/// Asks for a group's member sessions (sorted by client id); `None` for no such group.
#[derive(Debug, Message)]
#[rtype(result = "Option<Vec<GroupMember>>")]
pub struct GetGroupMembers {
    /// The group.
    pub group: GroupId,
}

/// Lists records, oldest first, filtered and paged.
#[derive(Debug, Clone, Message)]
#[rtype(result = "RecordPage")]
pub struct ListRecords {
    /// By status (`None`: any).
    pub filter: Option<RecordFilter>,
    /// Sent by or to this user.
    pub user: Option<UserId>,
    /// Created at or after (epoch ms).
    pub since_ms: Option<u64>,
    /// Created before (epoch ms).
    pub until_ms: Option<u64>,
    /// Records to skip.
    pub offset: usize,
    /// At most this many.
    pub limit: usize,
}

/// One page of records.
#[derive(Debug, Clone, Serialize)]
pub struct RecordPage {
    /// Records matching the filter in all.
    pub total: usize,
    /// This page.
    pub records: Vec<MessageRecord>,
}

fn clients_of(hub: &Hub, user: &UserId) -> Vec<ClientId> {
    let table = hub.router.read();
    table
        .user_sessions(user)
        .map(|e| e.info.client_id.clone())
        .collect()
}

impl Handler<AddUserToGroup> for Hub {
    type Result = Result<usize, GroupError>;

    fn handle(&mut self, msg: AddUserToGroup, _: &mut Context<Self>) -> Self::Result {
        let mut joined = 0;
        for c in clients_of(self, &msg.user_id) {
            if self.router.write().join(&c, &msg.group)? {
                joined += 1;
                self.announce(&c);
            }
        }
        let elsewhere =
            (self.router.remote()).map_or(0, |r| r.group(&msg.user_id, &msg.group, true));
        Ok(joined + elsewhere)
    }
}

impl Handler<RemoveUserFromGroup> for Hub {
    type Result = Result<usize, GroupError>;

    fn handle(&mut self, msg: RemoveUserFromGroup, _: &mut Context<Self>) -> Self::Result {
        let mut left = 0;
        for c in clients_of(self, &msg.user_id) {
            if self.router.write().leave(&c, &msg.group)? {
                left += 1;
                self.announce(&c);
            }
        }
        let elsewhere =
            (self.router.remote()).map_or(0, |r| r.group(&msg.user_id, &msg.group, false));
        Ok(left + elsewhere)
    }
}

impl Handler<GetGroupMembers> for Hub {
    type Result = Option<Vec<GroupMember>>;

    fn handle(&mut self, msg: GetGroupMembers, _: &mut Context<Self>) -> Self::Result {
        let table = self.router.read();
        let local = table.group_clients(&msg.group);
        let remote: Vec<GroupMember> = (self.router.remote())
            .map(|r| r.group_members(&msg.group))
            .unwrap_or_default()
            .into_iter()
            .map(|(client_id, user_id)| GroupMember { client_id, user_id })
            .collect();
        if local.is_none() && remote.is_empty() {
            return None;
        }
        let mut members: Vec<GroupMember> = local
            .unwrap_or_default()
            .into_iter()
            .map(|e| GroupMember {
                client_id: e.info.client_id.clone(),
                user_id: e.info.user_id.clone(),
            })
            .chain(remote)
            .collect();
        members.sort_by(|a, b| a.client_id.as_str().cmp(b.client_id.as_str()));
        Some(members)
    }
}

fn status_matches(filter: Option<RecordFilter>, r: &MessageRecord, now: u64) -> bool {
    match filter {
        None => true,
        Some(RecordFilter::Status(s)) => r.status == s,
        Some(RecordFilter::Failed) => r.status.is_failure(),
        Some(RecordFilter::Retryable) => {
            r.status.is_failure()
                && r.status != crate::model::MessageStatus::Expired
                && !r.expired(now)
        }
    }
}

impl Handler<ListRecords> for Hub {
    type Result = MessageResult<ListRecords>;

    fn handle(&mut self, q: ListRecords, _: &mut Context<Self>) -> Self::Result {
        let now = crate::supervision::now_ms();
        let all = self.rel.records().matching(|r| {
            status_matches(q.filter, r, now)
                && q.since_ms.is_none_or(|t| r.created_ms >= t)
                && q.until_ms.is_none_or(|t| r.created_ms < t)
                && q.user.as_ref().is_none_or(|u| {
                    r.key.from == *u || r.recipients.iter().any(|d| d.user_id == *u)
                })
        });
        let total = all.len();
        let records = all.into_iter().skip(q.offset).take(q.limit).collect();
        MessageResult(RecordPage { total, records })
    }
}
