//! Parsed identifiers and buyer input: once a value has one of these types it is valid.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("a sku is 1 to 64 characters of a-z, 0-9, `-` and `_`")]
    Sku,
    #[error("`{0}` is not an email address we can deliver to")]
    Email(String),
    #[error("a name is 1 to 100 characters without control characters")]
    Name,
    #[error("quantity must be a whole number from 1 to {max}")]
    Quantity { max: u32 },
    #[error("not an order id")]
    OrderId,
    #[error("not an order token")]
    Token,
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// A product's stock-keeping unit, as written in store.toml.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);
string_newtype!(Sku);

impl Sku {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        ok.then(|| Sku(s.to_owned())).ok_or(ParseError::Sku)
    }
}

/// A buyer's email address. The domain is lower-cased; the address never holds whitespace,
/// control characters or angle brackets, so it cannot inject mail headers. Its `Debug` is
/// masked (`a***@example.com`), so logs never carry the address.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let bad = || ParseError::Email(s.chars().take(80).collect());
        if s.len() > 254
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
        {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !labels_ok {
            return Err(bad());
        }
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    /// SHA-256 of the address, in hex: how lists of addresses (those who unsubscribed) keep
    /// it without keeping the address.
    pub fn digest(&self) -> String {
        Sha256::digest(self.0.to_lowercase().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A form safe for logs: the first character of the local part and the domain.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        format!("{}***@{domain}", local.chars().next().unwrap_or('*'))
    }
}

/// The buyer's name as typed: any text, escaped wherever it is shown. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BuyerName(String);
string_newtype!(BuyerName);

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl fmt::Debug for BuyerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BuyerName(***)")
    }
}

impl BuyerName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let ok = !s.is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control);
        ok.then(|| BuyerName(s.to_owned())).ok_or(ParseError::Name)
    }
}

/// How many units of one product a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 100;

    pub fn new(n: u32) -> Result<Self, ParseError> {
        (1..=Self::MAX)
            .contains(&n)
            .then_some(Quantity(n))
            .ok_or(ParseError::Quantity { max: Self::MAX })
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| ParseError::Quantity { max: Self::MAX })?;
        Quantity::new(n)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = ParseError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Quantity::new(n)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// An order's public id: `ord_` and 20 lower-case hex digits (80 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);
string_newtype!(OrderId);

impl OrderId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let hex = s.strip_prefix("ord_").ok_or(ParseError::OrderId)?;
        let ok = hex.len() == 20
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| OrderId(s.to_owned())).ok_or(ParseError::OrderId)
    }

    pub fn from_random(bytes: [u8; 10]) -> Self {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        OrderId(format!("ord_{hex}"))
    }

    /// The reference a bank transfer for this order carries: the prefix, then the id's 80
    /// bits in Crockford base32, in groups of four (`NS-7K2Q-9XDM-A1B2-C3D4`). Unique per
    /// order and readable back into the id.
    pub fn transfer_reference(&self, prefix: &str) -> String {
        let hex = &self.0["ord_".len()..];
        let mut bits: u128 = 0;
        for pair in hex.as_bytes().chunks(2) {
            let byte =
                u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("0"), 16).unwrap_or(0);
            bits = (bits << 8) | u128::from(byte);
        }
        let chars: Vec<u8> = (0..16)
            .rev()
            .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize])
            .collect();
        let groups: Vec<&str> = chars
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!("{prefix}-{}", groups.join("-"))
    }

    /// Reads an order id back from a transfer reference as a buyer may have typed it:
    /// any case, with or without dashes and spaces, `O` for `0` and `I` or `L` for `1`.
    pub fn from_transfer_reference(reference: &str) -> Option<OrderId> {
        let cleaned: Vec<u8> = reference
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' '))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        let code = cleaned.get(cleaned.len().checked_sub(16)?..)?;
        let mut bits: u128 = 0;
        for &c in code {
            let c = match c {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c => c,
            };
            let value = CROCKFORD.iter().position(|&x| x == c)?;
            bits = (bits << 5) | value as u128;
        }
        let bytes: [u8; 10] = std::array::from_fn(|i| (bits >> ((9 - i) * 8)) as u8);
        Some(OrderId::from_random(bytes))
    }
}

/// Crockford's base32: no I, L, O or U, so references survive being read aloud and retyped.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// 128 random bits in URL-safe base64 (22 characters), as order and download links carry.
pub(super) fn random_part_ok(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The secret in an order page's URL: the order's id (its 20 hex digits) followed by 128
/// random bits in URL-safe base64, 42 characters in all. The id lets the page read the order
/// directly; the order keeps only a digest of the whole token ([`TokenCheck`]), so the URL
/// cannot be rebuilt from the store.
#[derive(Clone, PartialEq, Eq)]
pub struct OrderToken(String);

/// Hex digits of an order id inside an [`OrderToken`].
const TOKEN_ID_DIGITS: usize = 20;

impl OrderToken {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = s.len() == TOKEN_ID_DIGITS + 22
            && s.is_char_boundary(TOKEN_ID_DIGITS)
            && s[..TOKEN_ID_DIGITS]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && random_part_ok(&s[TOKEN_ID_DIGITS..]);
        ok.then(|| OrderToken(s.to_owned()))
            .ok_or(ParseError::Token)
    }

    /// The token of `order` with the secret `random`.
    pub fn new(order: &OrderId, random: [u8; 16]) -> Self {
        OrderToken(format!(
            "{}{}",
            &order.as_str()["ord_".len()..],
            base64url(&random)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The order this token claims to open (the claim holds only if the order's
    /// [`TokenCheck`] matches).
    pub fn order_id(&self) -> OrderId {
        OrderId(format!("ord_{}", &self.0[..TOKEN_ID_DIGITS]))
    }

    /// What the order keeps to recognise this token.
    pub fn check(&self) -> TokenCheck {
        TokenCheck::of(&self.0)
    }
}

impl fmt::Debug for OrderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderToken(***)")
    }
}

/// What an order keeps of its page token: the first 128 bits of the token's SHA-256, in
/// URL-safe base64 (short, because it is written with every change of the order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenCheck(String);

impl TokenCheck {
    /// The check of a secret string: its SHA-256's first 128 bits.
    pub(super) fn of(secret: &str) -> TokenCheck {
        TokenCheck(base64url(&Sha256::digest(secret.as_bytes())[..16]))
    }

    /// Whether `secret` is the string this check was made from, in constant time.
    pub(super) fn matches_str(&self, secret: &str) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), TokenCheck::of(secret).0.as_bytes()).into()
    }

    /// Whether `token` is the one this check was made from, compared in constant time.
    pub fn matches(&self, token: &OrderToken) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), token.check().0.as_bytes()).into()
    }
}

/// The secret in a download link's URL: 128 random bits, URL-safe base64 (22 characters);
/// only its SHA-256 hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadToken(String);

impl DownloadToken {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        random_part_ok(s)
            .then(|| DownloadToken(s.to_owned()))
            .ok_or(ParseError::Token)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        DownloadToken(base64url(&bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(
            Sha256::digest(self.0.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl fmt::Debug for DownloadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DownloadToken(***)")
    }
}

/// Hex SHA-256 of a download token: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unpadded URL-safe base64, small enough to keep the domain free of an encoding crate.
pub(super) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_types_redact_themselves_in_debug() {
        let email = Email::parse("ann.lee@Example.com").unwrap();
        assert_eq!(format!("{email:?}"), "Email(a***@example.com)");
        let name = BuyerName::parse("Ann Lee").unwrap();
        assert!(!format!("{name:?}").contains("Ann"));
        let address = crate::domain::ShippingAddress {
            name: "Ann Lee".into(),
            line1: "Hauptstr. 1".into(),
            line2: String::new(),
            postal_code: "10115".into(),
            city: "Berlin".into(),
            region: String::new(),
            country: "DE".into(),
        };
        let shown = format!("{address:?}");
        assert!(
            !shown.contains("Ann")
                && !shown.contains("Haupt")
                && !shown.contains("10115")
                && shown.contains("DE"),
            "{shown}"
        );
    }
    use proptest::prelude::*;

    #[test]
    fn emails_are_parsed_and_lower_cased_in_the_domain() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "Ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@example.com\r\nBcc: x@evil.com",
            "<ann@example.com>",
            "ann@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn masked_email_hides_the_local_part() {
        assert_eq!(
            Email::parse("annabel@example.com").unwrap().masked(),
            "a***@example.com"
        );
    }

    #[test]
    fn skus_names_and_quantities_have_limits() {
        assert!(Sku::parse("rust-course_2").is_ok());
        assert!(Sku::parse("Rust").is_err());
        assert!(Sku::parse("").is_err());
        assert!(BuyerName::parse("  ").is_err());
        assert!(BuyerName::parse("Ann\u{0}").is_err());
        assert_eq!(
            BuyerName::parse("<script>alert(1)</script>")
                .unwrap()
                .as_str(),
            "<script>alert(1)</script>"
        );
        assert!(Quantity::parse("0").is_err());
        assert!(Quantity::parse("101").is_err());
        assert!(Quantity::parse("-1").is_err());
        assert_eq!(Quantity::parse("3").unwrap().get(), 3);
    }

    #[test]
    fn order_tokens_carry_their_order_and_are_recognised_by_their_check() {
        let id = OrderId::from_random([7; 10]);
        let t = OrderToken::new(&id, [0xff; 16]);
        assert_eq!(t.as_str().len(), 42);
        assert_eq!(OrderToken::parse(t.as_str()).unwrap(), t);
        assert_eq!(t.order_id(), id);
        assert!(t.check().matches(&t));
        assert!(!t.check().matches(&OrderToken::new(&id, [0xfe; 16])));
        assert_eq!(t.check().0.len(), 22);
        assert!(!format!("{t:?}").contains(t.as_str()));
        for bad in [
            "",
            &t.as_str()[1..],
            &t.as_str().replacen('0', "A", 1),
            &format!("{}=", &t.as_str()[..41]),
            "ord_07070707070707070707AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(OrderToken::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn download_tokens_are_22_url_safe_characters_and_hash_to_hex() {
        let t = DownloadToken::from_bytes([0xff; 16]);
        assert_eq!(t.as_str().len(), 22);
        assert!(DownloadToken::parse(t.as_str()).is_ok());
        assert_eq!(t.hash().as_str().len(), 64);
        assert!(!format!("{t:?}").contains(t.as_str()));
    }

    proptest! {
        #[test]
        fn every_random_token_parses(id in any::<[u8; 10]>(), bytes in any::<[u8; 16]>()) {
            let id = OrderId::from_random(id);
            let t = OrderToken::new(&id, bytes);
            prop_assert_eq!(OrderToken::parse(t.as_str()).map(|t| t.order_id()), Ok(id));
        }

        #[test]
        fn distinct_bytes_give_distinct_tokens(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            prop_assume!(a != b);
            let id = OrderId::from_random([1; 10]);
            let (ta, tb) = (OrderToken::new(&id, a), OrderToken::new(&id, b));
            prop_assert_ne!(ta.as_str(), tb.as_str());
        }

        #[test]
        fn order_ids_round_trip(bytes in any::<[u8; 10]>()) {
            let id = OrderId::from_random(bytes);
            prop_assert_eq!(OrderId::parse(id.as_str()).unwrap(), id.clone());
            let reference = id.transfer_reference("NS");
            prop_assert_eq!(reference.len(), "NS-".len() + 19);
            prop_assert_eq!(OrderId::from_transfer_reference(&reference), Some(id.clone()));
            prop_assert_eq!(
                OrderId::from_transfer_reference(&reference.to_lowercase().replace('-', " ")),
                Some(id)
            );
        }
    }
}
