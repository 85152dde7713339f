//! `Nightshift-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the
//! header Nightshift signs its own webhooks with (testpay, LMS enrolment requests).

use crate::ports::WebhookError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const HEADER: &str = "Nightshift-Signature";
/// How far a signature's timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks the signature header `name` of a request (testpay's or Stripe's) with [`verify`].
pub fn verify_header(
    secret: &[u8],
    headers: &http::HeaderMap,
    name: &str,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    let header = headers
        .get(name)
        .map(|v| v.to_str().map_err(|_| WebhookError::MalformedSignature))
        .transpose()?;
    verify(secret, header, body, now)
}

/// Checks a header value over the raw body, exactly as Stripe specifies for
/// `Stripe-Signature` (the same scheme): any `v1` may match (secret rotation), other schemes
/// are ignored, the timestamp must be within the tolerance, and the comparison is
/// constant-time.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookError::MalformedSignature)?;
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| WebhookError::MalformedSignature)?,
                )
            }
            "t" => return Err(WebhookError::MalformedSignature),
            // A value that is not hex can never match; it is no reason to refuse the rest.
            "v1" => candidates.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
    let expected = mac(secret, timestamp, body).finalize().into_bytes();
    // Check every candidate, so timing does not tell which one matched.
    let matched = candidates.iter().fold(0u8, |acc, c| {
        acc | c.as_slice().ct_eq(expected.as_slice()).unwrap_u8()
    });
    if matched == 0 {
        return Err(WebhookError::BadSignature);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn a_signed_body_verifies() {
        let header = sign(SECRET, 1_700_000_000, b"{\"a\":1}");
        assert_eq!(
            verify(SECRET, Some(&header), b"{\"a\":1}", 1_700_000_010),
            Ok(())
        );
    }

    #[test]
    fn a_known_vector_matches() {
        // HMAC-SHA256("whsec_test", "1700000000.hello"), computed independently with `openssl dgst -sha256 -hmac`.
        let header = sign(SECRET, 1_700_000_000, b"hello");
        assert_eq!(
            header,
            format!(
                "t=1700000000,v1={}",
                "457c4d31b232d95fcd50f1d95021aaaffddd859d0ee8a206675e84ccc977431d"
            )
        );
    }

    #[test]
    fn one_changed_byte_fails() {
        let header = sign(SECRET, 100, b"{\"amount\":4900}");
        assert_eq!(
            verify(SECRET, Some(&header), b"{\"amount\":4901}", 100),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_second_matching_v1_is_accepted() {
        let good = sign(SECRET, 100, b"x");
        let v1 = good.split("v1=").nth(1).unwrap();
        let header = format!("t=100,v1={},v1={v1}", "00".repeat(32));
        assert_eq!(verify(SECRET, Some(&header), b"x", 100), Ok(()));
    }

    #[test]
    fn stale_missing_and_malformed_headers_are_refused() {
        let header = sign(SECRET, 100, b"x");
        assert_eq!(
            verify(SECRET, Some(&header), b"x", 100 + TOLERANCE_SECONDS + 1),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(&header), b"x", 100 + TOLERANCE_SECONDS),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, None, b"x", 100),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            verify(SECRET, Some("t=abc,v1=00"), b"x", 100),
            Err(WebhookError::MalformedSignature)
        );
        // As Stripe's libraries: no `v1` at all is a signature that does not match.
        assert_eq!(
            verify(SECRET, Some("t=100"), b"x", 100),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some("garbage"), b"x", 100),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            verify(b"other", Some(&header), b"x", 100),
            Err(WebhookError::BadSignature)
        );
    }
}
