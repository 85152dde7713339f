//! Golden vectors: `Stripe-Signature` headers made by Stripe's own Node library
//! (`tests/stripe-vectors/make-vectors.js`), and its verdict on each, against our verifier.

use serde::Deserialize;
use shared::adapters::stripe::verify_signature;
use shared::ports::WebhookError;

#[derive(Deserialize)]
struct Vectors {
    now: i64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    payload: String,
    secret: String,
    header: String,
    expected: String,
}

#[test]
fn our_verifier_agrees_with_stripes_library_on_every_vector() {
    let text =
        std::fs::read_to_string(tests::repo_root().join("tests/fixtures/stripe_signatures.json"))
            .unwrap();
    let vectors: Vectors = serde_json::from_str(&text).unwrap();
    assert!(vectors.cases.len() >= 20);
    for case in &vectors.cases {
        let ours = verify_signature(
            case.secret.as_bytes(),
            Some(&case.header),
            case.payload.as_bytes(),
            vectors.now,
        );
        let expected = match case.expected.as_str() {
            "ok" => Ok(()),
            "stale" => Err(WebhookError::Stale),
            "bad_signature" => Err(WebhookError::BadSignature),
            "malformed" => Err(WebhookError::MalformedSignature),
            other => panic!("unknown verdict {other}"),
        };
        assert_eq!(ours, expected, "{}: {}", case.name, case.header);
    }
}

#[test]
fn a_vector_verifies_up_to_the_tolerance_edge_and_not_a_second_later() {
    let text =
        std::fs::read_to_string(tests::repo_root().join("tests/fixtures/stripe_signatures.json"))
            .unwrap();
    let vectors: Vectors = serde_json::from_str(&text).unwrap();
    let case = vectors
        .cases
        .iter()
        .find(|c| c.name == "signed by stripe")
        .unwrap();
    let at = |now| {
        verify_signature(
            case.secret.as_bytes(),
            Some(&case.header),
            case.payload.as_bytes(),
            now,
        )
    };
    assert_eq!(at(vectors.now + 300), Ok(()));
    assert_eq!(at(vectors.now + 301), Err(WebhookError::Stale));
}
