//! Application extension points at connect time: who may connect ([`Authenticator`]) and
//! what they are told first ([`WelcomeProvider`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::model::SessionInfo;
use crate::protocol::{UserId, UserType};

/// What a client presented at upgrade (query string or headers, PROTOCOL.md section 1).
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    /// `user_id` / `X-User-ID`.
    pub user_id: Option<String>,
    /// `client_id` / `X-Client-ID`.
    pub client_id: Option<String>,
    /// `user_type` / `X-User-Type`.
    pub user_type: Option<String>,
    /// `token` / `Authorization: Bearer ...`.
    pub token: Option<String>,
    /// The peer's address.
    pub peer_addr: Option<SocketAddr>,
}

/// Who a session belongs to, decided by the authenticator.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user_id: UserId,
    /// The user's type.
    pub user_type: UserType,
    /// The user's role, for role broadcasts.
    pub role: Option<String>,
    /// Initial session metadata.
    pub metadata: Map<String, Value>,
}

/// Why an upgrade was refused; each maps to an HTTP status with a JSON `{"error": ...}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// 400: the request is malformed (missing `user_id`, unknown `user_type`).
    BadRequest(String),
    /// 401: no valid credentials.
    Unauthorized(String),
    /// 403: valid credentials, not allowed.
    Forbidden(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::BadRequest(m) | AuthError::Unauthorized(m) | AuthError::Forbidden(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for AuthError {}

/// A boxed authentication future.
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<Identity, AuthError>>>>;

/// Decides identity at upgrade. It may be asynchronous (a token lookup, say).
pub trait Authenticator: Send + Sync + 'static {
    /// Accepts the request as an identity, or refuses it.
    fn authenticate(&self, request: ConnectRequest) -> AuthFuture;
}

/// Trusts the `user_id` and `user_type` the client presents; refuses a missing `user_id`
/// with 400. Replace it with your own for anything beyond development.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultAuthenticator;

impl DefaultAuthenticator {
    /// The identity the request claims, checked for shape only.
    pub fn claimed(request: &ConnectRequest) -> Result<Identity, AuthError> {
        let user_id = request
            .user_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| AuthError::BadRequest("missing user_id".into()))?;
        let user_type = match request.user_type.as_deref() {
            None | Some("") => UserType::Customer,
            Some(t) => UserType::parse(t)
                .ok_or_else(|| AuthError::BadRequest(format!("unknown user_type `{t}`")))?,
        };
        Ok(Identity {
            user_id: user_id.into(),
            user_type,
            role: None,
            metadata: Map::new(),
        })
    }
}

impl Authenticator for DefaultAuthenticator {
    fn authenticate(&self, request: ConnectRequest) -> AuthFuture {
        let result = Self::claimed(&request);
        Box::pin(async move { result })
    }
}

/// The application's part of the welcome frame.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// The frame's `content`. Defaults to `connected`.
    pub content: String,
    /// Extra `data` fields (the protocol's own fields always win).
    pub data: Option<Map<String, Value>>,
}

impl Default for Welcome {
    fn default() -> Self {
        Welcome {
            content: "connected".into(),
            data: None,
        }
    }
}

/// Chooses the welcome for a new session (per user, type, role...).
pub trait WelcomeProvider: Send + Sync + 'static {
    /// The welcome for this session.
    fn welcome(&self, session: &SessionInfo) -> Welcome;
}

/// Always the default welcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultWelcome;

impl WelcomeProvider for DefaultWelcome {
    fn welcome(&self, _: &SessionInfo) -> Welcome {
        Welcome::default()
    }
}
