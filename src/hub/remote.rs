//! The hub's side of cluster mode: closes and group changes other nodes ask for (applied to
//! local sessions only, never sent back out), and stored messages to hand to local sessions.

use actix::prelude::*;

use super::Hub;
use crate::protocol::{CloseCode, GroupId, UserId};
use crate::routing::CloseWho;

/// Closes local sessions (another node kicked a user, disconnected or took over a client).
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CloseLocal {
    /// Whose sessions.
    pub who: CloseWho,
    /// The close code.
    pub code: CloseCode,
    /// The close reason.
    pub reason: String,
}

/// Adds (`join`) or removes a user's local sessions to/from a group (asked by another node).
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct GroupLocal {
    /// The user.
    pub user: UserId,
    /// The group.
    pub group: GroupId,
    /// Join or leave.
    pub join: bool,
}

/// Another node stored a message for this user while it connected here: deliver the user's
/// stored messages to its local sessions.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RedeliverStored {
    /// The user.
    pub user: UserId,
}

/// Delayed messages of a dead node this node took over: sent here at their due time.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AdoptDelayed {
    /// The messages.
    pub items: Vec<crate::store::DelayedItem>,
}

impl Handler<AdoptDelayed> for Hub {
    type Result = ();

    fn handle(&mut self, msg: AdoptDelayed, ctx: &mut Context<Self>) {
        log::info!(
            "adopted {} delayed messages of a dead node",
            msg.items.len()
        );
        self.delayed.load(msg.items);
        self.delayed.arm(ctx);
    }
}

impl Hub {
    /// Tells other nodes that a local session changed (cluster mode).
    pub(super) fn announce(&self, client: &crate::protocol::ClientId) {
        if let Some(r) = self.router.remote() {
            r.session_changed(client);
        }
    }
}

impl Handler<CloseLocal> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: CloseLocal, _: &mut Context<Self>) -> usize {
        let victims = self.sessions_where(|i| match &msg.who {
            CloseWho::User(u) => i.user_id == *u,
            CloseWho::Client(c) => i.client_id == *c,
        });
        for (handle, info) in &victims {
            log::info!(
                "closing client_id={} user_id={} with {} (asked by another node)",
                info.client_id,
                info.user_id,
                msg.code.code()
            );
            self.close_session(handle, info, msg.code, &msg.reason, false);
        }
        victims.len()
    }
}

impl Handler<GroupLocal> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: GroupLocal, _: &mut Context<Self>) -> usize {
        let clients: Vec<_> = self
            .router
            .read()
            .user_sessions(&msg.user)
            .map(|e| e.info.client_id.clone())
            .collect();
        let mut changed = 0;
        for c in clients {
            let res = if msg.join {
                self.router.write().join(&c, &msg.group)
            } else {
                self.router.write().leave(&c, &msg.group)
            };
            match res {
                Ok(true) => {
                    changed += 1;
                    self.announce(&c);
                }
                Ok(false) => {}
                Err(e) => log::warn!(
                    "group change from another node refused for client_id={c} group={}: {e}",
                    msg.group
                ),
            }
        }
        changed
    }
}

impl Handler<RedeliverStored> for Hub {
    type Result = ();

    fn handle(&mut self, msg: RedeliverStored, _: &mut Context<Self>) {
        let sessions: Vec<_> = self
            .router
            .read()
            .user_sessions(&msg.user)
            .map(|e| (e.info.client_id.clone(), e.handle.inbox.clone()))
            .collect();
        for (client, inbox) in sessions {
            self.rel.deliver_backlog(msg.user.clone(), client, inbox);
        }
    }
}
