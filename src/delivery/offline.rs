//! Store-and-forward on connect: a new session receives its user's stored messages, oldest
//! first, before any live message (live frames are held behind the backlog), paged in as the
//! session's queue drains so that a reader is never closed for its own backlog.

use std::sync::Arc;
use std::time::Duration;

use super::Reliability;
use crate::model::lifecycle;
use crate::model::{MessageKey, MessageRecord, RecordTarget};
use crate::protocol::{ClientId, OutboundFrame, Source, UserId};
use crate::routing::{Inbox, PushError};

/// Items read from the store per page.
const PAGE: usize = 256;

pub(super) fn deliver_backlog(rel: Reliability, user: UserId, client: ClientId, inbox: Arc<Inbox>) {
    actix_rt::spawn(async move {
        let Some(store) = rel.store().cloned() else {
            inbox.release();
            return;
        };
        // One read at a time per session, after what it already took (see `Inbox`'s
        // backlog): a second request (a message stored through another node) is served by
        // the read under way, and never queues a copy twice.
        let Some(mut after) = inbox.backlog_begin() else {
            return;
        };
        let mut total = 0usize;
        let cap = rel.config().store.per_user_cap.max(1);
        let wait = Duration::from_millis(rel.config().session.write_timeout_ms.max(1));
        // Removals of the copies delivered, queued as each page is (the next page is read
        // after their positions: it need not wait for them); answered at the end.
        let mut removals = Vec::new();
        'pages: loop {
            let page = match store.fetch(user.clone(), after, PAGE.min(cap)).await {
                Ok(p) => p,
                Err(e) => {
                    log::error!(
                        "cannot read stored messages of user_id={user} for client_id={client}: {e}; they stay stored"
                    );
                    inbox.backlog_stopped(after);
                    break;
                }
            };
            if page.is_empty() {
                if inbox.backlog_more(after) {
                    continue;
                }
                break;
            }
            let mut plain = Vec::new();
            for item in page {
                let seq = item.seq;
                let envelope = item.envelope;
                let mut frame = OutboundFrame::new(envelope.clone(), Source::Offline);
                loop {
                    match inbox.push_backlog(frame) {
                        Ok(()) => break,
                        Err(PushError::Closed(_)) => {
                            inbox.backlog_stopped(after);
                            break 'pages;
                        }
                        Err(PushError::Full(f)) => {
                            frame = f;
                            // Wait for the writer to take a batch; a writer stuck that long
                            // is closing the session anyway.
                            if tokio::time::timeout(wait, inbox.drained.notified())
                                .await
                                .is_err()
                                && inbox.is_closing()
                            {
                                inbox.backlog_stopped(after);
                                break 'pages;
                            }
                        }
                    }
                }
                after = after.max(seq);
                total += 1;
                let key = MessageKey::of(&envelope);
                if !envelope.require_ack {
                    plain.push(key);
                    continue;
                }
                track_stored(&rel, &key, &envelope, &user);
            }
            if !plain.is_empty() {
                removals.push(store.remove_through(user.clone(), plain, Some(after)));
            }
        }
        inbox.release();
        if total > 0 {
            log::info!("delivered {total} stored messages to client_id={client} user_id={user}");
        }
        for removal in removals {
            if let Err(e) = removal.await {
                log::error!("cannot remove delivered offline messages of user_id={user}: {e}");
            }
        }
    });
}

/// An ACK-requested stored copy was queued: its record (rebuilt if it was purged) awaits the
/// user's ack; the copy leaves the store once acked.
fn track_stored(
    rel: &Reliability,
    key: &MessageKey,
    envelope: &Arc<crate::protocol::Envelope>,
    user: &UserId,
) {
    let now = crate::model::now_ms();
    let actions = rel
        .records()
        .update(key, |r| lifecycle::on_delivered_from_store(r, user, now));
    let actions = match actions {
        Some(a) => a,
        None => {
            let c = rel.config();
            let mut r = MessageRecord::new(
                envelope.clone(),
                RecordTarget::User(user.clone()),
                true,
                Duration::from_millis(c.ack.ack_timeout_ms),
            );
            r.max_retries = c.retry.max_retries;
            r.storable = true;
            r.rebuilt = true;
            let a = lifecycle::on_delivered_from_store(&mut r, user, now);
            rel.records().insert(r);
            a
        }
    };
    rel.execute(key, envelope, actions);
}
