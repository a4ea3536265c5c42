//! User-type and role targets across nodes. No HTTP route names them (they are the Rust
//! API's), so two nodes here are embedded hubs in cluster mode inside this test process
//! (an application embedding actix-wsc), joined by a `wsc-server` node, all on one real
//! `redis-server`.

mod cluster_harness;
mod common;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{App, HttpServer};
use actix_wsc::auth::{AuthFuture, Authenticator, ConnectRequest, DefaultAuthenticator};
use actix_wsc::cluster::Cluster as ClusterNode;
use actix_wsc::config::{Config, StoreBackend};
use actix_wsc::hub::{Dispatch, Hub, Target};
use actix_wsc::protocol::{Envelope, MessageType, UserType};
use actix_wsc::server::WscServer;
use cluster_harness::*;
use common::*;

/// The default identity, with the token as the role (`token=supervisor`).
struct RoleFromToken;

impl Authenticator for RoleFromToken {
    fn authenticate(&self, request: ConnectRequest) -> AuthFuture {
        let result = DefaultAuthenticator::claimed(&request).map(|mut id| {
            id.role = request.token.clone();
            id
        });
        Box::pin(async move { result })
    }
}

/// An embedded node: its hub address, the cluster handle and its `ws://` base.
struct Embedded {
    hub: Addr<Hub>,
    cluster: ClusterNode,
    addr: std::net::SocketAddr,
}

impl Embedded {
    async fn start(redis_url: &str, id: &str) -> Embedded {
        let mut config = Config::default();
        config.hub.node_id = id.into();
        config.cluster.redis_url = Some(redis_url.into());
        config.cluster.node_ttl_ms = TTL_MS;
        config.store.backend = Some(StoreBackend::Redis);
        config.store.redis_url = Some(redis_url.into());
        config.validate().expect("valid cluster config");
        let hub = Hub::from_config(config.clone()).expect("hub on redis");
        let cluster =
            ClusterNode::connect(&config, hub.router(), hub.reliability()).expect("join cluster");
        let hub = hub.start();
        cluster.start(hub.clone()).expect("start cluster");
        let wsc = WscServer::new(hub.clone()).authenticator(Arc::new(RoleFromToken));
        let server = HttpServer::new(move || App::new().configure(wsc.clone().configure()))
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind 127.0.0.1:0");
        let addr = server.addrs()[0];
        actix_rt::spawn(server.run());
        Embedded { hub, cluster, addr }
    }

    async fn connect(&self, query: &str) -> Client {
        let mut c = try_connect(&format!("ws://{}/ws?{query}", self.addr))
            .await
            .expect("connect to the embedded node");
        let w = c.next_json().await;
        assert_eq!(w["data"]["event"], "connected", "{w}");
        c
    }
}

#[actix_web::test]
async fn user_type_and_role_targets_reach_sessions_on_other_nodes() {
    let c = Cluster::start(1).await;
    let n1 = c.node(0);
    let e1 = Embedded::start(&c.redis.url(), "e1").await;
    let e2 = Embedded::start(&c.redis.url(), "e2").await;

    let mut agent_n1 = n1.client("user_id=ann&user_type=agent").await;
    let mut cust_n1 = n1.client("user_id=carl").await;
    let mut agent_e2 = e2
        .connect("user_id=al&user_type=agent&token=supervisor")
        .await;
    let mut cust_e2 = e2.connect("user_id=cid&token=supervisor").await;
    let mut plain_e2 = e2.connect("user_id=pat&user_type=agent").await;
    for u in ["ann", "carl", "al", "cid", "pat"] {
        n1.wait_sessions(u, 1).await;
    }

    // From e1, which holds none of them.
    let r = e1
        .hub
        .send(Dispatch::new(
            Target::UserType(UserType::Agent),
            Envelope::new(MessageType::Notice, "system", "agents only"),
        ))
        .await
        .expect("hub");
    assert_eq!(
        r.delivered, 3,
        "three agent sessions on two other nodes: {r:?}"
    );
    for (who, s) in [
        ("agent ann on n1", &mut agent_n1),
        ("agent al on e2", &mut agent_e2),
        ("agent pat on e2", &mut plain_e2),
    ] {
        let m = expect_content(s, "agents only", WAIT, who).await;
        assert_eq!(m["type"], "notice", "{who}: {m}");
    }
    for (who, s) in [("carl", &mut cust_n1), ("cid", &mut cust_e2)] {
        s.assert_no_app_within(Duration::from_millis(300), &format!("{who} is no agent"))
            .await;
    }

    let r = e1
        .hub
        .send(Dispatch::new(
            Target::Role("supervisor".into()),
            Envelope::new(MessageType::Notice, "system", "supervisors only"),
        ))
        .await
        .expect("hub");
    assert_eq!(r.delivered, 2, "two supervisor sessions on e2: {r:?}");
    expect_content(&mut agent_e2, "supervisors only", WAIT, "al").await;
    expect_content(&mut cust_e2, "supervisors only", WAIT, "cid").await;
    for (who, s) in [
        ("ann", &mut agent_n1),
        ("carl", &mut cust_n1),
        ("pat", &mut plain_e2),
        ("al", &mut agent_e2),
    ] {
        s.assert_no_app_within(
            Duration::from_millis(300),
            &format!("{who}: no (more) copy"),
        )
        .await;
    }
    for e in [e1, e2] {
        e.cluster.leave(Duration::from_secs(2)).await;
    }
}
