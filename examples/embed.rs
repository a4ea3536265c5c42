//! Run with: cargo run --example embed
//!
//! The hub inside an application's own actix-web app: the app keeps its own routes and
//! state, mounts actix-wsc beside them, and sends through the hub from its own handler.
//!
//! ```text
//! ws://127.0.0.1:8091/ws?user_id=bob            (connect a client as bob)
//! curl -X POST 127.0.0.1:8091/orders/42/ship?customer=bob
//! ```

use actix::prelude::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use actix_wsc::prelude::*;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct ShipQuery {
    customer: String,
}

/// The application's own route: marks an order shipped and notifies the customer on every
/// device through the hub, answering with what the hub did.
async fn ship(
    hub: web::Data<Addr<Hub>>,
    order: web::Path<u64>,
    q: web::Query<ShipQuery>,
) -> HttpResponse {
    let order = order.into_inner();
    let envelope = Envelope::new(
        MessageType::Notice,
        "shop",
        format!("order {order} shipped"),
    )
    .with_data(&json!({"order": order, "status": "shipped"}))
    .with_priority(Priority::High);
    match hub
        .send(Dispatch::to_user(q.customer.as_str(), envelope))
        .await
    {
        Ok(report) => HttpResponse::Ok().json(json!({
            "message_id": report.id,
            "notified_sessions": report.delivered,
            "customer_online": report.offline_users.is_empty(),
        })),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let hub = Hub::new(Config::default()).start();
    log::info!("shop on http://127.0.0.1:8091 (WebSocket at /ws)");
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(hub.clone()))
            .configure(actix_wsc::server::routes(hub.clone()))
            .route("/orders/{id}/ship", web::post().to(ship))
    })
    .bind("127.0.0.1:8091")?
    .run()
    .await
}
