//! A session's part of a runtime config update: new heartbeat and client timeouts re-arm
//! its timers, new rate limits replace its token bucket, a new queue limit resizes its
//! inbox. The frame size limit and write timeout are fixed per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{Session, TokenBucket};
use crate::config::Config;
use crate::routing::Outgoing;

/// The configuration changed (sent by the hub to every live session).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reconfigure {
    /// The configuration now in force.
    pub config: Arc<Config>,
}

impl Session {
    /// (Re-)arms the heartbeat ping and the silence check from the current config.
    pub(super) fn arm_timers(&mut self, ctx: &mut Context<Self>) {
        for t in self.timers.drain(..) {
            ctx.cancel_future(t);
        }
        let s = &self.config.session;
        let heartbeat = Duration::from_millis(s.heartbeat_interval_ms);
        let ping = ctx.run_interval(heartbeat, |act, ctx| {
            if !act.inbox.push_control(Outgoing::Ping) && !act.inbox.is_closing() {
                act.overflow(ctx);
            }
        });
        let check =
            Duration::from_millis((s.client_timeout_ms / 4).clamp(1, s.heartbeat_interval_ms));
        let silence = ctx.run_interval(check, |act, ctx| act.check_heartbeat(ctx));
        self.timers.push(ping);
        self.timers.push(silence);
    }
}

impl Handler<Reconfigure> for Session {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        let (old, new) = (&self.config.session, &msg.config.session);
        let rate_changed = (old.rate_limit_per_sec, old.rate_limit_burst)
            != (new.rate_limit_per_sec, new.rate_limit_burst);
        let timers_changed = (old.heartbeat_interval_ms, old.client_timeout_ms)
            != (new.heartbeat_interval_ms, new.client_timeout_ms);
        if rate_changed {
            self.bucket =
                TokenBucket::new(new.rate_limit_per_sec, new.rate_limit_burst, Instant::now());
        }
        if old.queue_bytes != new.queue_bytes {
            self.inbox.set_capacity(new.queue_bytes);
        }
        self.config = msg.config;
        if timers_changed && !self.closing {
            self.arm_timers(ctx);
            // A shortened timeout applies to the silence already counted.
            self.check_heartbeat(ctx);
        }
        log::debug!("session reconfigured client_id={}", self.info.client_id);
    }
}
