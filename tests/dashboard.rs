//! `/dashboard`: embedded files, and the API-key sign-in when a key is configured.

mod common;

use common::*;

async fn get(url: &str, cookie: Option<&str>) -> (u16, String, awc::http::header::HeaderMap) {
    let mut req = awc::Client::builder().disable_redirects().finish().get(url);
    if let Some(c) = cookie {
        req = req.insert_header(("cookie", c));
    }
    let mut resp = req.send().await.expect("GET");
    let body = resp.body().await.expect("body");
    (
        resp.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
        resp.headers().clone(),
    )
}

#[actix_web::test]
async fn dashboard_and_its_files_are_served_without_a_key_when_none_is_set() {
    let server = start(fast_config()).await;
    let (status, body, _) = get(&server.http_url("/dashboard"), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("window.WSC_API_KEY = null"), "{body}");
    for (file, needle) in [
        ("app.js", "WscClient"),
        ("wsc.js", "export class WscClient"),
        ("sse.js", "export class SseTransport"),
        ("style.css", "--bg"),
    ] {
        let (status, body, _) = get(&server.http_url(&format!("/dashboard/{file}")), None).await;
        assert_eq!(status, 200, "{file}");
        assert!(body.contains(needle), "{file}");
    }
    let (status, body, _) = get(&server.http_url("/dashboard/nope.js"), None).await;
    assert_eq!(status, 404);
    assert!(body.contains("nope.js"), "{body}");
}

#[actix_web::test]
async fn with_an_api_key_the_dashboard_asks_for_it_and_signs_in_with_a_cookie() {
    let server = start_with(fast_config(), |w| w.api_key(Some("k-123".into()))).await;
    let (status, body, _) = get(&server.http_url("/dashboard"), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("name=\"api_key\""), "a sign-in form: {body}");
    assert!(!body.contains("k-123"));
    let (status, body, _) = get(&server.http_url("/dashboard?api_key=wrong"), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("Wrong API key"), "{body}");
    let (status, _, headers) = get(&server.http_url("/dashboard?api_key=k-123"), None).await;
    assert_eq!(status, 303);
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value");
    let (status, body, _) = get(&server.http_url("/dashboard"), Some(pair)).await;
    assert_eq!(status, 200);
    assert!(body.contains("window.WSC_API_KEY = \"k-123\""), "{body}");
    let (status, _, _) = get(&server.http_url("/dashboard"), Some("wsc_dashboard=old")).await;
    assert_eq!(status, 401);
}
