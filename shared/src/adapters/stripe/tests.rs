//! Stripe's signatures and events, checked offline.

use super::*;
use crate::signature::sign;

const SECRET: &[u8] = b"whsec_test_secret";
const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;

#[test]
fn a_signature_verifies_within_the_tolerance_and_not_beyond() {
    let header = sign(SECRET, 1_000, BODY);
    assert_eq!(verify_signature(SECRET, Some(&header), BODY, 1_000), Ok(()));
    assert_eq!(verify_signature(SECRET, Some(&header), BODY, 1_300), Ok(()));
    assert_eq!(
        verify_signature(SECRET, Some(&header), BODY, 1_301),
        Err(WebhookError::Stale)
    );
    assert_eq!(verify_signature(SECRET, Some(&header), BODY, 700), Ok(()));
    assert_eq!(
        verify_signature(SECRET, Some(&header), BODY, 699),
        Err(WebhookError::Stale)
    );
}

#[test]
fn any_matching_v1_is_enough_and_other_schemes_are_ignored() {
    let good = sign(SECRET, 1_000, BODY);
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let header = format!("t=1000,v1={},v0=abc,v1={good_v1}", "0".repeat(64));
    assert_eq!(verify_signature(SECRET, Some(&header), BODY, 1_000), Ok(()));
    let only_old = format!("t=1000,v1={}", "0".repeat(64));
    assert_eq!(
        verify_signature(SECRET, Some(&only_old), BODY, 1_000),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn one_changed_byte_fails() {
    let header = sign(SECRET, 1_000, BODY);
    let mut body = BODY.to_vec();
    body[10] ^= 1;
    assert_eq!(
        verify_signature(SECRET, Some(&header), &body, 1_000),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_signature(b"whsec_other", Some(&header), BODY, 1_000),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn missing_or_malformed_headers_are_refused() {
    for (header, error) in [
        (None, WebhookError::MissingSignature),
        (Some(""), WebhookError::MalformedSignature),
        (Some("v1=abcd"), WebhookError::MalformedSignature),
        (Some("t=1000"), WebhookError::BadSignature),
        (Some("t=soon,v1=abcd"), WebhookError::MalformedSignature),
        (
            Some("t=1000,t=1001,v1=abcd"),
            WebhookError::MalformedSignature,
        ),
        (Some("garbage"), WebhookError::MalformedSignature),
        (Some("t=1000,v1=zz"), WebhookError::BadSignature),
    ] {
        assert_eq!(
            verify_signature(SECRET, header, BODY, 1_000),
            Err(error),
            "{header:?}"
        );
    }
}

fn event(kind: &str, object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "evt_123", "object": "event", "type": kind, "data": { "object": object }
    }))
    .unwrap()
}

fn session(payment_status: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "cs_test_1", "object": "checkout.session",
        "client_reference_id": "ord_00112233445566778899",
        "metadata": { "order_id": "ord_00112233445566778899" },
        "amount_total": 4900, "currency": "eur",
        "payment_status": payment_status, "status": "complete"
    })
}

#[test]
fn events_map_to_one_id_per_session_and_fact() {
    let paid = parse_event(&event("checkout.session.completed", session("paid")))
        .unwrap()
        .unwrap();
    assert_eq!(paid.event_id, "cs_test_1:paid");
    assert_eq!(paid.order_id.as_str(), "ord_00112233445566778899");
    let eur = Currency::parse("EUR").unwrap();
    assert_eq!(
        paid.outcome,
        PaymentOutcome::Approved {
            amount: Money::from_minor(4900, eur)
        }
    );
    let later = parse_event(&event(
        "checkout.session.async_payment_succeeded",
        session("paid"),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(later.event_id, paid.event_id);
    let waiting = parse_event(&event("checkout.session.completed", session("unpaid")))
        .unwrap()
        .unwrap();
    assert_eq!(waiting.outcome, PaymentOutcome::Processing);
    let failed = parse_event(&event(
        "checkout.session.async_payment_failed",
        session("unpaid"),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(failed.event_id, "cs_test_1:failed");
    assert!(matches!(failed.outcome, PaymentOutcome::Declined { .. }));
    assert_eq!(
        parse_event(&event("customer.created", serde_json::json!({}))).unwrap(),
        None
    );
    let refund = parse_event(&event(
        "charge.refunded",
        serde_json::json!({ "id": "ch_1", "amount_refunded": 1000, "currency": "eur",
            "metadata": { "order_id": "ord_00112233445566778899" } }),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        refund.outcome,
        PaymentOutcome::Refunded {
            total: Money::from_minor(1000, eur)
        }
    );
}

#[test]
fn a_session_nightshift_did_not_create_changes_nothing() {
    let mut foreign = session("paid");
    foreign["client_reference_id"] = serde_json::Value::Null;
    foreign["metadata"] = serde_json::json!({});
    assert_eq!(
        parse_event(&event("checkout.session.completed", foreign)).unwrap(),
        None
    );
}
