//! One connection attempt: the upgrade request with the client's identity (PROTOCOL.md
//! section 1), and the classification of its failures.

use std::sync::Arc;
use std::time::Duration;

use awc::error::{ConnectError, SendRequestError, WsClientError};
use awc::ws::WebsocketsRequest;

use super::config::{ClientConfig, TokenPlacement};
use super::error::DialError;
use crate::protocol::ClientId;

/// Everything one attempt needs, computed from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct DialRequest {
    pub(crate) url: String,
    pub(crate) bearer: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) max_frame_bytes: usize,
    /// The TLS settings, for `wss://`.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl DialRequest {
    /// The request for `config`; `client_id` (the configured one, or the one the server
    /// assigned on an earlier connection) overrides the configured client id.
    pub(crate) fn new(
        config: &ClientConfig,
        client_id: Option<&ClientId>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let mut query = vec![("user_id", config.user_id.as_str())];
        if let Some(id) = client_id
            .map(ClientId::as_str)
            .or(config.client_id.as_deref())
        {
            query.push(("client_id", id));
        }
        if let Some(t) = config.user_type {
            query.push(("user_type", t.as_str()));
        }
        let mut bearer = None;
        if let Some(token) = config.token.as_deref() {
            match config.token_placement {
                TokenPlacement::Query => query.push(("token", token)),
                TokenPlacement::Header => bearer = Some(token.to_owned()),
            }
        }
        let mut url = config.url.clone();
        for (i, (key, value)) in query.iter().enumerate() {
            let sep = if i == 0 && !config.url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(sep);
            url.push_str(key);
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        DialRequest {
            url,
            bearer,
            timeout: Duration::from_millis(config.connect_timeout_ms),
            max_frame_bytes: config.max_frame_bytes,
            tls,
        }
    }
}

/// Percent-encodes a query value (RFC 3986: everything but unreserved characters).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl DialRequest {
    /// The awc upgrade request (its `connect()` runs inside the connection task, which owns
    /// the socket from then on).
    pub(crate) fn build(&self) -> WebsocketsRequest {
        let builder = awc::Client::builder().timeout(self.timeout);
        let client = match &self.tls {
            Some(tls) => builder
                .connector(awc::Connector::new().rustls_0_23(tls.clone()))
                .finish(),
            None => builder.finish(),
        };
        let mut ws = client
            .ws(self.url.as_str())
            .max_frame_size(self.max_frame_bytes);
        if let Some(token) = &self.bearer {
            ws = ws.bearer_auth(token);
        }
        ws
    }
}

/// What a failed upgrade means for the client.
pub(crate) fn classify(e: WsClientError) -> DialError {
    match e {
        WsClientError::InvalidResponseStatus(status) => DialError::Refused(status.as_u16()),
        WsClientError::SendRequest(SendRequestError::Url(e)) => {
            DialError::InvalidRequest(e.to_string())
        }
        WsClientError::SendRequest(SendRequestError::Http(e)) => {
            DialError::InvalidRequest(e.to_string())
        }
        WsClientError::SendRequest(SendRequestError::Connect(ConnectError::SslIsNotSupported)) => {
            DialError::InvalidRequest("wss:// needs awc built with a TLS feature".into())
        }
        WsClientError::SendRequest(SendRequestError::Timeout)
        | WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Timeout)) => {
            DialError::Timeout
        }
        other => DialError::Transport(other.to_string().to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::UserType;

    #[test]
    fn identity_goes_into_the_query_encoded() {
        let mut config = ClientConfig::new("ws://127.0.0.1:9/ws", "alice smith");
        config.user_type = Some(UserType::Agent);
        config.token = Some("s3cr&t".into());
        let req = DialRequest::new(&config, None, None);
        assert_eq!(
            req.url,
            "ws://127.0.0.1:9/ws?user_id=alice%20smith&user_type=agent"
        );
        assert_eq!(req.bearer.as_deref(), Some("s3cr&t"));

        config.token_placement = TokenPlacement::Query;
        config.client_id = Some("phone".into());
        config.url = "ws://h/ws?v=1".into();
        let req = DialRequest::new(&config, Some(&ClientId::from("c-9")), None);
        assert_eq!(
            req.url,
            "ws://h/ws?v=1&user_id=alice%20smith&client_id=c-9&user_type=agent&token=s3cr%26t"
        );
        assert_eq!(req.bearer, None);
    }

    #[test]
    fn percent_encoding_keeps_unreserved_characters() {
        assert_eq!(percent_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(percent_encode("é/?"), "%C3%A9%2F%3F");
    }
}
