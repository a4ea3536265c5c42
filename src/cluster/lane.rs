//! Deliveries to other nodes leave from the thread that routed them: every runtime thread
//! that routes (an actix-web worker running sessions, the hub's arbiter) gets a lane, a task
//! on that same thread with its own async Redis connection, that pipelines every delivery
//! waiting at that moment in one round trip and checks each publish reached its node.
//!
//! Why not the writer thread ([`super::bus`]): handing each message to another thread costs a
//! wake-up and a context switch per round trip on the sender's side, which is what made
//! cross-node latency climb under load on a single core. A lane is woken by a channel on its
//! own thread. Presence, heartbeats and control messages (closes, acks, group changes) stay
//! on the writer thread: they are few, and there they keep their order.
//!
//! Order: a session lives on one thread, so all its deliveries take one lane and leave in
//! the order they were routed. A thread without a runtime uses the writer thread instead.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::bus::{note_failures, FailNote};
use super::Shared;

/// Publishes sent per round trip at most.
const BATCH: usize = 1024;
/// Wait between reconnect attempts of one lane.
const RECONNECT_EVERY: Duration = Duration::from_millis(200);
/// How long a round trip (or a connect) may take before the lane gives up on it.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

/// One delivery for another node's sessions.
pub(crate) struct Delivery {
    /// The node.
    pub to: Arc<str>,
    /// The delivery frame ([`super::wire::encode_delivery`]).
    pub payload: Vec<u8>,
    /// Who to tell when it does not arrive.
    pub fail: FailNote,
}

thread_local! {
    /// This thread's lanes, one per cluster (a process may embed several nodes).
    static LANES: RefCell<Vec<(u64, UnboundedSender<Delivery>)>> = const { RefCell::new(Vec::new()) };
}

/// Hands `d` to this thread's lane for `shared`, starting the lane on first use. `Err(d)`
/// when this thread has no runtime to run one: the caller sends it another way.
pub(crate) fn send(shared: &Arc<Shared>, d: Delivery) -> Result<(), Delivery> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(d);
    }
    LANES.with(|lanes| {
        let mut lanes = lanes.borrow_mut();
        let at = match lanes.iter().position(|(id, _)| *id == shared.id) {
            Some(i) => i,
            None => {
                let (tx, rx) = unbounded_channel();
                tokio::spawn(run(shared.clone(), rx));
                lanes.push((shared.id, tx));
                lanes.len() - 1
            }
        };
        match lanes[at].1.send(d) {
            Ok(()) => Ok(()),
            Err(back) => {
                // The lane's runtime is shutting down: forget it; the caller falls back.
                lanes.swap_remove(at);
                Err(back.0)
            }
        }
    })
}

struct Lane {
    shared: Arc<Shared>,
    conn: Option<Conn>,
    last_attempt: Option<Instant>,
    /// This lane's connection is known to work (for logging transitions once).
    up: bool,
    /// The commands of one round, encoded.
    out: Vec<u8>,
    /// Channel names of the nodes this lane publishes to (not formatted per message).
    chans: Vec<(Arc<str>, String)>,
}

async fn run(shared: Arc<Shared>, mut rx: UnboundedReceiver<Delivery>) {
    let mut lane = Lane {
        shared,
        conn: None,
        last_attempt: None,
        up: false,
        out: Vec::with_capacity(16 * 1024),
        chans: Vec::new(),
    };
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        lane.round(std::mem::take(&mut batch)).await;
    }
}

impl Lane {
    async fn connect(&mut self) {
        if self.conn.is_some()
            || self
                .last_attempt
                .is_some_and(|t| t.elapsed() < RECONNECT_EVERY)
        {
            return;
        }
        self.last_attempt = Some(Instant::now());
        match tokio::time::timeout(ROUND_TIMEOUT, Conn::open(&self.shared.url)).await {
            Ok(Ok(c)) => self.conn = Some(c),
            Ok(Err(e)) => self.down(&format!("cannot connect: {e}")),
            Err(_) => self.down("cannot connect: timed out"),
        }
    }

    fn down(&mut self, why: &str) {
        self.conn = None;
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        if std::mem::take(&mut self.up) {
            log::error!(
                "cluster: a delivery lane lost Redis at {}: {why}",
                crate::store::redacted_url(&self.shared.url)
            );
        }
    }

    /// One round trip for `batch`; a connection found dead is replaced and the round sent
    /// once more before its deliveries are failed to the handlers.
    async fn round(&mut self, batch: Vec<Delivery>) {
        let s = self.shared.clone();
        self.out.clear();
        for d in &batch {
            let at = match self.chans.iter().position(|(n, _)| *n == d.to) {
                Some(i) => i,
                None => {
                    if self.chans.len() >= 256 {
                        // Nodes come and go (a restarted node may take a new id).
                        self.chans.clear();
                    }
                    self.chans.push((d.to.clone(), s.chan_node(&d.to)));
                    self.chans.len() - 1
                }
            };
            encode_publish(&mut self.out, self.chans[at].1.as_bytes(), &d.payload);
        }
        let mut why = String::from("Redis unreachable");
        for attempt in 0..2 {
            if attempt == 1 {
                self.last_attempt = None;
            }
            self.connect().await;
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            let sent = tokio::time::timeout(ROUND_TIMEOUT, conn.round(&self.out, batch.len()));
            match sent.await {
                Ok(Ok(counts)) => {
                    self.up = true;
                    let mut failures = Vec::new();
                    for (d, n) in batch.into_iter().zip(counts) {
                        match n {
                            Ok(n) if n > 0 => {
                                s.published.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => failures.extend(note_failures(
                                d.fail,
                                &format!("node {} is not listening (gone?)", d.to),
                            )),
                            Err(e) => failures.extend(note_failures(
                                d.fail,
                                &format!("Redis refused the publish: {e}"),
                            )),
                        }
                    }
                    s.report(failures);
                    return;
                }
                Ok(Err(e)) => {
                    why = format!("Redis error: {e}");
                    self.down(&why);
                }
                Err(_) => {
                    why = format!("Redis did not answer within {ROUND_TIMEOUT:?}");
                    self.down(&why);
                }
            }
        }
        let failures = batch
            .into_iter()
            .flat_map(|d| note_failures(d.fail, &why))
            .collect();
        s.report(failures);
    }
}

/// `PUBLISH chan payload` in RESP.
fn encode_publish(out: &mut Vec<u8>, chan: &[u8], payload: &[u8]) {
    encode_command(out, &[b"PUBLISH", chan, payload]);
}

/// A lane's own connection: RESP2 spoken directly, since a lane sends only `PUBLISH` and
/// reads only integer replies (no driver task, no per-request channel or timer).
struct Conn {
    stream: TcpStream,
    /// Bytes read and not parsed yet.
    inbuf: Vec<u8>,
}

impl Conn {
    async fn open(url: &str) -> Result<Conn, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let info = client.get_connection_info();
        let stream = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| e.to_string())?,
            other => return Err(format!("delivery lanes need a TCP address, not {other}")),
        };
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = Conn {
            stream,
            inbuf: Vec::with_capacity(4096),
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut out = Vec::new();
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = settings.username() {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            encode_command(&mut out, &args);
            conn.stream
                .write_all(&out)
                .await
                .map_err(|e| e.to_string())?;
            match conn.reply().await.map_err(|e| e.to_string())? {
                Reply::Status(_) => {}
                Reply::Error(e) => return Err(format!("AUTH refused: {e}")),
                Reply::Int(_) => return Err("unexpected reply to AUTH".into()),
            }
        }
        Ok(conn)
    }

    /// Sends `out` (`n` commands) and reads their `n` replies: each a receiver count, or
    /// the error Redis gave.
    async fn round(&mut self, out: &[u8], n: usize) -> std::io::Result<Vec<Result<i64, String>>> {
        self.stream.write_all(out).await?;
        let mut counts = Vec::with_capacity(n);
        while counts.len() < n {
            counts.push(match self.reply().await? {
                Reply::Int(k) => Ok(k),
                Reply::Error(e) => Err(e),
                Reply::Status(s) => Err(format!("unexpected reply {s}")),
            });
        }
        Ok(counts)
    }

    /// The next reply line (`:`, `+` or `-`; anything else is a protocol error).
    async fn reply(&mut self) -> std::io::Result<Reply> {
        loop {
            if let Some(end) = self.inbuf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.inbuf.drain(..end + 2).take(end).collect();
                let text = String::from_utf8_lossy(&line[1.min(line.len())..]).into_owned();
                return match line.first() {
                    Some(b':') => text
                        .parse()
                        .map(Reply::Int)
                        .map_err(|_| std::io::Error::other(format!("bad integer reply {text:?}"))),
                    Some(b'+') => Ok(Reply::Status(text)),
                    Some(b'-') => Ok(Reply::Error(text)),
                    _ => Err(std::io::Error::other(format!(
                        "unexpected reply {:?}",
                        String::from_utf8_lossy(&line)
                    ))),
                };
            }
            let mut chunk = [0u8; 4096];
            let got = self.stream.read(&mut chunk).await?;
            if got == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.inbuf.extend_from_slice(&chunk[..got]);
        }
    }
}

enum Reply {
    Int(i64),
    Status(String),
    Error(String),
}

/// Any command in RESP.
fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// `{kind}{n}\r\n`.
fn push_header(out: &mut Vec<u8>, kind: u8, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push(kind);
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_in_resp() {
        let mut out = Vec::new();
        encode_publish(&mut out, b"p:cl:n:a", b"D{}\n{\"id\":1");
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$8\r\np:cl:n:a\r\n$11\r\nD{}\n{\"id\":1\r\n"
        );
        out.clear();
        push_header(&mut out, b'$', 0);
        push_header(&mut out, b'*', 1234567);
        assert_eq!(out, b"$0\r\n*1234567\r\n");
    }
}
