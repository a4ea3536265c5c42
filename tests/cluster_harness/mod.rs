//! A real cluster on 127.0.0.1 for tests: one `redis-server` (its own free port, temporary
//! directory, AOF with `appendfsync always`) and N `wsc-server` processes started with
//! `--redis-url`, `--node-id n1..nN` and a small `--node-ttl-ms`. Every process is stopped
//! by PID when the test ends (also when it panics); every wait is bounded.
//!
//! Test crates declare `mod common; mod cluster_harness;` (this module reuses the WebSocket
//! client and HTTP helpers of `tests/common`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{get_json, get_text, http_json, try_connect, Client, BIN, WAIT};

/// Node heartbeat expiry the tests run with (`--node-ttl-ms`).
pub const TTL_MS: u64 = 1000;

/// How long a test waits for cluster-wide state (presence, health) to settle: four node TTLs
/// plus two seconds, as the cluster spec bounds a dead node's expiry.
pub fn settle() -> Duration {
    Duration::from_millis(4 * TTL_MS + 2000)
}

// ---- redis-server ----

/// A `redis-server` that can be stopped and restarted on the same port and directory.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (the AOF lives here).
    pub dir: PathBuf,
}

fn redis_bin() -> PathBuf {
    which("redis-server").unwrap_or_else(|| {
        panic!(
            "redis-server is not installed: the cluster tests need a real Redis 7 \
             (Debian: `apt-get install redis-server`; scripts/test.sh and .ci/run install it)"
        )
    })
}

impl Redis {
    /// Starts one on a free port with `appendonly yes` and `appendfsync always`.
    pub fn start() -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("wsc-cluster-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new(redis_bin())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return;
                    }
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("redis-server on port {} exited: {status}", self.port);
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {WAIT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGKILL (the AOF, fsynced on every write, keeps what it acknowledged).
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("redis-server is running");
        child.kill().expect("kill redis-server");
        child.wait().expect("reap redis-server");
    }

    /// Starts it again on the same port and directory (it reloads its AOF).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Its PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A plain connection.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("url")
            .get_connection_with_timeout(WAIT)
            .expect("connect to redis")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- wsc-server nodes ----

/// Settings every node of a cluster starts with.
#[derive(Clone, Debug)]
pub struct Opts {
    /// `--node-ttl-ms`.
    pub ttl_ms: u64,
    /// `WSC_ACK_TIMEOUT_MS`.
    pub ack_timeout_ms: u64,
    /// `WSC_MAX_RETRIES`.
    pub max_retries: u32,
    /// Extra environment for every node.
    pub env: Vec<(String, String)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            ttl_ms: TTL_MS,
            ack_timeout_ms: 1500,
            max_retries: 2,
            env: Vec::new(),
        }
    }
}

/// One `wsc-server` process of the cluster.
pub struct Node {
    child: Option<Child>,
    /// `--node-id`.
    pub id: String,
    /// The address it listens on (`127.0.0.1:PORT`).
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// `ws://ADDR/ws?QUERY`.
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.addr)
    }

    /// `http://ADDR/PATH`.
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL, then reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the node runs");
        child.kill().expect("kill -9 the node");
        child.wait().expect("reap the node");
    }

    /// The last `n` lines it wrote to stderr (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().expect("log lock");
        let start = log.len().saturating_sub(n);
        log[start..].join("\n")
    }

    /// Connects `query` (`user_id=alice&client_id=c1`) and reads the welcome frame.
    pub async fn connect(&self, query: &str) -> (Client, Value) {
        let url = self.ws_url(query);
        let mut c = match try_connect(&url).await {
            Ok(c) => c,
            Err(e) => panic!(
                "connect {url} on {}: {e}\n{} log:\n{}",
                self.id,
                self.id,
                self.log_tail(20)
            ),
        };
        let welcome = c.next_json().await;
        assert_eq!(
            welcome["data"]["event"], "connected",
            "first frame on {} is the welcome: {welcome}",
            self.id
        );
        (c, welcome)
    }

    /// Like [`Node::connect`], without the welcome.
    pub async fn client(&self, query: &str) -> Client {
        self.connect(query).await.0
    }

    /// `GET PATH`: status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        get_json(&self.http(path)).await
    }

    /// `POST PATH` with a JSON body: status and JSON.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http_json("POST", &self.http(path), None, Some(body)).await
    }

    /// `POST /api/send`.
    pub async fn send(&self, body: &Value) -> (u16, Value) {
        self.post("/api/send", body).await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        let (status, text) = get_text(&self.http("/metrics"), None).await;
        assert_eq!(status, 200, "GET /metrics on {}: {text}", self.id);
        text
    }

    /// `GET /api/online` as user id -> session count.
    pub async fn online(&self) -> Vec<(String, u64)> {
        let (status, v) = self.get("/api/online").await;
        assert_eq!(status, 200, "GET /api/online on {}: {v}", self.id);
        let mut users: Vec<(String, u64)> = v["users"]
            .as_array()
            .unwrap_or_else(|| panic!("`users` list in {v}"))
            .iter()
            .map(|u| {
                (
                    u["user_id"].as_str().unwrap_or("?").to_owned(),
                    u["sessions"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        users.sort();
        users
    }

    /// Sessions of `user` in this node's cluster-wide `/api/online` (0 when absent).
    pub async fn sessions_of(&self, user: &str) -> u64 {
        self.online()
            .await
            .into_iter()
            .find(|(u, _)| u == user)
            .map_or(0, |(_, n)| n)
    }

    /// Waits (bounded by [`settle`]) until this node's `/api/online` shows `n` sessions of
    /// `user`; returns how long that took.
    pub async fn wait_sessions(&self, user: &str, n: u64) -> Duration {
        let start = Instant::now();
        let deadline = start + settle();
        loop {
            let got = self.sessions_of(user).await;
            if got == n {
                return start.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "{}'s /api/online: {user} has {got} sessions, expected {n} within {:?}\n{:?}",
                self.id,
                settle(),
                self.online().await
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /api/messages/{id}?from=FROM`: the record, `None` on 404.
    pub async fn record(&self, id: &str, from: &str) -> Option<Value> {
        let (status, v) = self.get(&format!("/api/messages/{id}?from={from}")).await;
        match status {
            200 => Some(v),
            404 => None,
            s => panic!(
                "GET /api/messages/{id}?from={from} on {}: HTTP {s} {v}",
                self.id
            ),
        }
    }

    /// Waits (bounded by `wait`) until the record's status is `status`.
    pub async fn wait_record(&self, id: &str, from: &str, status: &str, wait: Duration) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let r = self.record(id, from).await;
            if let Some(r) = &r {
                if r["status"] == status {
                    return r.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "record {from}/{id} on {}: not `{status}` within {wait:?}, last: {r:?}",
                self.id
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /health`: status and JSON.
    pub async fn health(&self) -> (u16, Value) {
        self.get("/health").await
    }

    /// Polls `/health` until it answers `status` (bounded by `wait`); returns how long it took.
    pub async fn wait_health(&self, status: u16, wait: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let (s, v) = self.health().await;
            if s == status {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < wait,
                "/health on {} did not answer {status} within {wait:?}; last {s} {v}\n{}",
                self.id,
                self.log_tail(20)
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawns `wsc-server` with `args` and `envs`, keeps its stderr and returns once it logs
/// `listening on ADDR`.
pub fn spawn_node(id: &str, args: &[String], envs: &[(String, String)]) -> Node {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsc-server");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (line_tx, line_rx) = std_mpsc::channel();
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = keep.lock() {
                if l.len() > 5000 {
                    l.drain(..1000);
                }
                l.push(line.clone());
            }
            // The test stops listening once the node is up; later lines stay in the log.
            let _ = line_tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) => {
                // `listening on 127.0.0.1:PORT` (other lines say `listening on Redis ...`).
                if let Some((_, addr)) = line.split_once("listening on ") {
                    if addr.trim().parse::<std::net::SocketAddr>().is_ok() {
                        break addr.trim().to_owned();
                    }
                }
            }
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                let lines = log.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!(
                    "node {id} logged no `listening on` line within {WAIT:?} \
                     (exit: {status:?}); stderr:\n{lines}"
                );
            }
        }
    };
    Node {
        child: Some(child),
        id: id.to_owned(),
        addr,
        log,
    }
}

/// Redis and N nodes.
pub struct Cluster {
    /// Its nodes, `n1` first.
    pub nodes: Vec<Node>,
    /// The settings the nodes started with.
    pub opts: Opts,
    dir: PathBuf,
    /// The Redis they share (dropped last: after the nodes).
    pub redis: Redis,
}

impl Cluster {
    /// Redis and `n` nodes with the default [`Opts`].
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, Opts::default()).await
    }

    /// Redis and `n` nodes (`n1`..), each answering `/health` 200 before this returns.
    pub async fn start_with(n: usize, opts: Opts) -> Cluster {
        let redis = Redis::start();
        let dir =
            std::env::temp_dir().join(format!("wsc-cluster-{}-{}", std::process::id(), redis.port));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut c = Cluster {
            nodes: Vec::new(),
            opts,
            dir,
            redis,
        };
        for i in 1..=n {
            let node = c.spawn(&format!("n{i}"));
            c.nodes.push(node);
        }
        for node in &c.nodes {
            node.wait_health(200, WAIT).await;
        }
        c
    }

    /// Starts one more node (not added to `nodes`) with the cluster's settings.
    pub fn spawn(&self, id: &str) -> Node {
        let data = self.dir.join(id);
        std::fs::create_dir_all(&data).expect("node data dir");
        let args = node_args(id, &self.redis.url(), self.opts.ttl_ms, &data);
        spawn_node(id, &args, &node_env(&self.opts))
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The flags of one node.
pub fn node_args(id: &str, redis_url: &str, ttl_ms: u64, data: &Path) -> Vec<String> {
    vec![
        "--bind".into(),
        "127.0.0.1:0".into(),
        "--redis-url".into(),
        redis_url.into(),
        "--node-id".into(),
        id.into(),
        "--node-ttl-ms".into(),
        ttl_ms.to_string(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
    ]
}

/// The environment of every node: fast acks and retries, no jitter in the count of attempts.
pub fn node_env(opts: &Opts) -> Vec<(String, String)> {
    let mut env = vec![
        ("WSC_ACK_TIMEOUT_MS".into(), opts.ack_timeout_ms.to_string()),
        ("WSC_MAX_RETRIES".into(), opts.max_retries.to_string()),
        ("WSC_BASE_DELAY_MS".into(), "50".into()),
        ("WSC_MAX_DELAY_MS".into(), "200".into()),
    ];
    env.extend(opts.env.iter().cloned());
    env
}

// ---- small helpers ----

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A text frame to `to`.
pub fn text_to(to: &str, content: &str) -> Value {
    json!({"type": "text", "to": to, "content": content})
}

/// The value of an unlabelled metric line `name VALUE` (`None` when absent).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads application frames until one with content `content` arrives (bounded by `wait`).
pub async fn expect_content(c: &mut Client, content: &str, wait: Duration, who: &str) -> Value {
    match c
        .next_matching(wait, |v| {
            crate::common::is_app_frame(v) && v["content"] == content
        })
        .await
    {
        Ok(v) => v,
        Err(e) => panic!("{who} never got `{content}`: {e}"),
    }
}
