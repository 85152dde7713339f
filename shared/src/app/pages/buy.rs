//! The buy page: the product, its form, and the whole price (shipping to the chosen country
//! included) before the buyer leaves for the gateway. A checkout refused for bad input shows
//! the page again with what the buyer typed and each message beside its field.

use crate::app::checkout::{CheckoutError, CheckoutForm};
use crate::app::render::{utc_date, utc_date_time, RenderError, StoreView, Templates};
use crate::app::Urls;
use crate::config::{Fulfillment, Product, ShippingRefused, Store};
use crate::domain::{country_name, Money, Quantity};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many units are left to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Unlimited,
    Left(u32),
    /// None left to buy now, but unpaid orders hold some: they come back unless paid for.
    Held(Held),
}

/// Units held by unpaid orders, and until when at the latest each kind of hold lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub by_card: u32,
    pub by_transfer: u32,
    /// Unix seconds by which every card order's hold has ended (paid or given back).
    pub card_back_by: i64,
    /// The same for orders waiting for a bank transfer.
    pub transfer_back_by: i64,
}

/// How long an unpaid order holds its units at most, by way of paying (seconds), seen at
/// `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldWindows {
    pub now: i64,
    pub card: i64,
    pub transfer: i64,
}

impl HoldWindows {
    /// From the store's reservation settings and the gateway's shortest session
    /// (`session_seconds`), as checkout sets an order's `reserved_until`.
    pub fn at(now: i64, store: &Store, session_seconds: i64) -> HoldWindows {
        let minutes = i64::from(store.settings.reservation_minutes) * 60;
        HoldWindows {
            now,
            card: minutes.max(crate::app::payment::session_hold_until(0, session_seconds)),
            transfer: store
                .payments
                .bank_transfer
                .as_ref()
                .map_or(0, |bank| i64::from(bank.pay_within_days) * 86_400),
        }
    }
}

impl Availability {
    /// What is left of the product now (a read of its stock when it has a limit); when
    /// nothing is, what unpaid orders hold and when it may come back (now + the longest
    /// hold: every hold that exists now ends by then).
    pub async fn read<S: crate::ports::OrderStore>(
        orders: &S,
        product: &Product,
        windows: HoldWindows,
    ) -> Result<Availability, crate::ports::StoreError> {
        let Some(limit) = product.stock else {
            return Ok(Availability::Unlimited);
        };
        let level = orders.stock(&product.sku).await?;
        Ok(match limit.saturating_sub(level.taken) {
            0 if level.held() > 0 => Availability::Held(Held {
                by_card: level.held_by_card,
                by_transfer: level.held_by_transfer,
                card_back_by: windows.now + windows.card,
                transfer_back_by: windows.now + windows.transfer,
            }),
            left => Availability::Left(left),
        })
    }

    fn left(self) -> Option<u32> {
        match self {
            Availability::Unlimited => None,
            Availability::Left(n) => Some(n),
            Availability::Held(_) => Some(0),
        }
    }

    /// What the page says when nothing is left to buy.
    fn sold_out_message(self) -> String {
        let Availability::Held(held) = self else {
            return "Sold out.".into();
        };
        let n = held.by_card.saturating_add(held.by_transfer);
        let card = format!("{} UTC", utc_date_time(held.card_back_by));
        let transfer = utc_date(held.transfer_back_by);
        let start = format!(
            "Sold out for now: the last {n} {} reserved by buyers who have not paid yet.",
            if n == 1 { "is" } else { "are" }
        );
        match (held.by_card > 0, held.by_transfer > 0) {
            (true, false) => format!("{start} Any they do not pay for come back by {card}: look again then."),
            (false, true) => format!("{start} They are waiting for bank transfers; any that do not arrive come back by {transfer}."),
            _ => format!("{start} Any not paid for by card come back by {card}; those waiting for a bank transfer by {transfer}."),
        }
    }
}

/// Why a buy page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum BuyPageError {
    #[error("there is no such product")]
    UnknownProduct,
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Which buy page to show: the product's, with what the buyer typed and the checkout's
/// problems when a form was refused.
#[derive(Debug, Clone, Copy)]
pub struct BuyRequest<'a> {
    pub sku: &'a str,
    pub form: Option<&'a CheckoutForm>,
    pub problems: &'a [CheckoutError],
}

/// The buy page as it is now (what is left is read from the store), holding what the buyer
/// typed and the checkout's problems beside their fields when given.
pub async fn current_buy_page<S: crate::ports::OrderStore>(
    store: &Store,
    templates: &Templates,
    urls: &Urls,
    orders: &S,
    request: BuyRequest<'_>,
    windows: HoldWindows,
) -> Result<String, BuyPageError> {
    let BuyRequest {
        sku,
        form,
        problems,
    } = request;
    let product = crate::domain::Sku::parse(sku.trim())
        .ok()
        .and_then(|sku| store.product(&sku))
        .ok_or(BuyPageError::UnknownProduct)?;
    let available = Availability::read(orders, product, windows).await?;
    let errors =
        form_errors(store, product, problems, available).ok_or(BuyPageError::UnknownProduct)?;
    Ok(buy_page(
        store,
        templates,
        urls,
        &BuyPage {
            product,
            available,
            form,
            errors: &errors,
        },
    )?)
}

/// A message for the buyer about one field of the form (`field` is the input's id; empty
/// for the form as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// What the buy page shows.
pub struct BuyPage<'a> {
    pub product: &'a Product,
    pub available: Availability,
    /// What the buyer typed, shown again (a refused checkout, or a price update).
    pub form: Option<&'a CheckoutForm>,
    pub errors: &'a [FieldError],
}

#[derive(Serialize)]
struct BuyContext<'a> {
    store: StoreView<'a>,
    title: &'a str,
    sku: &'a str,
    name: &'a str,
    description: &'a str,
    price: String,
    sold_out: bool,
    /// "Sold out.", or when units are only held by unpaid orders, when they may come back.
    sold_out_message: String,
    /// Units left, when few are.
    few_left: Option<u32>,
    checkout_url: String,
    bank_transfer: bool,
    /// The store texts reminders: the form offers a phone number with a consent box.
    texts: bool,
    /// The store mails a buyer who leaves an order unpaid, if they ask for it.
    recovery: bool,
    /// A physical item: the form asks for the shipping address.
    ships: bool,
    /// The buyer chooses how many (products that are not bought once per order).
    quantity_field: bool,
    /// The quantity is a number of seats: the buyer's and a claim link per other person.
    seats: bool,
    max_quantity: u32,
    values: Values,
    /// Messages by field id.
    errors: BTreeMap<&'static str, &'a str>,
    /// The same messages in the form's order, for the summary at the top.
    error_list: &'a [FieldError],
    countries: Vec<CountryOption<'a>>,
    summary: Summary,
    /// What the page's script needs to price other quantities and countries.
    pricing: Pricing,
}

/// The form's values as the buyer typed them (escaped when rendered).
#[derive(Serialize, Default)]
struct Values {
    email: String,
    name: String,
    quantity: String,
    payment_method: String,
    address_name: String,
    address_line1: String,
    address_line2: String,
    address_postal_code: String,
    address_city: String,
    address_region: String,
    address_country: String,
    phone: String,
    sms_consent: bool,
    remind_me: bool,
}

#[derive(Serialize)]
struct CountryOption<'a> {
    code: &'a str,
    name: &'static str,
    selected: bool,
}

/// The price as the buyer will pay it.
#[derive(Serialize)]
struct Summary {
    quantity: u32,
    subtotal: String,
    /// The country's name, when the item ships.
    destination: Option<&'static str>,
    /// The shipping price, or why there is none.
    shipping: Option<String>,
    ships_there: bool,
    total: String,
}

#[derive(Serialize)]
struct Pricing {
    unit_minor: i64,
    grams: u32,
    max_quantity: u32,
    currency: String,
    symbol: Option<&'static str>,
    exponent: u32,
    /// Per country code (or `*`): the rates in the order they are tried, `[up to grams, minor]`.
    rates: BTreeMap<String, Vec<(u32, i64)>>,
}

pub fn buy_page(
    store: &Store,
    templates: &Templates,
    urls: &Urls,
    page: &BuyPage<'_>,
) -> Result<String, RenderError> {
    let product = page.product;
    let left = page.available.left();
    let max_quantity = product
        .units_per_order()
        .min(left.unwrap_or(u32::MAX))
        .clamp(1, Quantity::MAX);
    let values = page.form.map(values_of).unwrap_or_else(|| Values {
        quantity: "1".into(),
        payment_method: "card".into(),
        ..Values::default()
    });
    let grams = match product.fulfillment {
        Fulfillment::Shipment { weight_grams } => Some(weight_grams),
        _ => None,
    };
    let destinations: Vec<&str> = match (&store.shipping, grams) {
        (Some(shipping), Some(_)) => shipping
            .destinations()
            .into_iter()
            .filter(|code| country_name(code).is_some())
            .collect(),
        _ => Vec::new(),
    };
    let chosen = destinations
        .iter()
        .find(|c| **c == values.address_country.trim().to_ascii_uppercase())
        .or(destinations.first())
        .copied();
    let quantity = values
        .quantity
        .trim()
        .parse::<u32>()
        .unwrap_or(1)
        .clamp(1, max_quantity);
    let subtotal = product.price.times(quantity).unwrap_or(product.price);
    let quote = match (&store.shipping, grams, chosen) {
        (Some(shipping), Some(grams), Some(country)) => {
            Some(shipping.quote(country, grams.saturating_mul(quantity)))
        }
        _ => None,
    };
    let total = match &quote {
        Some(Ok(price)) => subtotal.checked_add(*price).unwrap_or(subtotal),
        _ => subtotal,
    };
    let summary = Summary {
        quantity,
        subtotal: subtotal.to_string(),
        destination: chosen.and_then(country_name),
        shipping: quote.as_ref().map(|q| match q {
            Ok(price) => price.to_string(),
            Err(e) => shipping_refusal(e),
        }),
        ships_there: !matches!(quote, Some(Err(_))),
        total: total.to_string(),
    };
    // The script's rates: `*` for anywhere, and each country whose rates differ from it.
    let mut rates = BTreeMap::new();
    if let (Some(shipping), Some(_)) = (&store.shipping, grams) {
        let anywhere = shipping.rates_to("*");
        for code in &destinations {
            let own = shipping.rates_to(code);
            if own != anywhere {
                rates.insert((*code).to_owned(), minor_rates(&own));
            }
        }
        if !anywhere.is_empty() {
            rates.insert("*".to_owned(), minor_rates(&anywhere));
        }
    }
    let currency = product.price.currency();
    templates.render(
        "buy.html",
        BuyContext {
            store: StoreView::new(store),
            title: &product.name,
            sku: product.sku.as_str(),
            name: &product.name,
            description: &product.description,
            price: product.price.to_string(),
            sold_out: left == Some(0),
            sold_out_message: page.available.sold_out_message(),
            few_left: left.filter(|n| (1..=10).contains(n)),
            checkout_url: urls.checkout(),
            bank_transfer: store.payments.bank_transfer.is_some(),
            texts: store.sms.is_some(),
            recovery: store.recovery.enabled,
            ships: grams.is_some(),
            quantity_field: product.units_per_order() > 1,
            seats: product.sells_seats(),
            max_quantity,
            errors: page
                .errors
                .iter()
                .map(|e| (e.field, e.message.as_str()))
                .collect(),
            error_list: page.errors,
            countries: destinations
                .iter()
                .map(|code| CountryOption {
                    code,
                    name: country_name(code).unwrap_or_default(),
                    selected: Some(*code) == chosen,
                })
                .collect(),
            values,
            summary,
            pricing: Pricing {
                unit_minor: product.price.minor(),
                grams: grams.unwrap_or(0),
                max_quantity,
                currency: currency.to_string(),
                symbol: currency.symbol(),
                exponent: currency.exponent(),
                rates,
            },
        },
    )
}

fn minor_rates(rates: &[(u32, Money)]) -> Vec<(u32, i64)> {
    rates.iter().map(|(g, m)| (*g, m.minor())).collect()
}

fn values_of(form: &CheckoutForm) -> Values {
    let a = &form.address;
    Values {
        email: form.email.clone(),
        name: form.name.clone(),
        quantity: form
            .items
            .first()
            .map_or_else(|| "1".into(), |(_, q)| q.clone()),
        payment_method: if form.payment_method.is_empty() {
            "card".into()
        } else {
            form.payment_method.clone()
        },
        address_name: a.name.clone(),
        address_line1: a.line1.clone(),
        address_line2: a.line2.clone(),
        address_postal_code: a.postal_code.clone(),
        address_city: a.city.clone(),
        address_region: a.region.clone(),
        address_country: a.country.clone(),
        phone: form.phone.clone(),
        sms_consent: form.sms_consent,
        remind_me: form.remind_me,
    }
}

fn shipping_refusal(refused: &ShippingRefused) -> String {
    match refused {
        ShippingRefused::Country(code) => format!(
            "We do not ship to {}.",
            country_name(code).unwrap_or("this country")
        ),
        ShippingRefused::TooHeavy { country, .. } => format!(
            "No shipping to {} takes a parcel this heavy: choose fewer units.",
            country_name(country).unwrap_or("this country")
        ),
    }
}

/// The form's fields in the order the page shows them, for the summary's order.
const FIELD_ORDER: &[&str] = &[
    "email",
    "name",
    "quantity",
    "address_name",
    "address_line1",
    "address_line2",
    "address_postal_code",
    "address_city",
    "address_region",
    "address_country",
    "payment_method",
    "phone",
    "sms_consent",
    "remind_me",
];

/// What to tell the buyer about a refused checkout, field by field in the form's order;
/// `None` when a problem is not the form's (an unknown product).
pub fn form_errors(
    store: &Store,
    product: &Product,
    errors: &[CheckoutError],
    available: Availability,
) -> Option<Vec<FieldError>> {
    let ships = matches!(product.fulfillment, Fulfillment::Shipment { .. });
    // A message about a field the page does not show is about the form as a whole.
    let shown = |field: &str| match field {
        "quantity" => product.units_per_order() > 1,
        "payment_method" => store.payments.bank_transfer.is_some(),
        "phone" | "sms_consent" => store.sms.is_some(),
        f if f.starts_with("address_") => ships,
        _ => true,
    };
    let mut out = Vec::new();
    for error in errors {
        for mut e in field_errors(product, error, available)? {
            if !shown(e.field) {
                e.field = "";
            }
            if !out
                .iter()
                .any(|o: &FieldError| o.field == e.field && !e.field.is_empty())
            {
                out.push(e);
            }
        }
    }
    out.sort_by_key(|e| FIELD_ORDER.iter().position(|f| *f == e.field).unwrap_or(0));
    Some(out)
}

fn field_errors(
    product: &Product,
    error: &CheckoutError,
    available: Availability,
) -> Option<Vec<FieldError>> {
    let one = |field: &'static str, message: String| Some(vec![FieldError { field, message }]);
    match error {
        CheckoutError::Invalid { field, problem } => {
            let (id, message) = match *field {
                "email" => (
                    "email",
                    "Enter an email address we can deliver to, such as name@example.com.".into(),
                ),
                "name" => ("name", "Enter your name (at most 100 characters).".into()),
                "quantity" => ("quantity", sentence(problem)),
                "payment_method" => ("payment_method", sentence(problem)),
                "phone" => ("phone", sentence(problem)),
                "sms_consent" => ("sms_consent", sentence(problem)),
                "address" => ("address_line1", "Enter the shipping address.".into()),
                other => match other.strip_prefix("address.") {
                    Some(part) => address_error(part, problem),
                    None => ("", sentence(problem)),
                },
            };
            one(id, message)
        }
        CheckoutError::OncePerOrder(_) => one(
            "",
            format!(
                "{} gives one person access, so it is bought once per order.",
                product.name
            ),
        ),
        CheckoutError::SoldOut(_) => {
            let field = if product.units_per_order() > 1 {
                "quantity"
            } else {
                ""
            };
            match available.left() {
                Some(n) if n > 0 => one(
                    field,
                    format!(
                        "Only {n} left: choose {n} or fewer.",
                    ),
                ),
                _ if matches!(available, Availability::Held(_)) => {
                    one("", available.sold_out_message())
                }
                _ => one("", "Sorry, this has just sold out.".into()),
            }
        }
        CheckoutError::CannotShip(refused) => one("address_country", shipping_refusal(refused)),
        CheckoutError::KeyReused => one(
            "",
            "This checkout was already sent with other details. Reload the page and try again."
                .into(),
        ),
        CheckoutError::Store(_) | CheckoutError::Queue(_) => one(
            "",
            "Something went wrong on our side and nothing was charged. Please try again in a moment."
                .into(),
        ),
        CheckoutError::UnknownProduct(_) => None,
    }
}

fn address_error(part: &str, problem: &str) -> (&'static str, String) {
    let (id, label) = match part {
        "name" => ("address_name", "recipient"),
        "line1" => ("address_line1", "street and number"),
        "line2" => ("address_line2", "second address line"),
        "postal_code" => ("address_postal_code", "postal code"),
        "city" => ("address_city", "city"),
        "region" => ("address_region", "region"),
        "country" => return ("address_country", "Choose the country to ship to.".into()),
        _ => return ("address_line1", sentence(problem)),
    };
    let message = if problem == "missing" {
        format!("Enter the {label}.")
    } else if let Some(max) = problem.strip_prefix("at most ") {
        format!("Use at most {max} for the {label}.")
    } else {
        format!("The {label} {problem}.")
    };
    (id, message)
}

/// A problem as a sentence: capital first letter, full stop.
fn sentence(problem: &str) -> String {
    let mut chars = problem.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}
