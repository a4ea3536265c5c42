//! Upgrade, identity and the welcome frame.

mod common;

use common::*;

#[actix_web::test]
async fn welcome_frame_carries_identity_and_config() {
    let mut config = fast_config();
    config.session.heartbeat_interval_ms = 1234;
    config.session.client_timeout_ms = 5678;
    config.hub.node_id = "node-x".into();
    let server = start(config).await;
    let (_c, w) = connect(&server, "user_id=alice&client_id=c-a1").await;
    assert_eq!(w["type"], "system");
    assert_eq!(w["from"], "system");
    assert_eq!(w["to"], "alice");
    assert_eq!(w["content"], "connected");
    assert!(w["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(w["create_at"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z') && s.len() == 24));
    let d = &w["data"];
    assert_eq!(d["client_id"], "c-a1");
    assert_eq!(d["user_id"], "alice");
    assert_eq!(d["node_id"], "node-x");
    assert_eq!(d["protocol"], "wsc.v1");
    assert_eq!(d["heartbeat_interval_ms"], 1234);
    assert_eq!(d["client_timeout_ms"], 5678);
    assert_eq!(d["ack_timeout_ms"], 5000);
    assert_eq!(d["max_retries"], 3);
}

#[actix_web::test]
async fn server_assigns_client_id_and_reads_headers() {
    let server = start(fast_config()).await;
    let (_c, w) = connect(&server, "user_id=bob").await;
    assert!(w["data"]["client_id"]
        .as_str()
        .is_some_and(|s| s.starts_with("c-")));

    let (_resp, mut framed) = awc::Client::new()
        .ws(server.ws_url(""))
        .set_header("X-User-ID", "carol")
        .set_header("X-Client-ID", "hdr-1")
        .set_header("X-User-Type", "agent")
        .connect()
        .await
        .expect("connect with headers");
    use futures_util::StreamExt;
    let Some(Ok(awc::ws::Frame::Text(t))) = framed.next().await else {
        panic!("expected the welcome")
    };
    let w: serde_json::Value = serde_json::from_slice(&t).expect("json");
    assert_eq!(w["data"]["user_id"], "carol");
    assert_eq!(w["data"]["client_id"], "hdr-1");
}

#[actix_web::test]
async fn refused_upgrades_get_http_errors() {
    let server = start(fast_config()).await;
    assert_eq!(
        refused_status(&server.ws_url("")).await,
        400,
        "missing user_id"
    );
    assert_eq!(
        refused_status(&server.ws_url("user_id=")).await,
        400,
        "empty user_id"
    );
    assert_eq!(
        refused_status(&server.ws_url("user_id=a&user_type=wizard")).await,
        400,
        "unknown user_type"
    );
    let (_alice, _) = connect(&server, "user_id=alice&client_id=shared").await;
    assert_eq!(
        refused_status(&server.ws_url("user_id=mallory&client_id=shared")).await,
        409,
        "another user's client id"
    );
}

#[actix_web::test]
async fn authenticator_can_refuse_with_401_and_403() {
    use actix_wsc::auth::{
        AuthError, AuthFuture, Authenticator, ConnectRequest, DefaultAuthenticator,
    };
    use std::sync::Arc;

    struct TokenAuth;
    impl Authenticator for TokenAuth {
        fn authenticate(&self, req: ConnectRequest) -> AuthFuture {
            let result = match req.token.as_deref() {
                None => Err(AuthError::Unauthorized("token required".into())),
                Some("banned") => Err(AuthError::Forbidden("banned".into())),
                Some(_) => DefaultAuthenticator::claimed(&req),
            };
            Box::pin(async move { result })
        }
    }
    let server = start_with(fast_config(), |w| w.authenticator(Arc::new(TokenAuth))).await;
    assert_eq!(refused_status(&server.ws_url("user_id=a")).await, 401);
    assert_eq!(
        refused_status(&server.ws_url("user_id=a&token=banned")).await,
        403
    );
    let (_c, w) = connect(&server, "user_id=a&token=good").await;
    assert_eq!(w["data"]["user_id"], "a");
}
