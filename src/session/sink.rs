//! Where an SSE session's writer puts its bytes: a Server-Sent Events stream (`GET /sse`,
//! see `server::sse`). Everything above the sink (inbox, priorities, ACK, heartbeat, close
//! codes) is the same as for a WebSocket, whose frames leave through `body::InboxBody`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix_ws::CloseReason;
use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::mpsc;

/// Events an SSE stream keeps for a reconnecting client (`Last-Event-ID`).
pub const SSE_REPLAY_EVENTS: usize = 512;

/// The write side of a connection went away.
#[derive(Debug)]
pub(crate) struct SinkClosed;

/// What the SSE writer task writes (a WebSocket's frames leave through `body::InboxBody`).
impl SseSink {
    pub(crate) async fn text(&mut self, text: ByteString) -> Result<(), SinkClosed> {
        self.event(&text).await
    }

    /// A comment: keeps proxies from timing the stream out; clients ignore it.
    pub(crate) async fn ping(&mut self) -> Result<(), SinkClosed> {
        self.raw(Bytes::from_static(b": ping\n\n")).await
    }

    /// SSE clients never send WebSocket pings, so there is nothing to answer.
    pub(crate) async fn pong(&mut self, _payload: &[u8]) -> Result<(), SinkClosed> {
        Ok(())
    }

    /// A binary frame (only the echo route writes them) cannot go over SSE.
    pub(crate) async fn binary(&mut self, _data: Bytes) -> Result<(), SinkClosed> {
        log::error!("a binary frame cannot go over SSE; closing the stream");
        Err(SinkClosed)
    }

    pub(crate) async fn close(mut self, reason: CloseReason) -> Result<(), SinkClosed> {
        let body = serde_json::json!({
            "code": u16::from(reason.code),
            "reason": reason.description.unwrap_or_default(),
        });
        self.raw(Bytes::from(format!("event: close\ndata: {body}\n\n")))
            .await
    }
}

/// An SSE event stream that outlives one HTTP response: it numbers events (`id: KEY-N`) and
/// keeps the last [`SSE_REPLAY_EVENTS`] so a client reconnecting with `Last-Event-ID` gets
/// what it missed.
#[derive(Debug)]
pub struct SseStream {
    key: String,
    user_id: String,
    client_id: String,
    state: Mutex<StreamState>,
}

#[derive(Debug, Default)]
struct StreamState {
    next: u64,
    ring: VecDeque<(u64, Bytes)>,
    attached: usize,
    ended_at: Option<Instant>,
}

impl SseStream {
    /// A new stream for one user's session (`client_id`).
    pub fn new(key: String, user_id: String, client_id: String) -> Self {
        SseStream {
            key,
            user_id,
            client_id,
            state: Mutex::new(StreamState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream's key (the part of every event id before the `-`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The user the stream belongs to.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The client id of its sessions.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Events after `last` (the number in a `Last-Event-ID`), oldest first; `None` when the
    /// ring no longer reaches back that far (something was missed and cannot be replayed).
    pub fn replay_after(&self, last: u64) -> Option<Vec<Bytes>> {
        let st = self.lock();
        if let Some((first, _)) = st.ring.front() {
            if *first > last + 1 {
                return None;
            }
        } else if st.next > last + 1 {
            return None;
        }
        Some(
            st.ring
                .iter()
                .filter(|(n, _)| *n > last)
                .map(|(_, b)| b.clone())
                .collect(),
        )
    }

    /// When the last session writing to it ended; `None` while one is attached.
    pub fn ended_at(&self) -> Option<Instant> {
        let st = self.lock();
        if st.attached > 0 {
            None
        } else {
            st.ended_at
        }
    }

    fn numbered(&self, text: &str) -> (u64, Bytes) {
        let mut st = self.lock();
        st.next += 1;
        let n = st.next;
        let mut out = format!("id: {}-{n}\n", self.key);
        for line in text.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        (n, Bytes::from(out))
    }

    fn remember(&self, n: u64, event: Bytes) {
        let mut st = self.lock();
        st.ring.push_back((n, event));
        while st.ring.len() > SSE_REPLAY_EVENTS {
            st.ring.pop_front();
        }
    }
}

/// The writer's end of one SSE response.
pub struct SseSink {
    stream: Arc<SseStream>,
    tx: mpsc::Sender<Bytes>,
}

impl SseSink {
    /// A sink writing `stream`'s events into an HTTP response body fed by `tx`.
    pub fn new(stream: Arc<SseStream>, tx: mpsc::Sender<Bytes>) -> Self {
        stream.lock().attached += 1;
        SseSink { stream, tx }
    }

    async fn event(&mut self, text: &str) -> Result<(), SinkClosed> {
        let (n, event) = self.stream.numbered(text);
        // Remembered first: an event queued into a response that then drops is replayed.
        self.stream.remember(n, event.clone());
        self.raw(event).await
    }

    async fn raw(&mut self, bytes: Bytes) -> Result<(), SinkClosed> {
        self.tx.send(bytes).await.map_err(|_| SinkClosed)
    }
}

impl Drop for SseSink {
    fn drop(&mut self) {
        let mut st = self.stream.lock();
        st.attached = st.attached.saturating_sub(1);
        st.ended_at = Some(Instant::now());
    }
}

/// What an SSE session reads and writes: frames POSTed by the client, and the sink.
pub struct SseIo {
    /// Frames from `POST /sse/{token}` (as the WebSocket reader would produce them).
    pub inbound: mpsc::Receiver<Result<actix_ws::Message, actix_ws::ProtocolError>>,
    /// The event stream.
    pub sink: SseSink,
}
