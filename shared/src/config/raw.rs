//! store.toml as written, before validation. Unknown fields are refused so typos surface.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub store: RawStore,
    #[serde(default)]
    pub branding: RawBranding,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub pages: RawPages,
    pub payments: RawPayments,
    pub shipping: Option<RawShipping>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    #[serde(default)]
    pub reminders: RawReminders,
    pub sms: Option<RawSms>,
    #[serde(default)]
    pub recovery: RawRecovery,
    #[serde(default)]
    pub reviews: RawReviews,
    #[serde(default)]
    pub products: BTreeMap<String, RawProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReminders {
    pub bank_transfer: Vec<String>,
}

impl Default for RawReminders {
    fn default() -> Self {
        RawReminders {
            bank_transfer: vec!["24h".into(), "2h".into()],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSms {
    pub via: String,
    pub origination_identity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRecovery {
    pub enabled: bool,
    pub after: String,
}

impl Default for RawRecovery {
    fn default() -> Self {
        RawRecovery {
            enabled: true,
            after: "1h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReviews {
    pub after_days: i64,
    pub url: Option<String>,
}

impl Default for RawReviews {
    fn default() -> Self {
        RawReviews {
            after_days: 7,
            url: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShipping {
    pub flat_rate: Option<toml::Value>,
    pub countries: Option<Vec<String>>,
    pub rates: Option<Vec<RawRate>>,
    #[serde(default)]
    pub carriers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub countries: Vec<String>,
    pub up_to_grams: i64,
    pub price: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub name: String,
    pub currency: String,
    pub seller_email: String,
    pub sender: String,
    #[serde(default = "default_reservation_minutes")]
    pub reservation_minutes: i64,
}

fn default_reservation_minutes() -> i64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBranding {
    pub logo_url: Option<String>,
    pub primary_color: String,
    pub font: String,
}

impl Default for RawBranding {
    fn default() -> Self {
        RawBranding {
            logo_url: None,
            primary_color: "#1f6feb".into(),
            font: "system-ui, sans-serif".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMail {
    pub grouping: String,
    pub seller_copy: String,
    pub seller_copy_includes_secrets: bool,
    pub subject: String,
}

impl Default for RawMail {
    fn default() -> Self {
        RawMail {
            grouping: "order".into(),
            seller_copy: "separate".into(),
            seller_copy_includes_secrets: false,
            subject: "Your order from {{ store.name }}".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPages {
    pub processing: String,
    pub approved: String,
    pub declined: String,
    pub expired: String,
}

impl Default for RawPages {
    fn default() -> Self {
        RawPages {
            processing: "We are confirming your payment. This page updates by itself.".into(),
            approved: "Thank you! Your order is confirmed.".into(),
            declined: "Your payment was declined. No money was taken.".into(),
            expired: "This order expired before it was paid.".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPayments {
    pub gateway: String,
    #[serde(default)]
    pub testpay: RawTestpay,
    #[serde(default)]
    pub allow_testpay_in_prod: bool,
    #[serde(default = "default_late_payment")]
    pub late_payment: String,
    pub bank_transfer: Option<RawBankTransfer>,
}

fn default_late_payment() -> String {
    "fulfil_if_in_stock".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBankTransfer {
    pub account_holder: String,
    pub iban: String,
    pub bic: Option<String>,
    pub bank_name: Option<String>,
    pub instructions: Option<String>,
    /// `reservation_days` is its older name.
    #[serde(default = "default_transfer_days", alias = "reservation_days")]
    pub pay_within_days: i64,
    #[serde(default = "default_reference_prefix")]
    pub reference_prefix: String,
}

fn default_transfer_days() -> i64 {
    3
}

fn default_reference_prefix() -> String {
    "NS".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTestpay {
    #[serde(default)]
    pub deliver_twice_out_of_order: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProduct {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: toml::Value,
    pub stock: Option<i64>,
    pub fulfillment: RawFulfillment,
    #[serde(default)]
    pub mail: RawProductMail,
    pub review_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFulfillment {
    pub kind: String,
    pub provider: Option<String>,
    pub course_id: Option<String>,
    pub login_url: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub role_id: Option<i64>,
    /// A number for licence keys (seats per unit), `true`/`false` for courses.
    pub seats: Option<toml::Value>,
    pub valid_days: Option<i64>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub filename: Option<String>,
    pub max_downloads: Option<i64>,
    pub weight_grams: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProductMail {
    pub subject: Option<String>,
    pub template: Option<String>,
}
