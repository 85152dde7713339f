//! Where physical items go, what shipping cost, and how far the parcel has got.

use super::Money;
use serde::{Deserialize, Serialize};

/// A shipping address as the buyer typed it, every field checked (lengths, no control
/// characters); `country` is an ISO 3166-1 alpha-2 code such as `DE`. Its `Debug` shows
/// only the country.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub country: String,
}

/// The address fields before checking, from a form or JSON (`Debug` shows only the country).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddressForm {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    pub region: String,
    pub country: String,
}

/// An address as its form, to fill the form in again (a recovered cart).
impl From<&ShippingAddress> for AddressForm {
    fn from(a: &ShippingAddress) -> Self {
        AddressForm {
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            postal_code: a.postal_code.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            country: a.country.clone(),
        }
    }
}

impl std::fmt::Debug for ShippingAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShippingAddress(***, {})", self.country)
    }
}

impl std::fmt::Debug for AddressForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AddressForm(***, {:?})",
            self.country.chars().take(8).collect::<String>()
        )
    }
}

impl AddressForm {
    pub fn is_empty(&self) -> bool {
        *self == AddressForm::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct AddressError {
    pub field: &'static str,
    pub problem: String,
}

impl ShippingAddress {
    pub fn parse(form: &AddressForm) -> Result<ShippingAddress, AddressError> {
        ShippingAddress::parse_all(form).map_err(|mut problems| problems.swap_remove(0))
    }

    /// Parses the form, giving every problem at once (never an empty list).
    pub fn parse_all(form: &AddressForm) -> Result<ShippingAddress, Vec<AddressError>> {
        let mut problems = Vec::new();
        let mut text = |field: &'static str, value: &str, required: bool, max: usize| {
            let value = value.trim();
            let problem = if required && value.is_empty() {
                Some("missing".to_owned())
            } else if value.chars().count() > max {
                Some(format!("at most {max} characters"))
            } else if value.chars().any(char::is_control) {
                Some("may not hold control characters".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                problems.push(AddressError { field, problem });
            }
            value.to_owned()
        };
        let address = ShippingAddress {
            name: text("address.name", &form.name, true, 100),
            line1: text("address.line1", &form.line1, true, 100),
            line2: text("address.line2", &form.line2, false, 100),
            postal_code: text("address.postal_code", &form.postal_code, false, 20),
            city: text("address.city", &form.city, true, 60),
            region: text("address.region", &form.region, false, 60),
            country: form.country.trim().to_ascii_uppercase(),
        };
        if address.country.len() != 2 || !address.country.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.insert(
                0,
                AddressError {
                    field: "address.country",
                    problem: "must be a two-letter country code such as `DE`".into(),
                },
            );
        }
        if problems.is_empty() {
            Ok(address)
        } else {
            Err(problems)
        }
    }

    /// The address as a label, one line per part.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.name.clone(), self.line1.clone()];
        if !self.line2.is_empty() {
            lines.push(self.line2.clone());
        }
        let city = [self.postal_code.as_str(), self.city.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(city);
        if !self.region.is_empty() {
            lines.push(self.region.clone());
        }
        lines.push(self.country.clone());
        lines
    }
}

/// An order's shipping: where, for how much, and the parcel once it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipping {
    pub address: ShippingAddress,
    pub price: Money,
    pub weight_grams: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parcel: Option<Parcel>,
    /// Unix seconds the seller marked the order delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
}

/// What the seller sent: the carrier, its tracking number and link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub carrier: String,
    pub tracking: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    pub shipped_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> AddressForm {
        AddressForm {
            name: " Ann Lee ".into(),
            line1: "Hauptstr. 1".into(),
            postal_code: "10115".into(),
            city: "Berlin".into(),
            country: "de".into(),
            ..AddressForm::default()
        }
    }

    #[test]
    fn an_address_is_trimmed_and_its_country_upper_cased() {
        let address = ShippingAddress::parse(&form()).unwrap();
        assert_eq!(address.name, "Ann Lee");
        assert_eq!(address.country, "DE");
        assert_eq!(
            address.lines(),
            ["Ann Lee", "Hauptstr. 1", "10115 Berlin", "DE"]
        );
    }

    #[test]
    fn missing_long_and_control_characters_are_refused_by_field() {
        let refuse = |f: AddressForm| ShippingAddress::parse(&f).unwrap_err().field;
        assert_eq!(
            refuse(AddressForm {
                city: " ".into(),
                ..form()
            }),
            "address.city"
        );
        assert_eq!(
            refuse(AddressForm {
                country: "GER".into(),
                ..form()
            }),
            "address.country"
        );
        assert_eq!(
            refuse(AddressForm {
                line2: "x".repeat(101),
                ..form()
            }),
            "address.line2"
        );
        assert_eq!(
            refuse(AddressForm {
                name: "Ann\r\nBcc: x".into(),
                ..form()
            }),
            "address.name"
        );
    }
}
