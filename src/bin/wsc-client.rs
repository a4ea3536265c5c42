//! `wsc-client`: a command-line client for `wsc.v1` servers.
//!
//! Connects as a user, prints every frame the server sends as one JSON line on stdout
//! (welcome, receipts, pongs, errors, messages; duplicates of a message, same sender and id,
//! are printed once), acknowledges `require_ack` messages once printed (the ack names the
//! sender), and sends each line read from stdin as a frame
//! (`{"type":"text","to":"bob","content":"hi"}`; the client assigns missing ids).
//! At end of input it writes what is queued, closes with 1000 and exits 0. Logs go to
//! stderr (`RUST_LOG`, default `info`).
//!
//! Exit codes: 0 at end of input with every frame written; 1 when the client stopped first
//! (kicked, refused, gave up reconnecting) or frames could not be written; 2 for bad
//! arguments.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use actix::prelude::*;
use actix_wsc::client::{
    ClientConfig, ClientEvents, Close, Closed, ConnectFailed, Disconnected, Flush, FrameKind,
    FrameReceived, MessageReceived, OutgoingMessage, SendError, SendFailed, SendMessage,
    StopReason, WscClient,
};
use actix_wsc::protocol::UserType;
use clap::Parser;
use tokio::sync::mpsc;

/// Connect to a wsc.v1 server; stdin lines are sent, received frames printed as JSON lines.
#[derive(Debug, Parser)]
#[command(name = "wsc-client", version)]
struct Args {
    /// The server's WebSocket endpoint.
    #[arg(long, env = "WSC_URL", default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// The user to connect as.
    #[arg(long, env = "WSC_USER_ID")]
    user_id: String,
    /// The session's client id (the server assigns one when absent).
    #[arg(long, env = "WSC_CLIENT_ID")]
    client_id: Option<String>,
    /// The user type: customer, agent, admin, bot, vip, visitor, system.
    #[arg(long, value_parser = parse_user_type)]
    user_type: Option<UserType>,
    /// A token for the server's authenticator (sent as `Authorization: Bearer`).
    #[arg(long, env = "WSC_TOKEN")]
    token: Option<String>,
    /// A group to join (repeatable); rejoined after every reconnect.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// How long to wait at the end for queued frames to be written and the close answered.
    #[arg(long, default_value_t = 5_000)]
    close_timeout_ms: u64,
    /// For wss://: trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, env = "WSC_CA_FILE", value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
}

fn parse_user_type(s: &str) -> Result<UserType, String> {
    UserType::parse(s).ok_or_else(|| format!("unknown user type `{s}`"))
}

/// What the printer tells `main`.
enum Note {
    Closed(StopReason),
    Unsent,
}

/// Prints frames and reports the client's end.
struct Printer {
    notes: mpsc::UnboundedSender<Note>,
}

impl Actor for Printer {
    type Context = Context<Self>;
}

fn print_line(text: &str) {
    // Frames are compact JSON already; re-encode the rare one with a raw line break.
    let line = if text.contains('\n') {
        serde_json::from_str::<serde_json::Value>(text)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| text.replace('\n', " "))
    } else {
        text.to_owned()
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
        log::error!("cannot write to stdout: {e}");
    }
}

impl Handler<FrameReceived> for Printer {
    type Result = ();
    fn handle(&mut self, ev: FrameReceived, _: &mut Context<Self>) {
        // Messages are printed by MessageReceived, once (duplicates are dropped there).
        if ev.kind != FrameKind::Message {
            print_line(&ev.text);
        }
    }
}

impl Handler<MessageReceived> for Printer {
    type Result = bool;
    fn handle(&mut self, ev: MessageReceived, _: &mut Context<Self>) -> bool {
        print_line(&ev.message.raw);
        true // printed: the client acks it when the server asked
    }
}

impl Handler<ConnectFailed> for Printer {
    type Result = ();
    fn handle(&mut self, ev: ConnectFailed, _: &mut Context<Self>) {
        match ev.retry_in {
            Some(d) => log::warn!("connect failed: {}; retrying in {d:?}", ev.error),
            None => log::error!("connect failed: {}", ev.error),
        }
    }
}

impl Handler<Disconnected> for Printer {
    type Result = ();
    fn handle(&mut self, ev: Disconnected, _: &mut Context<Self>) {
        let code = ev.code.map(|c| c.code());
        match ev.retry_in {
            Some(d) => log::warn!(
                "disconnected ({code:?} {}); reconnecting in {d:?}",
                ev.reason
            ),
            None => log::info!("disconnected ({code:?} {})", ev.reason),
        }
    }
}

impl Handler<SendFailed> for Printer {
    type Result = ();
    fn handle(&mut self, ev: SendFailed, _: &mut Context<Self>) {
        log::error!(
            "frame {:?} failed: {}",
            ev.id.map(|i| i.to_string()),
            ev.reason
        );
        if matches!(ev.reason, actix_wsc::client::SendFailure::Closed) {
            let _ = self.notes.send(Note::Unsent);
        }
    }
}

impl Handler<Closed> for Printer {
    type Result = ();
    fn handle(&mut self, ev: Closed, _: &mut Context<Self>) {
        let _ = self.notes.send(Note::Closed(ev.reason));
    }
}

/// Lines of stdin, read on a thread (blocking reads stay off the actor system).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) => {
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    log::error!("cannot read stdin: {e}");
                    break;
                }
            }
        }
    });
    rx
}

/// Sends one frame, waiting for room when the queue is full; `false` once the client is
/// closed.
async fn send(client: &Addr<WscClient>, mut message: OutgoingMessage) -> bool {
    loop {
        match client.send(SendMessage::new(message)).await {
            Ok(Ok(_)) => return true,
            Ok(Err(SendError::Full(back))) => {
                message = back;
                if !matches!(client.send(Flush).await, Ok(Ok(()))) {
                    return false;
                }
            }
            Ok(Err(_)) | Err(_) => return false,
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let mut config = ClientConfig::new(args.url, args.user_id);
    config.client_id = args.client_id;
    config.user_type = args.user_type;
    config.token = args.token;
    config.groups = args.groups;
    config.close_timeout_ms = args.close_timeout_ms;
    config.tls_ca_file = args.ca_file;
    let client = match WscClient::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsc-client: {e}");
            return ExitCode::from(2);
        }
    };
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let printer = Printer { notes: notes_tx }.start();
    let events = ClientEvents::new()
        .on_frame(printer.clone().recipient())
        .on_message(printer.clone().recipient())
        .on_connect_failed(printer.clone().recipient())
        .on_disconnected(printer.clone().recipient())
        .on_send_failed(printer.clone().recipient())
        .on_closed(printer.recipient());
    let client = client.with_events(events).start();

    let mut lines = stdin_lines();
    let mut line_no = 0u64;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                line_no += 1;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<OutgoingMessage>(&line) {
                    Ok(message) => {
                        if !send(&client, message).await {
                            log::error!("client closed; line {line_no} not sent");
                            return ExitCode::from(1);
                        }
                    }
                    Err(e) => log::error!("line {line_no} is not a frame: {e}"),
                }
            }
            note = notes.recv() => {
                if let Some(Note::Closed(reason)) = note {
                    log::error!("client stopped: {reason}");
                    return ExitCode::from(1);
                }
            }
        }
    }

    // End of input: Close writes what is queued first, then closes with 1000.
    log::info!("end of input; closing");
    if let Err(e) = client.send(Close).await {
        log::error!("client unavailable: {e}");
        return ExitCode::from(1);
    }
    let mut unsent = false;
    let wait = Duration::from_millis(args.close_timeout_ms) + Duration::from_secs(1);
    let finished = tokio::time::timeout(wait, async {
        while let Some(note) = notes.recv().await {
            match note {
                Note::Unsent => unsent = true,
                Note::Closed(reason) => return Some(reason),
            }
        }
        None
    })
    .await;
    match finished {
        Ok(Some(StopReason::ClientClosed)) if !unsent => ExitCode::SUCCESS,
        Ok(Some(StopReason::ClientClosed)) => {
            log::error!("some frames could not be written");
            ExitCode::from(1)
        }
        Ok(Some(reason)) => {
            log::error!("client stopped: {reason}");
            ExitCode::from(1)
        }
        Ok(None) | Err(_) => {
            log::error!("the client did not report its close");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    let args = Args::parse();
    actix_rt::System::new().block_on(run(args))
}
