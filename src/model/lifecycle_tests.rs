//! The state machine without a runtime.

use std::time::Duration;

use super::*;
use crate::model::{MessageRecord, RecordTarget};
use crate::protocol::Envelope;

fn record(users: &[&str]) -> MessageRecord {
    let mut e = Envelope::system_text("x").with_id("m1");
    e.require_ack = true;
    let mut r = MessageRecord::new(
        e,
        RecordTarget::Users(users.iter().map(|u| (*u).into()).collect()),
        true,
        Duration::from_millis(100),
    );
    r.max_retries = 1;
    r.storable = true;
    r
}

fn reached(users: &[&str]) -> Routed {
    Routed {
        reached: users.iter().map(|u| ((*u).into(), None)).collect(),
        ..Default::default()
    }
}

const RETRYABLE: Classified = Classified { retryable: true };

#[test]
fn ack_per_member_and_only_then_acked() {
    let mut r = record(&["bob", "carol"]);
    let (actions, failures) = on_routed(&mut r, &reached(&["bob", "carol"]), None, 1000);
    assert!(failures.is_empty());
    assert_eq!(actions.len(), 2, "one ack deadline per member");
    assert_eq!(r.status, MessageStatus::Delivered);
    assert!(on_ack(&mut r, &"bob".into(), 1010).is_some());
    assert!(
        r.in_flight(),
        "carol has not acked: bob's ack confirms only bob"
    );
    assert_eq!(
        r.recipient(&"carol".into()).map(|d| d.state),
        Some(DeliveryState::AwaitingAck)
    );
    assert!(
        on_ack(&mut r, &"bob".into(), 1011).is_none(),
        "a duplicate ack is ignored"
    );
    on_ack(&mut r, &"carol".into(), 1020);
    assert_eq!(r.status, MessageStatus::Acked);
    assert!(r.attempts[0].success && r.attempts[0].ended);
}

#[test]
fn timeout_retries_then_stores_for_the_next_connection() {
    let mut r = record(&["bob"]);
    let (_, _) = on_routed(&mut r, &reached(&["bob"]), None, 0);
    let f = ack_due(&r, &"bob".into(), 1, Duration::from_millis(100)).expect("awaited");
    let a = on_failure(&mut r, &f, RETRYABLE, |_| Duration::from_millis(50), 100);
    assert!(matches!(
        a[0],
        Action::ScheduleRetry {
            due_ms: 150,
            retry: 1,
            ..
        }
    ));
    assert_eq!(r.status, MessageStatus::Retrying);
    assert!(retry_due(&mut r, &"bob".into()));
    let (a, _) = on_routed(&mut r, &reached(&["bob"]), Some(&"bob".into()), 150);
    assert!(matches!(a[0], Action::AwaitAck { attempt: 2, .. }));
    assert!(
        ack_due(&r, &"bob".into(), 1, Duration::ZERO).is_none(),
        "a stale deadline is ignored"
    );
    let f = ack_due(&r, &"bob".into(), 2, Duration::from_millis(100)).expect("awaited");
    let a = on_failure(&mut r, &f, RETRYABLE, |_| Duration::ZERO, 250);
    assert!(
        a.contains(&Action::Store {
            user: "bob".into(),
            redeliver: false
        }),
        "{a:?}"
    );
    assert_eq!(r.status, MessageStatus::AckTimeout);
    assert!(r.stored_offline && !r.in_flight());
    let a = on_delivered_from_store(&mut r, &"bob".into(), 300);
    assert!(matches!(a[0], Action::AwaitAck { attempt: 3, .. }));
    let a = on_ack(&mut r, &"bob".into(), 310).expect("awaited");
    assert_eq!(a, vec![Action::Unstore { user: "bob".into() }]);
    assert_eq!(r.status, MessageStatus::Acked);
    assert!(!r.stored_offline);
}

#[test]
fn offline_user_is_stored_at_once_and_a_lost_user_too() {
    let mut r = record(&["bob", "carol"]);
    let routed = Routed {
        reached: vec![("carol".into(), None)],
        offline: vec!["bob".into()],
        store_offline_now: true,
        ..Default::default()
    };
    let (a, failures) = on_routed(&mut r, &routed, None, 0);
    assert!(failures.is_empty());
    assert!(a.contains(&Action::Store {
        user: "bob".into(),
        redeliver: false
    }));
    let a = on_user_gone(&mut r, &"carol".into(), None, 10, "lost");
    assert!(
        a.contains(&Action::Store {
            user: "carol".into(),
            redeliver: true
        }),
        "{a:?}"
    );
    assert!(!r.in_flight());
    assert!(r
        .recipients
        .iter()
        .all(|d| d.state == DeliveryState::Stored));
}

#[test]
fn shutdown_stores_what_is_in_flight_and_manual_retry_goes_to_the_missed_only() {
    let mut r = record(&["bob", "carol"]);
    on_routed(&mut r, &reached(&["bob", "carol"]), None, 0);
    on_ack(&mut r, &"bob".into(), 5);
    let a = on_shutdown(&mut r);
    assert_eq!(
        a,
        vec![Action::Store {
            user: "carol".into(),
            redeliver: true
        }]
    );
    assert!(r.status.is_failure());
    let a = on_manual_retry(&mut r, 10).expect("a failure");
    assert_eq!(
        a,
        vec![Action::Resend {
            user: "carol".into()
        }]
    );
}

#[test]
fn not_storable_fails_and_expired_is_expired() {
    let mut r = record(&["bob"]);
    r.storable = false;
    on_routed(&mut r, &reached(&["bob"]), None, 0);
    r.expires_at_ms = Some(50);
    let f = ack_due(&r, &"bob".into(), 1, Duration::ZERO).expect("awaited");
    let a = on_failure(&mut r, &f, RETRYABLE, |_| Duration::ZERO, 100);
    assert!(!a.iter().any(|a| matches!(a, Action::Store { .. })));
    assert_eq!(r.status, MessageStatus::Expired);
    assert_eq!(
        r.recipient(&"bob".into()).map(|d| d.state),
        Some(DeliveryState::Failed)
    );
}
