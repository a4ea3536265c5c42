//! The `wsc-client` binary against an in-process server: frames printed as JSON lines,
//! stdin lines sent, exit 0 at end of input after flushing; exit 1 when kicked.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use actix_wsc::hub::{Dispatch, KickUser};
use actix_wsc::protocol::Envelope;
use common::*;
use serde_json::Value;
use tokio::sync::mpsc;

/// The child process, killed if the test ends before it exits.
struct Cli {
    child: Child,
    lines: mpsc::UnboundedReceiver<Result<Value, String>>,
}

impl Drop for Cli {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_cli(args: &[&str]) -> Cli {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsc-client"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn wsc-client");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parsed = serde_json::from_str::<Value>(&line).map_err(|_| line);
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    Cli { child, lines }
}

impl Cli {
    /// The next stdout line, which must be one JSON object.
    async fn next_line(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.lines.recv()).await {
            Ok(Some(Ok(v))) => {
                assert!(v.is_object(), "one JSON object per line: {v}");
                v
            }
            Ok(Some(Err(line))) => panic!("stdout line is not JSON: {line:?}"),
            Ok(None) => panic!("stdout ended"),
            Err(_) => panic!("no stdout line within {WAIT:?}"),
        }
    }

    /// Polls for the exit, bounded by [`WAIT`].
    async fn exit_status(&mut self) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "wsc-client did not exit within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[actix_web::test]
async fn prints_frames_sends_stdin_and_exits_zero_at_end_of_input() {
    let server = start(fast_config()).await;
    let url = format!("ws://{}/ws", server.addr);
    let (mut peer, _) = connect(&server, "user_id=peer").await;
    let mut cli = spawn_cli(&["--url", &url, "--user-id", "cli", "--group", "room"]);

    let welcome = cli.next_line().await;
    assert_eq!(welcome["type"], "system");
    assert_eq!(welcome["data"]["event"], "connected");
    assert_eq!(welcome["data"]["user_id"], "cli");
    let join = cli.next_line().await;
    assert_eq!(join["type"], "ack", "the --group join's receipt: {join}");
    assert_eq!(join["status"], "accepted");

    server
        .hub
        .send(Dispatch::to_user(
            "cli",
            Envelope::system_text("to the cli")
                .with_id("h1")
                .with_require_ack(true),
        ))
        .await
        .expect("hub");
    let line = cli.next_line().await;
    assert_eq!(line["id"], "h1");
    assert_eq!(line["content"], "to the cli");
    assert_eq!(line["require_ack"], true);
    let report = server
        .hub
        .send(Dispatch::to_group(
            "room",
            Envelope::system_text("to the room"),
        ))
        .await
        .expect("hub");
    assert_eq!(report.delivered, 1);
    assert_eq!(cli.next_line().await["content"], "to the room");

    // One frame, then end of input at once: it must still be written before the exit.
    let mut stdin = cli.child.stdin.take().expect("stdin");
    writeln!(
        stdin,
        r#"{{"type":"text","to":"peer","content":"from stdin"}}"#
    )
    .expect("write");
    drop(stdin);
    let got = peer.next_json().await;
    assert_eq!(got["content"], "from stdin");
    assert_eq!(got["from"], "cli");
    assert!(got["id"].as_str().is_some_and(|id| !id.is_empty()), "{got}");

    let status = cli.exit_status().await;
    assert!(status.success(), "exit status {status:?}");
}

#[actix_web::test]
async fn exits_one_when_kicked_before_end_of_input() {
    let server = start(fast_config()).await;
    let url = format!("ws://{}/ws", server.addr);
    let mut cli = spawn_cli(&["--url", &url, "--user-id", "kicked"]);
    assert_eq!(cli.next_line().await["data"]["event"], "connected");
    let n = server
        .hub
        .send(KickUser {
            user_id: "kicked".into(),
            reason: "bye".into(),
        })
        .await
        .expect("hub");
    assert_eq!(n, 1);
    let status = cli.exit_status().await;
    assert_eq!(status.code(), Some(1), "kicked while stdin is open");
}

#[actix_web::test]
async fn exits_two_on_bad_arguments() {
    let mut cli = spawn_cli(&["--url", "http://127.0.0.1:1/ws", "--user-id", "x"]);
    let status = cli.exit_status().await;
    assert_eq!(status.code(), Some(2));
}
