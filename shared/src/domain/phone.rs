//! A buyer's mobile number for text messages, and their consent to get them.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("enter the number in international form: + then the country code and number, such as +6281234567890")]
pub struct PhoneError;

/// A phone number in E.164 form: `+`, a country code that does not start with 0, and at most
/// 15 digits in all. Spaces, dots, dashes and brackets typed between digits are dropped.
/// Its `Debug` shows only the first three and last two digits.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(typed: &str) -> Result<Phone, PhoneError> {
        let typed = typed.trim();
        let rest = typed.strip_prefix('+').ok_or(PhoneError)?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' => {}
                _ => return Err(PhoneError),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneError);
        }
        Ok(Phone(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, tail) = (&self.0[..3], &self.0[self.0.len() - 2..]);
        write!(f, "Phone({head}***{tail})")
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Phone::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

/// The buyer's number and when they agreed, at checkout, to get texts about their order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextConsent {
    pub phone: Phone,
    /// Unix seconds.
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn international_numbers_are_kept_in_e164_form() {
        assert_eq!(
            Phone::parse("+62 812-3456-7890").unwrap().as_str(),
            "+6281234567890"
        );
        assert_eq!(
            Phone::parse(" +66 (2) 123 4567 ").unwrap().as_str(),
            "+6621234567"
        );
        assert_eq!(
            Phone::parse("+821012345678").unwrap().as_str(),
            "+821012345678"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "+",
            "0812345678",
            "081 234 5678",
            "+0812345678",
            "+1234567",
            "+1234567890123456",
            "+62 812 abc",
            "+62812345678<script>",
            "++6281234567",
            "+62\n81234567",
        ] {
            assert_eq!(Phone::parse(bad), Err(PhoneError), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_middle() {
        let phone = Phone::parse("+6281234567890").unwrap();
        assert_eq!(format!("{phone:?}"), "Phone(+62***90)");
    }

    proptest! {
        #[test]
        fn a_parsed_number_is_plus_and_8_to_15_digits(s in "\\PC{0,24}") {
            if let Ok(p) = Phone::parse(&s) {
                let digits = &p.as_str()[1..];
                prop_assert!(p.as_str().starts_with('+'));
                prop_assert!((8..=15).contains(&digits.len()));
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
            }
        }
    }
}
