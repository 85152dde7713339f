//! Money as integer minor units with an ISO 4217 currency; never floating point.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code that Nightshift knows the minor unit of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// Currencies with their minor-unit exponent and display symbol (when one is unambiguous).
const CURRENCIES: &[(&str, u32, Option<&str>)] = &[
    ("AUD", 2, Some("A$")),
    ("BGN", 2, None),
    ("BRL", 2, Some("R$")),
    ("BHD", 3, None),
    ("CAD", 2, Some("CA$")),
    ("CHF", 2, None),
    ("CNY", 2, None),
    ("CZK", 2, None),
    ("DKK", 2, None),
    ("EUR", 2, Some("€")),
    ("GBP", 2, Some("£")),
    ("HKD", 2, None),
    ("HUF", 2, None),
    ("IDR", 2, None),
    ("ILS", 2, Some("₪")),
    ("INR", 2, Some("₹")),
    ("ISK", 0, None),
    ("JPY", 0, Some("¥")),
    ("KRW", 0, Some("₩")),
    ("KWD", 3, None),
    ("MXN", 2, None),
    ("MYR", 2, None),
    ("NOK", 2, None),
    ("NZD", 2, Some("NZ$")),
    ("PHP", 2, None),
    ("PLN", 2, None),
    ("RON", 2, None),
    ("SEK", 2, None),
    ("SGD", 2, None),
    ("THB", 2, None),
    ("TRY", 2, None),
    ("USD", 2, Some("$")),
    ("ZAR", 2, None),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a supported ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("`{0}` is not an amount: write it as a string such as \"49.00\"")]
    NotAnAmount(String),
    #[error("`{amount}` has more than {exponent} decimal places for {currency}")]
    TooPrecise {
        amount: String,
        exponent: u32,
        currency: Currency,
    },
    #[error("amounts may not be negative")]
    Negative,
    #[error("the amount is too large")]
    Overflow,
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(c, _, _)| {
                let b = c.as_bytes();
                Currency([b[0], b[1], b[2]])
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    pub fn code(&self) -> &str {
        // Only ASCII codes from the table above are ever constructed.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    fn entry(&self) -> &'static (&'static str, u32, Option<&'static str>) {
        CURRENCIES
            .iter()
            .find(|(c, _, _)| c.as_bytes() == self.0)
            .unwrap_or(&("XXX", 2, None))
    }

    /// The sign written before amounts (`€`), where one is unambiguous.
    pub fn symbol(&self) -> Option<&'static str> {
        self.entry().2
    }

    /// How many digits follow the decimal point (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u32 {
        self.entry().1
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.code().to_owned()
    }
}

/// An amount in a currency's minor units (cents for EUR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Parses a decimal amount such as `"49.00"` or `"49"` in the given currency.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let text = amount.trim();
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(frac)) {
            return Err(MoneyError::NotAnAmount(amount.to_owned()));
        }
        let exponent = currency.exponent();
        if frac.len() as u32 > exponent {
            return Err(MoneyError::TooPrecise {
                amount: amount.to_owned(),
                exponent,
                currency,
            });
        }
        let scale = 10_i64.pow(exponent);
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let mut frac_minor: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_minor += i64::from(b - b'0') * 10_i64.pow(exponent - 1 - i as u32);
        }
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(frac_minor))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    pub fn times(self, quantity: u32) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    /// The plain decimal amount, e.g. `49.00`, without currency.
    pub fn decimal(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10_u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exponent as usize
        )
    }
}

impl fmt::Display for Money {
    /// `€49.00`, `$5.00`, or `49.00 CHF` where no symbol is unambiguous.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.currency.entry().2 {
            Some(symbol) if self.minor >= 0 => write!(f, "{symbol}{}", self.decimal()),
            _ => write!(f, "{} {}", self.decimal(), self.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn parses_decimal_amounts_into_minor_units() {
        assert_eq!(Money::parse("49.00", eur()).unwrap().minor(), 4900);
        assert_eq!(Money::parse("49", eur()).unwrap().minor(), 4900);
        assert_eq!(Money::parse("0.5", eur()).unwrap().minor(), 50);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse("1200", jpy).unwrap().minor(), 1200);
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::parse("1.005", kwd).unwrap().minor(), 1005);
    }

    #[test]
    fn refuses_amounts_that_are_not_exact() {
        assert!(matches!(
            Money::parse("1.999", eur()),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse("-1", eur()),
            Err(MoneyError::Negative)
        ));
        assert!(matches!(
            Money::parse("1e3", eur()),
            Err(MoneyError::NotAnAmount(_))
        ));
        assert!(matches!(
            Money::parse("", eur()),
            Err(MoneyError::NotAnAmount(_))
        ));
        assert!(matches!(
            Money::parse("1.", eur()),
            Err(MoneyError::NotAnAmount(_))
        ));
        assert!(Money::parse("1.5", Currency::parse("JPY").unwrap()).is_err());
    }

    #[test]
    fn formats_with_symbol_or_code() {
        assert_eq!(Money::from_minor(4900, eur()).to_string(), "€49.00");
        assert_eq!(Money::from_minor(5, eur()).to_string(), "€0.05");
        let chf = Currency::parse("CHF").unwrap();
        assert_eq!(Money::from_minor(1050, chf).to_string(), "10.50 CHF");
        assert_eq!(
            Money::from_minor(1200, Currency::parse("JPY").unwrap()).to_string(),
            "¥1200"
        );
    }

    #[test]
    fn refuses_unknown_currencies_and_mixing_currencies() {
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("eur").is_err());
        let usd = Currency::parse("USD").unwrap();
        assert!(Money::zero(eur()).checked_add(Money::zero(usd)).is_err());
    }

    proptest! {
        #[test]
        fn decimal_text_round_trips(minor in 0i64..1_000_000_000_000) {
            let m = Money::from_minor(minor, eur());
            prop_assert_eq!(Money::parse(&m.decimal(), eur()).unwrap(), m);
        }

        #[test]
        fn multiplication_matches_repeated_addition(minor in 0i64..1_000_000, qty in 1u32..50) {
            let m = Money::from_minor(minor, eur());
            let mut sum = Money::zero(eur());
            for _ in 0..qty { sum = sum.checked_add(m).unwrap(); }
            prop_assert_eq!(m.times(qty).unwrap(), sum);
        }
    }
}
