//! TLS: the real `wsc-server` binary with `--tls-cert` / `--tls-key` (a certificate made in
//! the test with rcgen) serves `https://` and `wss://`; the Rust client and `wsc-client`
//! connect with the certificate as their CA; bad certificate files stop the server with a
//! clear error.

mod client_common;
mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix_wsc::client::*;
use client_common::*;
use common::*;

struct Certs {
    dir: PathBuf,
    cert: String,
    key: String,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make_certs(name: &str) -> Certs {
    let dir = std::env::temp_dir().join(format!("wsc-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cert dir");
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("a certificate");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, key_pair.serialize_pem()).expect("write key");
    Certs {
        cert: c.to_string_lossy().into_owned(),
        key: k.to_string_lossy().into_owned(),
        dir,
    }
}

fn tls_server(certs: &Certs) -> Running {
    let data = certs.dir.join("data");
    let data = data.to_string_lossy().into_owned();
    spawn_server(
        &[
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--tls-cert",
            &certs.cert,
            "--tls-key",
            &certs.key,
        ],
        &[],
    )
}

fn tls_client(certs: &Certs) -> awc::Client {
    let tls = actix_wsc::tls::client_config(Some(std::path::Path::new(&certs.cert)))
        .expect("client TLS config");
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(tls)))
        .timeout(WAIT)
        .finish()
}

#[actix_web::test]
async fn https_and_a_wss_round_trip_with_the_rust_client() {
    let certs = make_certs("roundtrip");
    let server = tls_server(&certs);
    let port = server.addr.rsplit(':').next().expect("port").to_owned();

    let resp = tls_client(&certs)
        .get(format!("https://127.0.0.1:{port}/health"))
        .send()
        .await
        .expect("an https answer");
    assert_eq!(resp.status().as_u16(), 200);
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map(|r| r.status().as_u16() != 200)
        .unwrap_or(true));

    let url = format!("wss://127.0.0.1:{port}/ws");
    let with_ca = |user: &str| {
        let mut c = fast_client(&url, user);
        c.tls_ca_file = Some(PathBuf::from(&certs.cert));
        c
    };
    let (alice, _alice_ev) = connected_client(with_ca("alice")).await;
    let (_bob, mut bob_ev) = connected_client(with_ca("bob")).await;
    let receipt = alice
        .send(SendWithReceipt::new(OutgoingMessage::text_to(
            "bob", "over tls",
        )))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(receipt.is_accepted(), "{receipt:?}");
    let got = next_message(&mut bob_ev).await;
    assert_eq!(got.content, "over tls");
    assert_eq!(got.from.as_str(), "alice");

    // wsc-client with --ca-file prints the welcome it got over wss://.
    let mut cli = Command::new(env!("CARGO_BIN_EXE_wsc-client"))
        .args([
            "--url",
            &url,
            "--user-id",
            "carol",
            "--ca-file",
            &certs.cert,
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn wsc-client");
    let stdout = cli.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(WAIT).expect("a line from wsc-client");
    let _ = cli.kill();
    let _ = cli.wait();
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["data"]["event"], "connected", "{v}");
    assert_eq!(v["data"]["user_id"], "carol");

    terminate(&server);
    assert!(wait_exit(server).success());
}

#[actix_web::test]
async fn a_client_without_the_ca_is_refused_by_certificate() {
    let certs = make_certs("untrusted");
    let server = tls_server(&certs);
    let port = server.addr.rsplit(':').next().expect("port").to_owned();
    let other = make_certs("other");
    // Trusting another certificate: the handshake fails, nothing is served.
    let err = tls_client(&other)
        .get(format!("https://127.0.0.1:{port}/health"))
        .send()
        .await
        .expect_err("an untrusted certificate");
    let msg = err.to_string().to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("issuer") || msg.contains("tls"),
        "{msg}"
    );
    terminate(&server);
    assert!(wait_exit(server).success());
}

#[test]
fn unusable_certificate_files_stop_the_server_with_exit_code_2() {
    let certs = make_certs("bad");
    let missing = certs.dir.join("nope.pem").to_string_lossy().into_owned();
    let out = run_bounded(Command::new(env!("CARGO_BIN_EXE_wsc-server")).args([
        "--bind",
        "127.0.0.1:0",
        "--tls-cert",
        &certs.cert,
        "--tls-key",
        &missing,
    ]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-key") && err.contains("nope.pem"),
        "{err}"
    );

    // A key that is not the certificate's.
    let other = make_certs("bad-other");
    let out = run_bounded(Command::new(env!("CARGO_BIN_EXE_wsc-server")).args([
        "--bind",
        "127.0.0.1:0",
        "--tls-cert",
        &certs.cert,
        "--tls-key",
        &other.key,
    ]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("do not fit together"), "{err}");

    // --tls-cert alone is a usage error.
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_wsc-server")).args(["--tls-cert", &certs.cert]),
    );
    assert_eq!(out.status.code(), Some(2));
}
