//! `GET /metrics`: the exposition parses, counters move with traffic, the ACK latency
//! histogram gets observations, and the API-key opt-in.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::json;

/// `name{labels}` -> value for every sample line (comments and `# EOF` skipped); panics on
/// a line that is not `series value`.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line `{line}`"));
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in `{line}`")),
        };
        out.insert(series.to_owned(), v);
    }
    out
}

async fn scrape(server: &TestServer) -> HashMap<String, f64> {
    let (status, text) = get_text(&server.http_url("/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    parse(&text)
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[actix_web::test]
async fn counters_and_the_ack_histogram_move_with_traffic() {
    let server = start(fast_config()).await;
    let before = scrape(&server).await;
    assert_eq!(get(&before, "wsc_sessions"), 0.0);
    assert!(before.contains_key("wsc_ack_latency_seconds_count"));
    let (mut a, _) = connect(&server, "user_id=a").await;
    let (mut b, _) = connect(&server, "user_id=b").await;
    for i in 0..3 {
        a.send_json(&json!({"type":"text","to":"b","content":format!("m{i}"),"id":format!("m{i}"),"require_ack":true}))
            .await;
        let m = b.next_json().await;
        assert_eq!(m["id"], format!("m{i}"));
        b.send_json(&json!({"type":"ack","id":format!("m{i}")}))
            .await;
    }
    a.send_json(&json!({"type":"image","to":"b","content":"pic"}))
        .await;
    assert_eq!(b.next_json().await["type"], "image");
    // Acks are applied by b's session as it reads them: wait for all three to be seen.
    eventually(|| async {
        let m = scrape(&server).await;
        get(&m, "wsc_ack_latency_seconds_count") - get(&before, "wsc_ack_latency_seconds_count")
            >= 3.0
    })
    .await;
    let after = scrape(&server).await;
    assert_eq!(get(&after, "wsc_sessions"), 2.0);
    assert_eq!(get(&after, "wsc_users_online"), 2.0);
    let delta = |s: &str| get(&after, s) - get(&before, s);
    assert_eq!(delta("wsc_connections_opened_total"), 2.0);
    assert_eq!(delta("wsc_frames_in_total{type=\"text\"}"), 3.0);
    assert_eq!(delta("wsc_frames_in_total{type=\"image\"}"), 1.0);
    assert!(delta("wsc_frames_out_total{type=\"text\"}") >= 3.0);
    assert!(delta("wsc_deliveries_total{route=\"user\"}") >= 4.0);
    assert_eq!(delta("wsc_ack_latency_seconds_count"), 3.0);
    let inf = get(&after, "wsc_ack_latency_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(inf, get(&after, "wsc_ack_latency_seconds_count"));
    // Buckets are cumulative: never decreasing, the 5 s bucket at most the +Inf one.
    let five = get(&after, "wsc_ack_latency_seconds_bucket{le=\"5.0\"}");
    let one_ms = get(&after, "wsc_ack_latency_seconds_bucket{le=\"0.001\"}");
    assert!(one_ms <= five && five <= inf, "{one_ms} <= {five} <= {inf}");
    assert!(get(&after, "wsc_ack_latency_seconds_sum") >= 0.0);
    // A message to an offline user is a failure of its kind; closes count by code.
    a.send_json(&json!({"type":"text","to":"nobody","content":"x"}))
        .await;
    b.close().await;
    eventually(|| async {
        let m = scrape(&server).await;
        get(&m, "wsc_delivery_failures_total{kind=\"user_offline\"}") >= 1.0
            && get(&m, "wsc_connections_closed_total{code=\"1000\"}") >= 1.0
            && get(&m, "wsc_sessions") == 1.0
    })
    .await;
}

#[actix_web::test]
async fn metrics_are_open_by_default_and_keyed_only_when_configured() {
    let mut config = fast_config();
    config.server.api_key = Some("k".into());
    let server = start(config).await;
    let url = server.http_url("/metrics");
    assert_eq!(
        get_text(&url, None).await.0,
        200,
        "open for scrapers by default"
    );
    let patch = json!({"server": {"metrics_require_api_key": true}});
    let (status, body) = http_json(
        "PUT",
        &server.http_url("/api/config"),
        Some("k"),
        Some(&patch),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_text(&url, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthorized"));
    let (status, text) = get_text(&url, Some("k")).await;
    assert_eq!(status, 200);
    assert!(parse(&text).contains_key("wsc_sessions"));
}

#[actix_web::test]
async fn offline_store_depth_and_commit_latency_follow_the_store() {
    let server = start(fast_config()).await;
    let before = scrape(&server).await;
    assert_eq!(get(&before, "wsc_offline_store_depth"), 0.0);
    let commits = get(&before, "wsc_store_commit_seconds_count");
    for i in 0..3 {
        let body = serde_json::json!({"to": "away", "content": format!("m{i}")});
        let (status, answer) = post_json(&server.http_url("/api/send"), &body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "stored_offline");
    }
    let stored = scrape(&server).await;
    assert_eq!(get(&stored, "wsc_offline_store_depth"), 3.0);
    assert!(get(&stored, "wsc_store_commit_seconds_count") > commits);
    assert_eq!(
        get(&stored, "wsc_store_commit_seconds_bucket{le=\"+Inf\"}"),
        get(&stored, "wsc_store_commit_seconds_count")
    );
    // Delivered (plain messages leave the store once queued to the session).
    let (mut away, _) = connect(&server, "user_id=away").await;
    for i in 0..3 {
        assert_eq!(
            away.expect_app(WAIT, "stored").await["content"],
            format!("m{i}")
        );
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let m = scrape(&server).await;
        if get(&m, "wsc_offline_store_depth") == 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store never emptied"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
