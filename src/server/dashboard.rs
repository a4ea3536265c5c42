//! `/dashboard`: a live view of the hub (online users, traffic, failures, records) and a
//! console that connects as users with the JavaScript client. Static files are embedded in
//! the binary. With an API key configured, `/dashboard?api_key=KEY` signs in (an HttpOnly,
//! SameSite=Strict cookie) and any other visit gets a sign-in form.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::ServerState;

const INDEX: &str = include_str!("dashboard/index.html");
const LOGIN: &str = include_str!("dashboard/login.html");
const COOKIE: &str = "wsc_dashboard";

/// The embedded files under `/dashboard/`: name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/style.css"),
    ),
    (
        "wsc.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/js/wsc.js"),
    ),
    (
        "sse.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/js/sse.js"),
    ),
    (
        "wsc.d.ts",
        "text/plain; charset=utf-8",
        include_str!("../../clients/js/wsc.d.ts"),
    ),
];

#[derive(Deserialize)]
pub(crate) struct DashboardQuery {
    #[serde(default)]
    api_key: Option<String>,
}

fn cookie_key(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("cookie")?.to_str().ok()?;
    header.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE).then(|| value.to_owned())
    })
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(body)
}

fn login(message: &str) -> HttpResponse {
    html(
        StatusCode::UNAUTHORIZED,
        LOGIN.replace("/*MESSAGE*/", message),
    )
}

/// `GET /dashboard[?api_key=KEY]`.
pub(crate) async fn index(
    req: HttpRequest,
    q: web::Query<DashboardQuery>,
    state: web::Data<ServerState>,
) -> HttpResponse {
    let key = match state.api_key().await {
        Ok(k) => k,
        Err(e) => {
            log::error!("dashboard: the hub did not answer: {e}");
            return super::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the hub is not answering",
            );
        }
    };
    let Some(key) = &key else {
        return html(StatusCode::OK, INDEX.replace("/*API_KEY*/null", "null"));
    };
    if let Some(given) = q.into_inner().api_key.filter(|k| !k.is_empty()) {
        if !super::guard::key_matches(Some(&given), key) {
            log::warn!("dashboard sign-in refused: wrong API key");
            return login("Wrong API key.");
        }
        // Signed in: the key leaves the address bar and lives in a cookie for this path.
        return HttpResponse::SeeOther()
            .insert_header(("location", "/dashboard"))
            .insert_header((
                "set-cookie",
                format!("{COOKIE}={given}; Path=/dashboard; HttpOnly; SameSite=Strict"),
            ))
            .finish();
    }
    match cookie_key(&req) {
        Some(c) if super::guard::key_matches(Some(&c), key) => {
            let js = serde_json::Value::from(key.as_str()).to_string();
            html(StatusCode::OK, INDEX.replace("/*API_KEY*/null", &js))
        }
        Some(_) => login("The saved key is no longer valid."),
        None => login(""),
    }
}

/// `GET /dashboard/{file}`: the embedded scripts and styles (no secrets in them).
pub(crate) async fn asset(file: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(name, _, _)| *name == file.as_str()) {
        Some((_, kind, body)) => HttpResponse::Ok()
            .content_type(*kind)
            .insert_header(("cache-control", "no-cache"))
            .body(*body),
        None => super::error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no dashboard file `{file}`"),
        ),
    }
}
