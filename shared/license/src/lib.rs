//! Nightshift licence keys: what a key holds, how it is written, and how any program checks
//! one offline with the store's public key alone.
//!
//! # Format, version 1
//!
//! A key is the Crockford base32 spelling (`0-9`, `A-Z` without `I`, `L`, `O`, `U`) of the
//! bytes below, in groups of five joined by dashes. Integers are big-endian.
//!
//! | bytes | field |
//! | ----- | ----- |
//! | 1 | format version: 1 |
//! | 4 | issued at, Unix seconds |
//! | 4 | expires at, Unix seconds; 0 means never |
//! | 4 | seats |
//! | 2 | order line (0 is the first line) |
//! | 10 | order id: the 20 hex digits after `ord_` |
//! | 8 | the first 8 bytes of SHA-256 of the buyer's email address, lower-cased |
//! | 1 | n, the length of the product's sku |
//! | n | the product's sku, UTF-8 |
//! | 64 | Ed25519 signature of `nightshift-license-v1` followed by every byte above |
//!
//! Readers ignore dashes, spaces and case, and read `O` as `0` and `I` or `L` as `1`, so a key
//! survives being retyped. Public and signing keys are written as 64 hex digits.

use ed25519_dalek::{Signature, Signer};
use sha2::{Digest, Sha256};
use std::fmt;

pub use ed25519_dalek::{self as ed25519, SigningKey, VerifyingKey};

/// What the signature covers before the payload: keeps these signatures useless elsewhere.
const CONTEXT: &[u8] = b"nightshift-license-v1";
const VERSION: u8 = 1;
/// version, issued, expires, seats, line, order id, email hash, sku length.
const FIXED: usize = 1 + 4 + 4 + 4 + 2 + 10 + 8 + 1;
const SIGNATURE: usize = 64;
const GROUP: usize = 5;
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What a licence key grants, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// The product's sku in the seller's store.
    pub product: String,
    /// The order it was bought in, `ord_` and 20 hex digits.
    pub order_id: String,
    /// Which line of that order (0 is the first).
    pub line: u16,
    pub issued_at: u32,
    pub expires_at: Option<u32>,
    pub seats: u32,
    /// See [`License::email_hash`].
    pub email_hash: [u8; 8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseError {
    /// Characters outside the key alphabet, or too few of them.
    Malformed,
    /// A format this code does not know (a newer Nightshift).
    UnknownVersion(u8),
    /// The signature does not match: the key was changed, or signed by another store.
    BadSignature,
    /// The licence cannot be written: its sku or order id does not fit the format.
    Unencodable(&'static str),
    /// A public or signing key that is not 64 hex digits (or not a valid point).
    BadKey,
}

impl fmt::Display for LicenseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LicenseError::Malformed => f.write_str("this is not a licence key"),
            LicenseError::UnknownVersion(v) => write!(f, "unknown licence format version {v}"),
            LicenseError::BadSignature => f.write_str("the licence key's signature does not match"),
            LicenseError::Unencodable(why) => write!(f, "cannot encode the licence: {why}"),
            LicenseError::BadKey => f.write_str("the key is not 64 hex digits of an Ed25519 key"),
        }
    }
}

impl std::error::Error for LicenseError {}

impl License {
    /// The first 8 bytes of SHA-256 of the address, lower-cased and trimmed: enough to tell
    /// whether a key was bought with an address, without writing the address into the key.
    pub fn email_hash(email: &str) -> [u8; 8] {
        let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let mut out = [0; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }

    /// Whether the key was bought with this email address.
    pub fn is_for(&self, email: &str) -> bool {
        License::email_hash(email) == self.email_hash
    }

    /// Whether the licence has run out at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= u64::from(at))
    }

    /// Names the licence on a revocation list: `ord_…/line`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.order_id, self.line)
    }

    fn payload(&self) -> Result<Vec<u8>, LicenseError> {
        let sku = self.product.as_bytes();
        let sku_len =
            u8::try_from(sku.len()).map_err(|_| LicenseError::Unencodable("sku too long"))?;
        let order = order_bytes(&self.order_id).ok_or(LicenseError::Unencodable(
            "order id is not ord_ and 20 hex digits",
        ))?;
        let mut out = Vec::with_capacity(FIXED + sku.len() + SIGNATURE);
        out.push(VERSION);
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.seats.to_be_bytes());
        out.extend_from_slice(&self.line.to_be_bytes());
        out.extend_from_slice(&order);
        out.extend_from_slice(&self.email_hash);
        out.push(sku_len);
        out.extend_from_slice(sku);
        Ok(out)
    }

    fn from_payload(bytes: &[u8]) -> Result<License, LicenseError> {
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let u32_at =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let sku_len = usize::from(bytes[FIXED - 1]);
        if bytes.len() != FIXED + sku_len {
            return Err(LicenseError::Malformed);
        }
        let product = std::str::from_utf8(&bytes[FIXED..])
            .map_err(|_| LicenseError::Malformed)?
            .to_owned();
        let order_id = format!("ord_{}", to_hex(&bytes[15..25]));
        let mut email_hash = [0; 8];
        email_hash.copy_from_slice(&bytes[25..33]);
        Ok(License {
            product,
            order_id,
            line: u16_at(13),
            issued_at: u32_at(1),
            expires_at: Some(u32_at(5)).filter(|&at| at != 0),
            seats: u32_at(9),
            email_hash,
        })
    }
}

/// Signs a licence into a key.
pub fn sign(signing_key: &SigningKey, license: &License) -> Result<String, LicenseError> {
    let mut bytes = license.payload()?;
    let signature = signing_key.sign(&[CONTEXT, &bytes].concat());
    bytes.extend_from_slice(&signature.to_bytes());
    Ok(encode(&bytes))
}

/// Checks a key against the store's public key and reads what it grants. Any changed
/// character fails. Expiry is the caller's to judge (see [`License::is_expired`]).
pub fn verify(public_key: &VerifyingKey, key: &str) -> Result<License, LicenseError> {
    let bytes = decode(key).ok_or(LicenseError::Malformed)?;
    if bytes.len() < FIXED + SIGNATURE {
        return Err(LicenseError::Malformed);
    }
    if bytes[0] != VERSION {
        return Err(LicenseError::UnknownVersion(bytes[0]));
    }
    let (payload, signature) = bytes.split_at(bytes.len() - SIGNATURE);
    let signature = Signature::from_slice(signature).map_err(|_| LicenseError::Malformed)?;
    public_key
        .verify_strict(&[CONTEXT, payload].concat(), &signature)
        .map_err(|_| LicenseError::BadSignature)?;
    License::from_payload(payload)
}

/// What a revocation list's signature covers: `nightshift-revocations-v1`, then the time it
/// was issued (Unix seconds, decimal), then each revoked licence id (`ord_…/line`), each
/// followed by a newline.
pub fn revocation_message(issued_at: u64, ids: &[String]) -> Vec<u8> {
    let mut message = format!("nightshift-revocations-v1\n{issued_at}\n");
    for id in ids {
        message.push_str(id);
        message.push('\n');
    }
    message.into_bytes()
}

/// Signs a revocation list; the signature is 128 hex digits.
pub fn sign_revocations(signing_key: &SigningKey, issued_at: u64, ids: &[String]) -> String {
    to_hex(
        &signing_key
            .sign(&revocation_message(issued_at, ids))
            .to_bytes(),
    )
}

/// Checks a revocation list's signature, so a program can trust a list it downloaded.
pub fn verify_revocations(
    public_key: &VerifyingKey,
    issued_at: u64,
    ids: &[String],
    signature_hex: &str,
) -> Result<(), LicenseError> {
    let hex = signature_hex.trim();
    let bytes: Option<Vec<u8>> = (hex.len() == 2 * SIGNATURE)
        .then(|| {
            hex.as_bytes()
                .chunks(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
                .collect()
        })
        .flatten();
    let signature = bytes
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(LicenseError::Malformed)?;
    public_key
        .verify_strict(&revocation_message(issued_at, ids), &signature)
        .map_err(|_| LicenseError::BadSignature)
}

/// Reads a public key written as 64 hex digits.
pub fn public_key_from_hex(hex: &str) -> Result<VerifyingKey, LicenseError> {
    let bytes = from_hex_32(hex).ok_or(LicenseError::BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| LicenseError::BadKey)
}

/// Reads a signing key (its 32-byte seed) written as 64 hex digits.
pub fn signing_key_from_hex(hex: &str) -> Result<SigningKey, LicenseError> {
    from_hex_32(hex)
        .map(|seed| SigningKey::from_bytes(&seed))
        .ok_or(LicenseError::BadKey)
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex_32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

fn order_bytes(order_id: &str) -> Option<[u8; 10]> {
    let hex = order_id.strip_prefix("ord_")?.as_bytes();
    if hex.len() != 20 {
        return None;
    }
    let mut out = [0; 10];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Crockford base32 without padding, in dash-joined groups.
fn encode(bytes: &[u8]) -> String {
    let mut chars = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            chars.push(CROCKFORD[((buffer >> bits) & 31) as usize]);
        }
    }
    if bits > 0 {
        chars.push(CROCKFORD[((buffer << (5 - bits)) & 31) as usize]);
    }
    chars
        .chunks(GROUP)
        .map(|g| std::str::from_utf8(g).expect("the alphabet is ASCII"))
        .collect::<Vec<_>>()
        .join("-")
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let c = match c.to_ascii_uppercase() {
            b'-' | b' ' | b'\t' | b'\n' | b'\r' => continue,
            b'O' => b'0',
            b'I' | b'L' => b'1',
            c => c,
        };
        let value = CROCKFORD.iter().position(|&x| x == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    // Leftover bits are the encoder's zero padding; anything else means a mistyped tail.
    (buffer & ((1 << bits) - 1) == 0 && bits < 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair() -> (SigningKey, VerifyingKey) {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let public = signing.verifying_key();
        (signing, public)
    }

    fn license() -> License {
        License {
            product: "rust-course".into(),
            order_id: "ord_0123456789abcdef0123".into(),
            line: 2,
            issued_at: 1_790_000_000,
            expires_at: Some(1_800_000_000),
            seats: 3,
            email_hash: License::email_hash("Ann@Example.com"),
        }
    }

    #[test]
    fn a_signed_key_verifies_and_reads_back_what_was_signed() {
        let (signing, public) = key_pair();
        let key = sign(&signing, &license()).unwrap();
        assert!(key
            .split('-')
            .all(|g| g.len() <= GROUP && g.bytes().all(|b| CROCKFORD.contains(&b))));
        assert_eq!(verify(&public, &key), Ok(license()));
        assert!(verify(&public, &key).unwrap().is_for("ann@example.com "));
    }

    #[test]
    fn every_single_character_change_fails() {
        let (signing, public) = key_pair();
        let key = sign(&signing, &license()).unwrap();
        for (i, c) in key.char_indices().filter(|(_, c)| *c != '-') {
            let at = CROCKFORD.iter().position(|&x| x as char == c).unwrap();
            let other = CROCKFORD[(at + 1 + i % 31) % 32] as char;
            let mut changed = key.clone();
            changed.replace_range(i..i + 1, &other.to_string());
            assert!(verify(&public, &changed).is_err(), "{changed} verified");
        }
    }

    #[test]
    fn a_key_from_another_store_fails() {
        let (signing, _) = key_pair();
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        let key = sign(&signing, &license()).unwrap();
        assert_eq!(verify(&other, &key), Err(LicenseError::BadSignature));
    }

    #[test]
    fn retyped_keys_still_verify() {
        let (signing, public) = key_pair();
        let key = sign(&signing, &license()).unwrap();
        let retyped = key
            .replace('-', " ")
            .to_lowercase()
            .replace('0', "o")
            .replace('1', "l");
        assert_eq!(verify(&public, &retyped), Ok(license()));
    }

    #[test]
    fn a_licence_without_expiry_never_runs_out() {
        let mut l = license();
        assert!(!l.is_expired(1_799_999_999));
        assert!(l.is_expired(1_800_000_000));
        l.expires_at = None;
        assert!(!l.is_expired(u64::MAX));
        let (signing, public) = key_pair();
        assert_eq!(verify(&public, &sign(&signing, &l).unwrap()), Ok(l));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let (_, public) = key_pair();
        for text in ["", "hello world", "UUUU", "0000-0000", &"Z".repeat(400)] {
            assert!(verify(&public, text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_revocation_list_verifies_only_as_signed() {
        let (signing, public) = key_pair();
        let ids = vec!["ord_0123456789abcdef0123/0".to_owned()];
        let signature = sign_revocations(&signing, 1_800_000_000, &ids);
        assert_eq!(
            verify_revocations(&public, 1_800_000_000, &ids, &signature),
            Ok(())
        );
        assert!(verify_revocations(&public, 1_800_000_001, &ids, &signature).is_err());
        assert!(verify_revocations(&public, 1_800_000_000, &[], &signature).is_err());
        assert!(verify_revocations(&public, 1_800_000_000, &ids, "00").is_err());
    }

    #[test]
    fn keys_read_from_hex() {
        let (signing, public) = key_pair();
        assert_eq!(public_key_from_hex(&to_hex(public.as_bytes())), Ok(public));
        let again = signing_key_from_hex(&to_hex(&signing.to_bytes())).unwrap();
        assert_eq!(again.verifying_key(), public);
        assert_eq!(public_key_from_hex("abc"), Err(LicenseError::BadKey));
    }
}
