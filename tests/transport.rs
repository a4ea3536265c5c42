//! The two carriers of a WebSocket session, over raw TCP on 127.0.0.1: the raw upgraded
//! socket of `WscHttpServer` (wsc-server's default) and actix-web's route. What a client
//! sends in the same packet as its upgrade request is read; a close is a close handshake on
//! both; and under `WscHttpServer` an upgrade to any other path gets a JSON 404.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use actix_wsc::config::WsTransport;
use actix_wsc::hub::GetStats;
use common::*;
use serde_json::{json, Value};

const TRANSPORTS: [WsTransport; 2] = [WsTransport::Raw, WsTransport::ActixWeb];

/// A client frame (masked, FIN set) with `opcode` and `payload` (under 126 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

fn upgrade_request(addr: std::net::SocketAddr, query: &str) -> String {
    format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// A blocking reader of server frames after the 101 (the test's own thread).
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug, PartialEq)]
enum Read_ {
    Text(Value),
    Close(u16),
    Eof,
}

impl Raw {
    /// Connects and sends `first` (the upgrade request and whatever follows it) in one write;
    /// returns once the 101's head is read.
    fn open(addr: std::net::SocketAddr, first: &[u8]) -> Raw {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.write_all(first).expect("write");
        let mut raw = Raw { s, buf: Vec::new() };
        let end = loop {
            if let Some(i) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(raw.fill(), "connection ended before the 101");
        };
        let head = String::from_utf8_lossy(&raw.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw.buf.drain(..end);
        raw
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.s.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// The next text or close frame (pings skipped), or the end of the stream.
    fn next(&mut self) -> Read_ {
        loop {
            if self.buf.len() >= 2 {
                let (op, len7) = (self.buf[0] & 0x0f, (self.buf[1] & 0x7f) as usize);
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                let (hdr, len) = match len7 {
                    126 if self.buf.len() >= 4 => {
                        (4, u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize)
                    }
                    126 => (usize::MAX, 0),
                    127 => panic!("no frame here is that large"),
                    n => (2, n),
                };
                if hdr != usize::MAX && self.buf.len() >= hdr + len {
                    let payload: Vec<u8> = self.buf[hdr..hdr + len].to_vec();
                    self.buf.drain(..hdr + len);
                    match op {
                        0x1 => return Read_::Text(serde_json::from_slice(&payload).expect("JSON")),
                        0x8 => return Read_::Close(u16::from_be_bytes([payload[0], payload[1]])),
                        _ => continue,
                    }
                }
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "stream ended inside a frame");
                return Read_::Eof;
            }
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[actix_web::test]
async fn frames_sent_with_the_upgrade_request_are_read() {
    for transport in TRANSPORTS {
        let s = start_on_transport(fast_config(), transport).await;
        let addr = s.addr;
        let got = blocking(move || {
            let mut first = upgrade_request(addr, "user_id=early").into_bytes();
            first.extend(client_frame(0x1, br#"{"type":"ping","id":"p1"}"#));
            let mut raw = Raw::open(addr, &first);
            let welcome = raw.next();
            let pong = raw.next();
            (welcome, pong)
        })
        .await;
        match got {
            (Read_::Text(w), Read_::Text(p)) => {
                assert_eq!(w["data"]["event"], "connected", "{transport:?}: {w}");
                assert_eq!(p["type"], "pong", "{transport:?}: {p}");
            }
            other => panic!("{transport:?}: expected the welcome and a pong, got {other:?}"),
        }
    }
}

#[actix_web::test]
async fn a_kick_is_a_close_handshake_then_the_socket_ends() {
    for transport in TRANSPORTS {
        let mut config = fast_config();
        config.server.api_key = Some("k".into());
        let s = start_on_transport(config, transport).await;
        let addr = s.addr;
        let first = upgrade_request(addr, "user_id=kicked").into_bytes();
        let mut raw = blocking(move || {
            let mut raw = Raw::open(addr, &first);
            assert!(matches!(raw.next(), Read_::Text(_)), "welcome");
            raw
        })
        .await;
        let (status, v) = http_json(
            "POST",
            &s.http_url("/api/admin/users/kicked/kick"),
            Some("k"),
            Some(&json!({"reason": "bye"})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let (close, after) = blocking(move || {
            let close = raw.next();
            // The client's half of the handshake; the server then ends the connection.
            raw.s
                .write_all(&client_frame(0x8, &4500u16.to_be_bytes()))
                .expect("close reply");
            (close, raw.next())
        })
        .await;
        assert_eq!(close, Read_::Close(4500), "{transport:?}");
        assert_eq!(
            after,
            Read_::Eof,
            "{transport:?}: nothing after the close frame"
        );
        let hub = s.hub.clone();
        wait_until(WAIT, "the session to end", move || {
            let hub = hub.clone();
            async move {
                let st = hub.send(GetStats).await.map_err(|e| e.to_string())?;
                match st.active_connections {
                    0 => Ok(()),
                    n => Err(format!("{n} sessions")),
                }
            }
        })
        .await;
    }
}

#[actix_web::test]
async fn a_frame_that_is_not_utf8_fails_the_connection_with_1007() {
    for transport in TRANSPORTS {
        let s = start_on_transport(fast_config(), transport).await;
        let addr = s.addr;
        let (close, after) = blocking(move || {
            let mut raw = Raw::open(addr, upgrade_request(addr, "user_id=bad").as_bytes());
            assert!(matches!(raw.next(), Read_::Text(_)), "welcome");
            raw.s
                .write_all(&client_frame(0x1, &[0xff, 0xfe]))
                .expect("write");
            (raw.next(), raw.next())
        })
        .await;
        assert_eq!(close, Read_::Close(1007), "{transport:?}");
        assert_eq!(after, Read_::Eof, "{transport:?}");
    }
}

#[actix_web::test]
async fn upgrades_on_other_paths_get_a_json_404_under_wsc_http_server() {
    let s = start_on_transport(fast_config(), WsTransport::Raw).await;
    let (status, v) = refused_upgrade(&format!("ws://{}/elsewhere", s.addr)).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    // The plain HTTP routes are the App's, as under HttpServer.
    let (status, v) = http_json("GET", &s.http_url("/health"), None, None).await;
    assert_eq!(status, 200, "{v}");
}
