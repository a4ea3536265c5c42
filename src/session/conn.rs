//! The raw WebSocket transport under the [`Session`] actor: the upgraded socket itself,
//! driven from the session's own task. Used by [`crate::server::WscHttpServer`], which takes
//! `/ws` upgrades below actix-web's dispatcher (actix-http's upgrade hook) and hands the
//! socket here.
//!
//! One [`WsConn`] is one stream of the session's [`actix::Context`]: each poll first hands
//! the session the frames already read, then writes what the session's inbox holds (one
//! write for everything queued, [`Outbound`]), then reads. A delivery pushes to the inbox and
//! wakes the session's task, which writes it: one task per connection, no channel, no
//! dispatcher in between. Buffers exist only while data flows: an idle connection holds no
//! read or write buffer.
//!
//! Closing follows RFC 6455 section 7: after the session's close frame is written, the
//! write side is shut down; when the peer's close frame already came (or reading failed),
//! the stream ends at once, otherwise it ends when the peer answers (its close frame ends
//! the session) or closes the socket, bounded by the session's close deadline.
//!
//! [`Session`]: super::Session

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::{Codec, Frame, Message, ProtocolError};
use bytes::{Buf, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Decoder;

use super::outbound::{Filled, Outbound};

/// Room a read must have; the buffer grows by [`READ_CHUNK`] when less is left.
const MIN_READ_ROOM: usize = 1024;
/// Bytes reserved for a read when the buffer is (nearly) full.
const READ_CHUNK: usize = 4096;

/// Spare empty read buffers a worker thread keeps for its connections.
const SPARE_READ_BUFFERS: usize = 64;

thread_local! {
    /// Read buffers given back by idle connections, reused by the next that reads: a
    /// connection holds none while idle, and a busy one does not allocate one per wake-up
    /// (a 4 KiB request is where glibc's malloc consolidates its small free lists, which
    /// showed in the p2p profile).
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer: a spare one of this thread, or a new one.
fn take_read_buf() -> BytesMut {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
}

/// Keeps an emptied read buffer for reuse when nothing else refers to its memory (a frame
/// handed to the session may still) and it is of the usual size; otherwise it is freed.
fn give_back(mut buf: BytesMut) {
    buf.clear();
    if buf.capacity() > 4 * READ_CHUNK || !buf.try_reclaim(READ_CHUNK) {
        return;
    }
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_READ_BUFFERS {
            s.push(buf);
        }
    });
}

/// A byte stream a session can run on (TCP, or TLS over TCP).
pub trait RawIo: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> RawIo for T {}

/// Where the write side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteState {
    /// Writing what the inbox holds.
    Open,
    /// The close frame is in the write buffer.
    CloseQueued,
    /// The close frame is written and flushed; the write side is being shut down.
    ShuttingDown,
    /// Nothing more will be written.
    Done,
}

/// An upgraded WebSocket connection, read and written from the session's task.
pub(crate) struct WsConn {
    io: Box<dyn RawIo>,
    out: Outbound,
    decoder: Codec,
    read_buf: BytesMut,
    write_buf: BytesMut,
    write: WriteState,
    /// The peer's close frame was read (or reading failed): nothing is awaited from it.
    peer_done: bool,
    /// The socket reported end of file.
    eof: bool,
    /// The stream has ended (returned `None` or a terminal error).
    ended: bool,
}

impl WsConn {
    /// A connection on `io` whose first bytes (read with the upgrade request) are
    /// `read_buf`, writing `out`'s inbox; frames over `max_frame_bytes` are refused.
    pub(crate) fn new(
        io: Box<dyn RawIo>,
        read_buf: BytesMut,
        out: Outbound,
        max_frame_bytes: usize,
    ) -> Self {
        WsConn {
            io,
            out,
            decoder: Codec::new().max_size(max_frame_bytes),
            read_buf,
            write_buf: BytesMut::new(),
            write: WriteState::Open,
            peer_done: false,
            eof: false,
            ended: false,
        }
    }

    /// Writes until the socket would block or nothing is left; `Ok(true)` once the close
    /// frame is written and the write side shut down.
    fn poll_writes(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        loop {
            while !self.write_buf.is_empty() {
                match Pin::new(&mut self.io).poll_write(cx, &self.write_buf) {
                    Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                    Poll::Ready(Ok(n)) => self.write_buf.advance(n),
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok(false),
                }
            }
            match self.write {
                WriteState::Open => {
                    if Pin::new(&mut self.io).poll_flush(cx)?.is_pending() {
                        return Ok(false);
                    }
                    // Registered before the queue is looked at: a push after the look wakes
                    // this task.
                    self.out.inbox().register_writer(cx.waker());
                    match self.out.fill(&mut self.write_buf) {
                        Ok(Filled::Open) if self.write_buf.is_empty() => {
                            // Idle: no buffer is kept between bursts.
                            self.write_buf = BytesMut::new();
                            return Ok(false);
                        }
                        Ok(Filled::Open) => {}
                        Ok(Filled::Closed) => self.write = WriteState::CloseQueued,
                        Err(_) => return Err(io::Error::other("frame encoding failed")),
                    }
                }
                WriteState::CloseQueued => {
                    if Pin::new(&mut self.io).poll_flush(cx)?.is_pending() {
                        return Ok(false);
                    }
                    self.write = WriteState::ShuttingDown;
                }
                WriteState::ShuttingDown => {
                    match Pin::new(&mut self.io).poll_shutdown(cx) {
                        Poll::Pending => return Ok(false),
                        // A peer that is already gone cannot be shut down: it is done too.
                        Poll::Ready(_) => self.write = WriteState::Done,
                    }
                }
                WriteState::Done => return Ok(true),
            }
        }
    }

    /// The next frame already in the read buffer.
    fn decode(&mut self) -> Option<Result<Message, ProtocolError>> {
        if self.peer_done && self.read_buf.is_empty() {
            return None;
        }
        let frame = match self.decoder.decode(&mut self.read_buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return None,
            Err(e) => {
                self.stop_reading();
                return Some(Err(e));
            }
        };
        Some(Ok(match frame {
            Frame::Text(bytes) => match ByteString::try_from(bytes) {
                Ok(text) => Message::Text(text),
                Err(e) => {
                    self.stop_reading();
                    return Some(Err(ProtocolError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        e,
                    ))));
                }
            },
            Frame::Binary(bytes) => Message::Binary(bytes),
            Frame::Ping(bytes) => Message::Ping(bytes),
            Frame::Pong(bytes) => Message::Pong(bytes),
            Frame::Close(reason) => {
                self.stop_reading();
                Message::Close(reason)
            }
            Frame::Continuation(item) => Message::Continuation(item),
        }))
    }

    /// Nothing more is read: the peer closed, or what it sent is not a WebSocket stream.
    fn stop_reading(&mut self) {
        self.peer_done = true;
        self.read_buf = BytesMut::new();
    }

    /// Reads what the socket has; `Ready(Ok(()))` when something (or end of file) came.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_buf.capacity() == 0 {
            self.read_buf = take_read_buf();
        } else if self.read_buf.capacity() - self.read_buf.len() < MIN_READ_ROOM {
            self.read_buf.reserve(READ_CHUNK);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf) {
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Hands a frame to the session. Its handler runs next and actix polls this stream again
    /// right after (the session never blocks its context with `ctx.wait`), so what the
    /// handler queues will be written then: the inbox need not wake this task for it.
    ///
    /// Before a decode error, what the frames ahead of the bad one produced is written: the
    /// session closes on the error without flushing, which would drop it.
    fn hand_over(
        &mut self,
        msg: Result<Message, ProtocolError>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, ProtocolError>>> {
        if msg.is_err() {
            if let Err(e) = self.poll_writes(cx) {
                return self.fail(e);
            }
        }
        self.out.inbox().unregister_writer();
        Poll::Ready(Some(msg))
    }

    fn end(&mut self) -> Poll<Option<Result<Message, ProtocolError>>> {
        self.ended = true;
        Poll::Ready(None)
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Message, ProtocolError>>> {
        self.ended = true;
        self.out.abandon();
        Poll::Ready(Some(Err(ProtocolError::Io(e))))
    }
}

impl Stream for WsConn {
    type Item = Result<Message, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // Frames already read go first: their answers then leave in one write.
        if let Some(msg) = this.decode() {
            return this.hand_over(msg, cx);
        }
        loop {
            match this.poll_writes(cx) {
                Err(e) => {
                    log::debug!("write failed client_id={}: {e}", this.out.client_id());
                    return this.fail(e);
                }
                Ok(true) if this.peer_done || this.eof => return this.end(),
                Ok(_) => {}
            }
            if this.peer_done {
                // Waiting only for the close frame to leave.
                return Poll::Pending;
            }
            if this.eof {
                return this.end();
            }
            match this.poll_read(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(msg) = this.decode() {
                        return this.hand_over(msg, cx);
                    }
                    // A partial frame, or end of file: read (or end) again.
                }
                Poll::Ready(Err(e)) => {
                    log::debug!("read failed client_id={}: {e}", this.out.client_id());
                    return this.fail(e);
                }
                Poll::Pending => {
                    if this.read_buf.is_empty() && this.read_buf.capacity() > 0 {
                        // Idle: no buffer is kept while nothing arrives.
                        give_back(std::mem::take(&mut this.read_buf));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for WsConn {
    fn drop(&mut self) {
        if self.write != WriteState::Done {
            // Ends before its close frame left: what is still queued never will.
            self.out.abandon();
        }
    }
}
