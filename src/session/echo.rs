//! Echo mode, for the `/echo` route and the Autobahn testsuite: a session that sends every
//! data message back instead of parsing it. Everything before that point is the `/ws`
//! session's own code: frame size limit, continuation reassembly, UTF-8 validation, the
//! rate limit, ping/pong, heartbeat and close handling.

use actix::prelude::*;
use bytestring::ByteString;

use super::{Outgoing, Session};

impl Session {
    /// Makes this session echo data messages (the `/echo` route).
    pub(crate) fn echo(mut self) -> Self {
        self.echo = true;
        self
    }

    /// Drops the welcome frame the hub queued: an echo peer expects only its own messages.
    pub(super) fn clear_for_echo(&mut self) {
        let dropped = self.inbox.lock().drain_app();
        self.undelivered.extend(dropped);
    }

    pub(super) fn echo_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        if self.on_data(None, ctx) {
            self.send_control(ByteString::from(text), ctx);
        }
    }

    pub(super) fn echo_binary(&mut self, data: bytes::Bytes, ctx: &mut Context<Self>) {
        if self.on_data(None, ctx)
            && !self.inbox.push_control(Outgoing::Binary(data))
            && !self.inbox.is_closing()
        {
            self.overflow(ctx);
        }
    }
}
