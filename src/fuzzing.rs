//! Entry points for the `cargo fuzz` targets in `fuzz/` (not a stable API). Each takes
//! arbitrary bytes, runs one parser the way the server does, and panics only when an
//! invariant breaks: a parser must answer every input with a value or a typed error.

use bytes::BytesMut;

use crate::config::Config;
use crate::protocol::inbound::{json_depth, Inbound, MAX_DATA_DEPTH};
use crate::protocol::{parse_inbound, Destination};

/// The inbound path of a session: the WebSocket frame decoder (server side, 1 KiB frame
/// limit), then UTF-8 validation and [`parse_inbound`] for each text frame.
pub fn inbound_frames(data: &[u8]) {
    let mut codec = actix_http::ws::Codec::new().max_size(1024);
    let mut buf = BytesMut::from(data);
    // Bounded: every decoded frame consumes input, an error ends the stream.
    while let Ok(Some(frame)) = tokio_util::codec::Decoder::decode(&mut codec, &mut buf) {
        if let actix_http::ws::Frame::Text(bytes) = frame {
            if let Ok(text) = std::str::from_utf8(&bytes) {
                inbound_text(text.as_bytes());
            }
        }
    }
}

/// One text frame through [`parse_inbound`], with the invariants of a validated frame.
pub fn inbound_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_inbound(text) {
        Ok(Inbound::Message(m)) => {
            if let Some(d) = &m.data {
                assert!(json_depth(d.get()) <= MAX_DATA_DEPTH, "deep data accepted");
            }
            match &m.destination {
                Destination::User(u) => assert!(!u.as_str().is_empty()),
                Destination::Group(g) => assert!(!g.as_str().is_empty()),
            }
        }
        Ok(Inbound::Join { group, .. } | Inbound::Leave { group, .. }) => {
            assert!(!group.as_str().is_empty(), "empty group accepted")
        }
        Ok(Inbound::Ack { id, .. }) => assert!(!id.as_str().is_empty(), "empty ack id"),
        Ok(_) => {}
        Err(e) => assert!(!e.message.is_empty(), "error without a message"),
    }
}

/// Acks in both shapes built from two arbitrary strings: each parses back to an ack of
/// exactly that id and sender (or is refused when the id is empty).
pub fn ack(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (id, from) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let frames = [
        serde_json::json!({"type": "ack", "id": id, "from": from}),
        serde_json::json!({"message_id": id, "status": "confirmed", "from": from}),
    ];
    for frame in frames {
        let parsed = parse_inbound(&frame.to_string());
        match parsed {
            Ok(Inbound::Ack { id: got, from: who }) => {
                assert_eq!(got.as_str(), id);
                assert_eq!(who.as_ref().map(|u| u.as_str()).unwrap_or(""), from);
            }
            Ok(_) => panic!("an ack parsed as another frame: {frame}"),
            Err(e) => assert!(id.is_empty(), "ack {frame} refused: {e}"),
        }
    }
    inbound_text(data);
}

/// The config loader: TOML text, then validation; a valid config survives a round trip
/// through its own TOML form.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    if config.validate().is_err() {
        return;
    }
    let Ok(again) = toml::to_string(&config) else {
        return; // floats like NaN have no TOML form; validate refuses the ones that matter
    };
    let back = Config::from_toml(&again).expect("a config reads back its own TOML");
    back.validate().expect("and stays valid");
}

/// The `/api/send` body parser: a target and an envelope, or a 400 with a code.
pub fn api_send_body(data: &[u8]) {
    match crate::server::api::parse_send(data) {
        Ok(req) => {
            if let Some(d) = &req.envelope.data {
                assert!(json_depth(d.get()) <= MAX_DATA_DEPTH, "deep data accepted");
            }
            let _target = req.target;
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
