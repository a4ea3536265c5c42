// The fault test's harness: users, the API sender, the server guard and the checks.
// Included by tests/fault_delivery.rs (kept apart so each file stays readable).

/// Users `u0` .. `u49`, one WebSocket client each.
const USERS: usize = 50;
/// How long the faulty traffic lasts.
const TRAFFIC: Duration = Duration::from_secs(24);
/// When (from the start of the traffic) the server restarts.
const RESTART_AFTER: Duration = Duration::from_secs(12);
/// Bound on the wait for every accepted message to arrive once the traffic stopped.
const SETTLE: Duration = Duration::from_secs(20);
/// Share of received frames whose ack a client withholds during the traffic.
const WITHHOLD: f64 = 0.2;
/// Pause between two messages of one user (ms, uniform).
const SEND_EVERY_MS: (u64, u64) = (150, 450);
/// Pause between two `POST /api/send` (ms, uniform).
const API_EVERY_MS: (u64, u64) = (40, 120);
/// Lifetime of a session before the client drops it abruptly (ms, uniform).
const DROP_AFTER_MS: (u64, u64) = (2_000, 6_000);
/// Pause after an abrupt drop before reconnecting (ms, uniform).
const DROP_PAUSE_MS: (u64, u64) = (50, 500);

/// The server's settings: short ack timeout, few retries with small delays.
const SERVER_ENV: &[(&str, &str)] = &[
    ("WSC_STORE", "sqlite"),
    ("WSC_ACK_TIMEOUT_MS", "300"),
    ("WSC_MAX_RETRIES", "2"),
    ("WSC_BASE_DELAY_MS", "50"),
    ("WSC_MAX_DELAY_MS", "200"),
    ("WSC_SHUTDOWN_TIMEOUT_MS", "3000"),
    ("WSC_API_KEY", ""),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending, drops and withheld acks.
    Traffic,
    /// No more sending or faults: stay connected, ack everything.
    Settle,
    /// Like `Settle`, but every client closes its session once and reconnects, to collect what
    /// the server stored for it (ack timeouts while it stayed connected).
    Refresh,
    /// Close every session and stop.
    Done,
}

/// A message is `(from, id)` (DELIVERY.md, "Keys").
type Key = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receipt {
    /// Sent on a session that is still open; no receipt yet.
    Pending,
    Accepted,
    Failed,
    /// The session ended (or the request failed) before any answer: the outcome is unknown.
    Unconfirmed,
}

struct Sent {
    to: String,
    content: String,
    receipt: Receipt,
    accepted_at: Option<Instant>,
}

struct Delivery {
    by: String,
    at: Instant,
    content: String,
    to: String,
    source: String,
    require_ack: bool,
    /// The client acked this copy (false: withheld, as if the client lost it unprocessed).
    acked: bool,
}

/// Everything the clients saw; shared by the tasks of the (single-threaded) test runtime.
#[derive(Default)]
struct Book {
    sent: HashMap<Key, Sent>,
    ws_sent: u64,
    api_sent: u64,
    api_errors: u64,
    deliveries: HashMap<Key, Vec<Delivery>>,
    /// Protocol oddities: error frames, unknown frames, receipts nobody waits for.
    notes: Vec<String>,
    live: usize,
    /// Users that reconnected once in the `Refresh` phase.
    refreshed: usize,
    connects: u64,
    failed_connects: u64,
    drops: u64,
    session_ends: BTreeMap<String, u64>,
    /// When and how each user's sessions ended (to explain a missing message).
    ends_of: HashMap<String, Vec<(Instant, String)>>,
    acks: u64,
    withheld: u64,
    restart_at: Option<Instant>,
}

impl Book {
    fn note(&mut self, s: String) {
        if self.notes.len() < 200 {
            self.notes.push(s);
        }
    }
}

type Shared = Rc<RefCell<Book>>;

fn ms(rng: &mut StdRng, (lo, hi): (u64, u64)) -> Duration {
    Duration::from_millis(rng.gen_range(lo..hi))
}

// ---- a WebSocket client that never panics: the faults make errors normal ----

struct Ws(Framed<BoxedSocket, ws::Codec>);

enum Read {
    Json(Value),
    Ping(Bytes),
    Closed(String),
    Skip,
}

impl Ws {
    async fn connect(url: &str) -> Result<Ws, String> {
        let fut = awc::Client::new()
            .ws(url)
            .max_frame_size(16 << 20)
            .connect();
        match timeout(WAIT, fut).await {
            Ok(Ok((_, framed))) => Ok(Ws(framed)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connect timed out".into()),
        }
    }

    async fn send(&mut self, v: &Value) -> bool {
        self.0
            .send(ws::Message::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    /// The next frame (cancel safe: nothing is written here).
    async fn read(&mut self) -> Read {
        match self.0.next().await {
            None => Read::Closed("eof".into()),
            Some(Err(e)) => Read::Closed(format!("read error: {e}")),
            Some(Ok(Frame::Text(b))) => match serde_json::from_slice(&b) {
                Ok(v) => Read::Json(v),
                Err(_) => {
                    Read::Json(json!({"type": "<not json>", "text": String::from_utf8_lossy(&b)}))
                }
            },
            Some(Ok(Frame::Ping(p))) => Read::Ping(p),
            Some(Ok(Frame::Close(r))) => Read::Closed(match r {
                Some(r) => format!("close {}", u16::from(r.code)),
                None => "close".into(),
            }),
            Some(Ok(_)) => Read::Skip,
        }
    }

    /// Reads the welcome frame, bounded.
    async fn welcome(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout_at(deadline, self.read()).await {
                None => return Err("no welcome within the wait".into()),
                Some(Read::Json(v)) if v["data"]["event"] == "connected" => return Ok(()),
                Some(Read::Json(v)) => return Err(format!("first frame is not the welcome: {v}")),
                Some(Read::Ping(p)) => {
                    if self.0.send(ws::Message::Pong(p)).await.is_err() {
                        return Err("pong failed".into());
                    }
                }
                Some(Read::Closed(r)) => return Err(r),
                Some(Read::Skip) => {}
            }
        }
    }

    /// The closing handshake, bounded; frames read meanwhile go to `on_json`.
    async fn close(mut self, mut on_json: impl FnMut(Value)) {
        let close = ws::Message::Close(Some(ws::CloseCode::Normal.into()));
        if self.0.send(close).await.is_err() {
            return;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout_at(deadline, self.read()).await {
                None | Some(Read::Closed(_)) => return,
                Some(Read::Json(v)) => on_json(v),
                Some(Read::Ping(_)) | Some(Read::Skip) => {}
            }
        }
    }
}

async fn timeout_at<F: Future>(deadline: Instant, f: F) -> Option<F::Output> {
    tokio::time::timeout_at(deadline, f).await.ok()
}

// ---- one user ----

enum End {
    /// The client dropped the socket on purpose (no close frame).
    Dropped,
    /// The server closed, or the connection broke.
    Lost(String),
    /// The `Refresh` phase asks for one graceful reconnect.
    Refresh,
    /// The test is over.
    Done,
}

struct User {
    me: String,
    url: String,
    book: Shared,
    phase: watch::Receiver<Phase>,
    rng: StdRng,
    next_id: u64,
    /// Messages sent on the current session still waiting for their receipt.
    pending: Vec<Key>,
    /// This user reconnected in the `Refresh` phase.
    refreshed: bool,
}

impl User {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        loop {
            if *self.phase.borrow() == Phase::Done {
                return;
            }
            let mut ws = match Ws::connect(&self.url).await {
                Ok(ws) => ws,
                Err(_) => {
                    // The server is down (restart) or busy: back off with jitter.
                    self.book.borrow_mut().failed_connects += 1;
                    let pause = backoff.mul_f64(self.rng.gen_range(0.5..1.0));
                    sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            if let Err(e) = ws.welcome().await {
                *self
                    .book
                    .borrow_mut()
                    .session_ends
                    .entry(format!("before welcome: {e}"))
                    .or_default() += 1;
                sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(50);
            {
                let mut b = self.book.borrow_mut();
                b.connects += 1;
                b.live += 1;
                if *self.phase.borrow() == Phase::Refresh && !self.refreshed {
                    self.refreshed = true;
                    b.refreshed += 1;
                }
            }
            let end = self.session(&mut ws).await;
            match end {
                End::Done => {
                    let book = self.book.clone();
                    let me = self.me.clone();
                    ws.close(|v| {
                        book.borrow_mut()
                            .note(format!("{me}: frame after close: {v}"))
                    })
                    .await;
                    self.session_over("closed by the client (end of test)".into());
                    return;
                }
                End::Refresh => {
                    let book = self.book.clone();
                    let me = self.me.clone();
                    ws.close(|v| {
                        book.borrow_mut()
                            .note(format!("{me}: frame after close (refresh): {v}"))
                    })
                    .await;
                    self.session_over("closed by the client (refresh)".into());
                }
                End::Dropped => {
                    drop(ws);
                    self.session_over("dropped by the client".into());
                    let pause = ms(&mut self.rng, DROP_PAUSE_MS);
                    sleep(pause).await;
                }
                End::Lost(reason) => {
                    drop(ws);
                    self.session_over(reason);
                    let pause = ms(&mut self.rng, (20, 200));
                    sleep(pause).await;
                }
            }
        }
    }

    fn session_over(&mut self, why: String) {
        let mut b = self.book.borrow_mut();
        b.live -= 1;
        *b.session_ends.entry(why.clone()).or_default() += 1;
        b.ends_of
            .entry(self.me.clone())
            .or_default()
            .push((Instant::now(), why));
        for key in self.pending.drain(..) {
            if let Some(s) = b.sent.get_mut(&key) {
                if s.receipt == Receipt::Pending {
                    s.receipt = Receipt::Unconfirmed;
                }
            }
        }
    }

    async fn session(&mut self, ws: &mut Ws) -> End {
        let start = Instant::now();
        let drop_at = start + ms(&mut self.rng, DROP_AFTER_MS);
        let mut next_send = start + ms(&mut self.rng, (20, SEND_EVERY_MS.1));
        loop {
            let phase = *self.phase.borrow_and_update();
            if phase == Phase::Done {
                return End::Done;
            }
            if phase == Phase::Refresh && !self.refreshed {
                return End::Refresh;
            }
            let traffic = phase == Phase::Traffic;
            let timer = drop_at.min(next_send);
            enum Ev {
                Phase,
                Timer,
                Read(Read),
            }
            let ev = tokio::select! {
                biased;
                r = self.phase.changed() => {
                    if r.is_err() {
                        return End::Done;
                    }
                    Ev::Phase
                }
                _ = sleep_until(timer), if traffic => Ev::Timer,
                r = ws.read() => Ev::Read(r),
            };
            match ev {
                Ev::Phase => {}
                Ev::Timer => {
                    let now = Instant::now();
                    if now >= drop_at {
                        self.book.borrow_mut().drops += 1;
                        return End::Dropped;
                    }
                    if now >= next_send {
                        next_send = now + ms(&mut self.rng, SEND_EVERY_MS);
                        if !self.send_one(ws).await {
                            return End::Lost("send failed".into());
                        }
                    }
                }
                Ev::Read(Read::Closed(reason)) => return End::Lost(reason),
                Ev::Read(Read::Skip) => {}
                Ev::Read(Read::Ping(p)) => {
                    if ws.0.send(ws::Message::Pong(p)).await.is_err() {
                        return End::Lost("pong failed".into());
                    }
                }
                Ev::Read(Read::Json(v)) => {
                    if !self.on_frame(ws, v, traffic).await {
                        return End::Lost("ack send failed".into());
                    }
                }
            }
        }
    }

    async fn send_one(&mut self, ws: &mut Ws) -> bool {
        let mut to = self.rng.gen_range(0..USERS - 1);
        if format!("u{to}") == self.me {
            to = USERS - 1;
        }
        let to = format!("u{to}");
        self.next_id += 1;
        let id = format!("{}-{}", self.me, self.next_id);
        let content = format!("{}->{to} #{}", self.me, self.next_id);
        let key = (self.me.clone(), id.clone());
        {
            let mut b = self.book.borrow_mut();
            b.ws_sent += 1;
            b.sent.insert(
                key.clone(),
                Sent {
                    to: to.clone(),
                    content: content.clone(),
                    receipt: Receipt::Pending,
                    accepted_at: None,
                },
            );
        }
        self.pending.push(key);
        let frame = json!({"id": id, "type": "text", "to": to, "content": content,
                           "require_ack": true});
        ws.send(&frame).await
    }

    /// Handles one JSON frame; false when the connection broke while answering.
    async fn on_frame(&mut self, ws: &mut Ws, v: Value, traffic: bool) -> bool {
        let kind = v["type"].as_str().unwrap_or("");
        let id = v["id"].as_str().unwrap_or("").to_owned();
        match kind {
            "ack" if v.get("status").is_some() => {
                let key = (self.me.clone(), id);
                let mut b = self.book.borrow_mut();
                let status = v["status"].as_str().unwrap_or("");
                match b.sent.get_mut(&key) {
                    Some(s) if s.receipt == Receipt::Pending => match status {
                        "accepted" => {
                            s.receipt = Receipt::Accepted;
                            s.accepted_at = Some(Instant::now());
                        }
                        "failed" => {
                            s.receipt = Receipt::Failed;
                            b.note(format!("{}: receipt failed: {v}", self.me));
                        }
                        _ => b.note(format!("{}: unknown receipt status: {v}", self.me)),
                    },
                    _ => b.note(format!("{}: receipt for nothing pending: {v}", self.me)),
                }
                self.pending.retain(|k| k != &key);
                true
            }
            "text" => {
                let from = v["from"].as_str().unwrap_or("").to_owned();
                let require_ack = v["require_ack"] == true;
                self.book
                    .borrow_mut()
                    .deliveries
                    .entry((from.clone(), id.clone()))
                    .or_default()
                    .push(Delivery {
                        by: self.me.clone(),
                        at: Instant::now(),
                        content: v["content"].as_str().unwrap_or("").to_owned(),
                        to: v["to"].as_str().unwrap_or("").to_owned(),
                        source: v["source"].as_str().unwrap_or("").to_owned(),
                        require_ack,
                        acked: false,
                    });
                if !require_ack {
                    return true;
                }
                if traffic && self.rng.gen_bool(WITHHOLD) {
                    self.book.borrow_mut().withheld += 1;
                    return true;
                }
                let ok = ws
                    .send(&json!({"type": "ack", "id": id, "from": from}))
                    .await;
                let mut b = self.book.borrow_mut();
                b.acks += 1;
                if let Some(d) = b
                    .deliveries
                    .get_mut(&(from, id))
                    .and_then(|ds| ds.last_mut())
                {
                    d.acked = ok;
                }
                ok
            }
            _ => {
                self.book
                    .borrow_mut()
                    .note(format!("{}: unexpected frame: {v}", self.me));
                true
            }
        }
    }
}

// ---- the HTTP sender ----

async fn api_sender(base: String, book: Shared, phase: watch::Receiver<Phase>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA5A5_5A5A_F00D_BEEF);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(3))
        .finish();
    let url = format!("{base}/api/send");
    let mut n = 0u64;
    while *phase.borrow() == Phase::Traffic {
        n += 1;
        let id = format!("api-{n}");
        let to = format!("u{}", rng.gen_range(0..USERS));
        let content = format!("system->{to} #{n}");
        let body = json!({"id": id, "to": to, "content": content, "require_ack": true});
        book.borrow_mut().api_sent += 1;
        let answer = async {
            let mut resp = client
                .post(&url)
                .content_type("application/json")
                .send_body(body.to_string())
                .await
                .map_err(|e| e.to_string())?;
            let bytes = resp.body().await.map_err(|e| e.to_string())?;
            serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string())
        }
        .await;
        {
            let mut b = book.borrow_mut();
            let (key_id, receipt) = match &answer {
                Err(e) => {
                    b.api_errors += 1;
                    if b.api_errors <= 3 {
                        b.note(format!("api {id}: request failed: {e}"));
                    }
                    (id.clone(), Receipt::Unconfirmed)
                }
                Ok(a) => {
                    let answered = a["id"].as_str().unwrap_or(&id).to_owned();
                    if answered != id {
                        b.note(format!("api {id}: answered with another id: {a}"));
                    }
                    let receipt = match a["status"].as_str() {
                        Some("accepted") | Some("stored_offline") => Receipt::Accepted,
                        Some("failed") => {
                            b.note(format!("api {id}: failed: {a}"));
                            Receipt::Failed
                        }
                        _ => {
                            b.note(format!("api {id}: unexpected answer: {a}"));
                            Receipt::Unconfirmed
                        }
                    };
                    (answered, receipt)
                }
            };
            b.sent.insert(
                ("system".into(), key_id),
                Sent {
                    to,
                    content,
                    receipt,
                    accepted_at: (receipt == Receipt::Accepted).then(Instant::now),
                },
            );
        }
        sleep(ms(&mut rng, API_EVERY_MS)).await;
    }
}

// ---- the server process ----

/// Kills the server on every path out of the test (panics included).
struct Guard(Option<Running>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut r) = self.0.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

async fn start_server(args: &[String]) -> Running {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn_server(&args, SERVER_ENV)
    })
    .await
    .expect("the server starts")
}

/// SIGTERM, then a bounded wait for the exit (off the runtime thread: the clients keep
/// running and see their 1001).
async fn stop_server(r: Running) -> std::process::ExitStatus {
    terminate(&r);
    tokio::task::spawn_blocking(move || wait_exit(r))
        .await
        .expect("the server exits")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

async fn get_json(client: &awc::Client, url: &str) -> Result<Value, String> {
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let bytes = resp.body().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

/// Why a polled condition does not hold.
enum Fail {
    /// Not yet: poll again.
    Retry(String),
    /// Never will (a field the contract names is absent): stop polling.
    Fatal(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Retry(s)
    }
}

/// `delivery.in_flight`, `awaiting_acks`, `scheduled_retries` of `/api/stats`: all 0, or why not.
fn nothing_in_flight(stats: &Value) -> Result<(), Fail> {
    let d = stats.get("delivery").ok_or_else(|| {
        Fail::Fatal(format!(
            "GET /api/stats has no `delivery` object (DELIVERY.md, Observability): {stats}"
        ))
    })?;
    let mut busy = Vec::new();
    for field in ["in_flight", "awaiting_acks", "scheduled_retries"] {
        match d.get(field).and_then(Value::as_u64) {
            None => {
                return Err(Fail::Fatal(format!(
                    "GET /api/stats lacks `delivery.{field}` (DELIVERY.md, Observability): {stats}"
                )))
            }
            Some(0) => {}
            Some(n) => busy.push(format!("{field}={n}")),
        }
    }
    if busy.is_empty() {
        Ok(())
    } else {
        Err(Fail::Retry(format!(
            "still in flight: {} ({d})",
            busy.join(", ")
        )))
    }
}

/// Polls `check` every 100 ms until it passes or `limit` runs out (the last error then), or
/// until it fails for good.
async fn poll<F, Fut>(limit: Duration, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Fail>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(()) => return Ok(()),
            Err(Fail::Fatal(e)) => return Err(e),
            Err(Fail::Retry(e)) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// What the settle phase waits for.
struct Outstanding {
    /// Accepted messages with no copy received by their recipient.
    missing: Vec<Key>,
    /// Accepted messages received, but only in copies the recipient did not ack.
    unacked: Vec<Key>,
    /// Sends still waiting for their receipt on a live session.
    pending: usize,
}

fn outstanding(b: &Book) -> Outstanding {
    let mut missing = Vec::new();
    let mut unacked = Vec::new();
    for (k, s) in &b.sent {
        if s.receipt != Receipt::Accepted {
            continue;
        }
        let copies: Vec<&Delivery> = b
            .deliveries
            .get(k)
            .map(|ds| ds.iter().filter(|d| d.by == s.to).collect())
            .unwrap_or_default();
        if copies.is_empty() {
            missing.push(k.clone());
        } else if !copies.iter().any(|d| d.acked) {
            unacked.push(k.clone());
        }
    }
    missing.sort();
    unacked.sort();
    let pending = b
        .sent
        .values()
        .filter(|s| s.receipt == Receipt::Pending)
        .count();
    Outstanding {
        missing,
        unacked,
        pending,
    }
}

