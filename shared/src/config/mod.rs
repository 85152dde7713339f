//! The seller's store (`store.toml`): parsing, validation with line-numbered errors, and the
//! typed settings every function reads. Validation runs in `nightshift check`, when the dev
//! stack starts, and in each function's build script.

mod automation;
mod errors;
mod raw;
mod validate;

pub use automation::{parse_duration, Recovery, Reminders, Reviews, SmsService, SmsSettings};
pub use errors::{ConfigError, ConfigErrors};

use crate::domain::{Currency, Email, Money, Sku};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the environment variable a build script sets to the validated store (as JSON).
pub const EMBEDDED_STORE_ENV: &str = "NIGHTSHIFT_EMBEDDED_STORE";
/// Environment variable naming another store file for a build (default: the workspace's store.toml).
pub const STORE_PATH_ENV: &str = "NIGHTSHIFT_STORE";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub settings: StoreSettings,
    pub branding: Branding,
    pub mail: MailSettings,
    pub pages: PageTexts,
    pub payments: Payments,
    /// Required when the store sells physical items.
    pub shipping: Option<ShippingSettings>,
    /// The seller's systems told about every paid order.
    #[serde(default)]
    pub webhooks: Vec<SellerWebhook>,
    #[serde(default)]
    pub reminders: Reminders,
    /// Text messages, when the store sends any.
    #[serde(default)]
    pub sms: Option<SmsSettings>,
    #[serde(default)]
    pub recovery: Recovery,
    #[serde(default)]
    pub reviews: Reviews,
    pub products: BTreeMap<Sku, Product>,
}

/// One of the seller's endpoints: every paid order is POSTed there, signed with the named
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerWebhook {
    pub url: String,
    /// The name of the secret (never the secret itself).
    pub secret: String,
}

/// How shipping is priced, where it goes, and how buyers track parcels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingSettings {
    pub pricing: ShippingPricing,
    /// Carrier name → tracking URL template holding `{tracking}`.
    pub carriers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShippingPricing {
    /// One price per order, to the listed countries (`None`: anywhere).
    Flat {
        price: Money,
        countries: Option<Vec<String>>,
    },
    /// The first rate whose countries hold the destination (or `*`) and whose weight limit
    /// holds the parcel.
    Table(Vec<ShippingRate>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingRate {
    /// ISO country codes, or `*` for any.
    pub countries: Vec<String>,
    pub up_to_grams: u32,
    pub price: Money,
}

/// Why an order cannot be shipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShippingRefused {
    #[error("this store does not ship to {0}")]
    Country(String),
    #[error("no shipping rate to {country} covers {grams} g")]
    TooHeavy { country: String, grams: u32 },
}

impl ShippingSettings {
    /// The price of shipping `grams` to `country`.
    pub fn quote(&self, country: &str, grams: u32) -> Result<Money, ShippingRefused> {
        let rates = self.rates_to(country);
        if rates.is_empty() {
            return Err(ShippingRefused::Country(country.to_owned()));
        }
        rates
            .iter()
            .find(|(up_to, _)| grams <= *up_to)
            .map(|(_, price)| *price)
            .ok_or(ShippingRefused::TooHeavy {
                country: country.to_owned(),
                grams,
            })
    }

    /// The rates that apply to `country`, in the order they are tried: the heaviest parcel
    /// each takes (grams) and its price. Empty when the store does not ship there.
    pub fn rates_to(&self, country: &str) -> Vec<(u32, Money)> {
        match &self.pricing {
            ShippingPricing::Flat { price, countries } => match countries {
                Some(list) if !list.iter().any(|c| c == country) => Vec::new(),
                _ => vec![(u32::MAX, *price)],
            },
            ShippingPricing::Table(rates) => rates
                .iter()
                .filter(|r| r.countries.iter().any(|c| c == country || c == "*"))
                .map(|r| (r.up_to_grams, r.price))
                .collect(),
        }
    }

    /// Where the store ships: the countries its rates name, in their order; then, when a
    /// rate (or a flat price without a list) covers anywhere, every other country by name.
    pub fn destinations(&self) -> Vec<&str> {
        let (named, anywhere): (Vec<&str>, bool) = match &self.pricing {
            ShippingPricing::Flat {
                countries: Some(list),
                ..
            } => (list.iter().map(String::as_str).collect(), false),
            ShippingPricing::Flat {
                countries: None, ..
            } => (Vec::new(), true),
            ShippingPricing::Table(rates) => (
                rates
                    .iter()
                    .flat_map(|r| r.countries.iter().map(String::as_str))
                    .filter(|c| *c != "*")
                    .collect(),
                rates.iter().any(|r| r.countries.iter().any(|c| c == "*")),
            ),
        };
        let mut out: Vec<&str> = Vec::new();
        for code in named {
            if !out.contains(&code) {
                out.push(code);
            }
        }
        if anywhere {
            let first = out.len();
            for code in crate::domain::all_countries() {
                if !out[..first].contains(code) {
                    out.push(code);
                }
            }
        }
        out
    }

    /// The tracking link for a parcel, when the carrier has a template.
    pub fn tracking_url(&self, carrier: &str, tracking: &str) -> Option<String> {
        let encoded: String = tracking
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.carriers
            .get(carrier)
            .map(|template| template.replace("{tracking}", &encoded))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSettings {
    pub name: String,
    pub currency: Currency,
    pub seller_email: Email,
    /// Display name and address mail is sent from.
    pub sender_name: String,
    pub sender_email: Email,
    pub reservation_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branding {
    pub logo_url: Option<String>,
    pub primary_color: String,
    pub font: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One condensed mail per order.
    Order,
    /// One mail per order line.
    Item,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SellerCopy {
    Separate,
    Bcc,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailSettings {
    pub grouping: Grouping,
    pub seller_copy: SellerCopy,
    /// The seller's separate copy shows what only the buyer should hold (a course
    /// password, a download link); off by default. A Bcc copy is the buyer's own mail.
    #[serde(default)]
    pub seller_copy_includes_secrets: bool,
    /// Subject of a condensed order mail (a template).
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageTexts {
    pub processing: String,
    pub approved: String,
    pub declined: String,
    pub expired: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayName {
    Testpay,
    Stripe,
}

impl GatewayName {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayName::Testpay => "testpay",
            GatewayName::Stripe => "stripe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payments {
    /// The card gateway.
    pub gateway: GatewayName,
    pub testpay: TestpaySettings,
    /// testpay takes no money: it is refused where the stage is `prod` unless this is set.
    pub allow_testpay_in_prod: bool,
    /// What becomes of money that arrives after its order expired.
    pub late_payment: LatePayment,
    /// Bank transfer, offered beside the card gateway when configured.
    pub bank_transfer: Option<BankTransfer>,
}

/// `[payments] late_payment`: a payment that arrives after its order expired (a webhook that
/// came late, a transfer confirmed after the deadline) is never lost; this says what becomes
/// of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePayment {
    /// Take the stock again if it is there and fulfil the order; else hold it for the
    /// seller, who is mailed.
    #[default]
    FulfilIfInStock,
    /// Give the money back through the gateway, and mail the buyer why.
    Refund,
    /// Keep the money and the order as they are, and mail the seller to decide.
    Hold,
}

/// Where buyers who pay by bank transfer send the money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankTransfer {
    pub account_holder: String,
    /// Stored without spaces; shown in groups of four.
    pub iban: String,
    pub bic: Option<String>,
    pub bank_name: Option<String>,
    /// Extra text shown with the bank details.
    pub instructions: Option<String>,
    /// How long a transfer order holds its stock, waiting for the money, before it expires.
    pub pay_within_days: u32,
    /// Start of every payment reference, e.g. `NS` in `NS-7K2Q-9XDM`.
    pub reference_prefix: String,
}

impl BankTransfer {
    /// The IBAN in groups of four, as banks print it.
    pub fn iban_display(&self) -> String {
        self.iban
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestpaySettings {
    /// Deliver every webhook twice and replay earlier ones after it, to exercise idempotency.
    pub deliver_twice_out_of_order: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub description: String,
    pub price: Money,
    /// Units for sale; `None` is unlimited.
    pub stock: Option<u32>,
    pub fulfillment: Fulfillment,
    pub mail: ProductMail,
    /// Where buyers review this product; `[reviews] url` when `None`.
    #[serde(default)]
    pub review_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fulfillment {
    Course {
        course_id: String,
        provider: CourseProvider,
        /// Sold by the seat, to teams: a line of N units enrols the buyer and gives N−1
        /// claim links, each enrolling the one person who claims it.
        #[serde(default)]
        seats: bool,
    },
    /// An Ed25519-signed key the buyer's copy of the software checks offline.
    LicenseKey {
        /// Seats per unit bought: a line of 3 units gets one key for `3 × seats`.
        seats: u16,
        /// Days the key is valid from issue; `None` never expires.
        valid_days: Option<u32>,
    },
    /// A file in S3 (in the dev stack, a local folder), handed out through expiring,
    /// counted links.
    Download {
        bucket: String,
        key: String,
        /// The name the buyer's browser saves the file under.
        filename: String,
        /// Days a link works after it is issued.
        valid_days: u32,
        /// Downloads a link allows.
        max_downloads: u32,
    },
    /// A physical item the seller packs and ships.
    Shipment {
        /// Weight of one unit, for shipping rates by weight.
        weight_grams: u32,
    },
}

impl Product {
    /// How many units one order may hold: what gives one person access (a course, a
    /// download) is bought once per order; a course sold by the seat and anything else up to
    /// [`Quantity::MAX`].
    ///
    /// [`Quantity::MAX`]: crate::domain::Quantity::MAX
    pub fn units_per_order(&self) -> u32 {
        match self.fulfillment {
            Fulfillment::Course { seats: false, .. } | Fulfillment::Download { .. } => 1,
            Fulfillment::Course { seats: true, .. }
            | Fulfillment::LicenseKey { .. }
            | Fulfillment::Shipment { .. } => crate::domain::Quantity::MAX,
        }
    }

    /// Whether the product is a course sold by the seat.
    pub fn sells_seats(&self) -> bool {
        matches!(self.fulfillment, Fulfillment::Course { seats: true, .. })
    }
}

impl Fulfillment {
    pub fn kind(&self) -> crate::domain::FulfillmentKind {
        match self {
            Fulfillment::Course { .. } => crate::domain::FulfillmentKind::Course,
            Fulfillment::LicenseKey { .. } => crate::domain::FulfillmentKind::LicenseKey,
            Fulfillment::Download { .. } => crate::domain::FulfillmentKind::Download,
            Fulfillment::Shipment { .. } => crate::domain::FulfillmentKind::Shipment,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum CourseProvider {
    /// Nightshift makes the login itself: the buyer's email and a random password.
    Builtin { login_url: String },
    /// The seller's LMS enrols the buyer when Nightshift posts a signed request.
    Webhook { url: String, secret: String },
    /// The seller's Moodle site, through its Web Services REST API; `token` names the secret
    /// holding the web service token.
    Moodle {
        url: String,
        token: String,
        role_id: u32,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductMail {
    /// Subject template for this product's mail (per-item grouping, or a one-line order).
    pub subject: Option<String>,
    /// Template source for this product's section of the buyer's mail.
    pub html: Option<String>,
    pub text: Option<String>,
}

impl Store {
    /// Where a buyer of `sku` leaves a review: the product's own page, else the store's.
    pub fn review_url(&self, sku: &Sku) -> Option<&str> {
        self.product(sku)
            .and_then(|p| p.review_url.as_deref())
            .or(self.reviews.url.as_deref())
    }

    /// When an order settled at `now` gets its review request, if any of its lines has
    /// somewhere to be reviewed.
    pub fn review_at(&self, order: &crate::domain::Order, now: i64) -> Option<i64> {
        order
            .lines
            .iter()
            .any(|l| self.review_url(&l.sku).is_some())
            .then_some(now + i64::from(self.reviews.after_days) * 86_400)
    }

    /// Reads, parses and validates a store file; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Store, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                path,
                0,
                "",
                format!("cannot read the file: {e}"),
            )])
        })?;
        Store::parse(&text, path)
    }

    /// Parses store text; `path` names the file in errors and anchors template paths.
    pub fn parse(text: &str, path: &Path) -> Result<Store, ConfigErrors> {
        validate::parse(text, path)
    }

    /// The store a build script validated and embedded as JSON.
    pub fn from_embedded(json: &str) -> Result<Store, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn product(&self, sku: &Sku) -> Option<&Product> {
        self.products.get(sku)
    }

    /// Whether some product is delivered as a licence key (and so needs the signing key).
    pub fn sells_license_keys(&self) -> bool {
        self.products
            .values()
            .any(|p| matches!(p.fulfillment, Fulfillment::LicenseKey { .. }))
    }

    /// The bucket every download product's file lives in (config validation keeps it to one).
    pub fn downloads_bucket(&self) -> Option<&str> {
        self.products.values().find_map(|p| match &p.fulfillment {
            Fulfillment::Download { bucket, .. } => Some(bucket.as_str()),
            _ => None,
        })
    }

    /// For build scripts: validates the store (the workspace's store.toml unless
    /// `NIGHTSHIFT_STORE` names another), fails the build with its errors, and hands the
    /// validated store to the crate as a JSON file named by `NIGHTSHIFT_EMBEDDED_STORE`.
    pub fn embed_for_build(manifest_dir: &str) {
        let path = std::env::var(STORE_PATH_ENV)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| Path::new(manifest_dir).join("../../store.toml"));
        let path = path.canonicalize().unwrap_or(path);
        println!("cargo:rerun-if-env-changed={STORE_PATH_ENV}");
        println!("cargo:rerun-if-changed={}", path.display());
        let store = match Store::load_with_files(&path) {
            Ok((store, files)) => {
                for file in files {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
                store
            }
            Err(errors) => {
                for e in &errors.0 {
                    println!("cargo:warning={e}");
                }
                eprintln!("{errors}");
                std::process::exit(1);
            }
        };
        let out = std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts");
        let file = Path::new(&out).join("store.json");
        let json = serde_json::to_string(&store).expect("a validated store serialises");
        std::fs::write(&file, json).expect("OUT_DIR is writable");
        println!("cargo:rustc-env={EMBEDDED_STORE_ENV}={}", file.display());
    }
}

/// The store a function was built with: its build script validated `store.toml` and named
/// the embedded JSON in `NIGHTSHIFT_EMBEDDED_STORE` (see [`Store::embed_for_build`]).
#[macro_export]
macro_rules! built_in_store {
    () => {
        $crate::config::Store::from_embedded(include_str!(env!("NIGHTSHIFT_EMBEDDED_STORE")))
            .expect("the build script embeds a valid store")
    };
}
