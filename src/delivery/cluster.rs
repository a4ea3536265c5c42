//! What cluster mode asks of the delivery layer: acks that arrive at another node, users
//! whose last session (anywhere) is gone, and records adopted from a dead node.

use super::{AckOutcome, Durable, Reliability};
use crate::model::{lifecycle, now_ms, MessageRecord};
use crate::protocol::{MessageId, UserId};

impl Reliability {
    /// A client acknowledged `id` (from `from`, when it said). In cluster mode, an ack for a
    /// record this node does not hold goes to the other nodes (the one holding it applies
    /// it).
    pub fn ack(&self, user: &UserId, id: &MessageId, from: Option<&UserId>) -> AckOutcome {
        let out = self.ack_here(user, id, from);
        let Some(remote) = self.router().remote() else {
            return out;
        };
        match &out {
            AckOutcome::Ignored => remote.forward_ack(user, id, from),
            // Delivered here from the shared store: the accepting node's record learns too.
            AckOutcome::Confirmed(key) => {
                if self.records().read(key, |r| r.rebuilt).unwrap_or(false) {
                    remote.forward_ack(user, id, Some(&key.from));
                }
            }
            AckOutcome::Ambiguous(_) => {}
        }
        out
    }

    /// The user has no session on any node any more (cluster mode): what awaited its ack is
    /// stored for its next connection.
    pub fn user_gone_everywhere(&self, user: &UserId) {
        let now = now_ms();
        for key in self.records().awaiting(user, None) {
            let Some((actions, envelope)) = self.records().update(&key, |r| {
                let a = lifecycle::on_user_gone(
                    r,
                    user,
                    None,
                    now,
                    "the user's sessions on other nodes are gone with the delivery awaiting its ack",
                );
                (a, r.envelope.clone())
            }) else {
                continue;
            };
            self.execute(&key, &envelope, actions);
        }
    }

    /// Records of a dead node this node took over (cluster mode): what they had in flight is
    /// stored for the recipients' next connection, as after a restart.
    pub fn adopt(&self, records: Vec<MessageRecord>) {
        if records.is_empty() {
            return;
        }
        let keys: Vec<_> = records.iter().map(|r| r.key.clone()).collect();
        let fresh: Vec<MessageRecord> = records
            .into_iter()
            .filter(|r| self.records().get(&r.key).is_none())
            .collect();
        self.records().load(fresh);
        let durable = self.store_in_flight_of(keys);
        actix_rt::spawn(async move {
            if let Err(e) = durable.await {
                log::error!(
                    "cluster: in-flight deliveries of a dead node could not be stored: {e}"
                );
            }
        });
    }

    /// Stores the deliveries in flight of these records; resolves once durable.
    pub(super) fn store_in_flight_of(&self, keys: Vec<crate::model::MessageKey>) -> Durable {
        let mut pending: Vec<Durable> = Vec::new();
        for key in keys {
            let Some((actions, envelope)) = self
                .records()
                .update(&key, |r| (lifecycle::on_shutdown(r), r.envelope.clone()))
            else {
                continue;
            };
            let (_, durable) = self.execute_collecting(&key, &envelope, actions);
            pending.extend(durable);
        }
        let store = self.store().cloned();
        let n = pending.len();
        Box::pin(async move {
            let mut result = Ok(());
            for p in pending {
                // A failure was put on the record and told to the handlers.
                if let Err(e) = p.await {
                    result = Err(e);
                }
            }
            if let Some(store) = store {
                if let Err(e) = store.flush().await {
                    log::error!("cannot write the message records: {e}");
                    result = Err(e);
                }
            }
            if n > 0 {
                log::info!("stored {n} in-flight messages for their recipients' next connection");
            }
            result
        })
    }
}
