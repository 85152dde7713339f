//! Templates: built once per cold start from the files in `shared/templates` and the store's
//! per-product overrides. Names ending in `.html` are autoescaped.

use crate::config::Store;
use crate::domain::{Access, Line, Money, Order};
use minijinja::Environment;
use serde::Serialize;

/// The built-in templates, compiled into every binary.
const BUILTIN: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("buy.html", include_str!("../../templates/buy.html")),
    ("order.html", include_str!("../../templates/order.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("seat.html", include_str!("../../templates/seat.html")),
    ("line.html", include_str!("../../templates/line.html")),
    ("line.txt", include_str!("../../templates/line.txt")),
    ("seats.html", include_str!("../../templates/seats.html")),
    ("seats.txt", include_str!("../../templates/seats.txt")),
    (
        "mail_layout.html",
        include_str!("../../templates/mail_layout.html"),
    ),
    (
        "mail_buyer.html",
        include_str!("../../templates/mail_buyer.html"),
    ),
    (
        "mail_seat.html",
        include_str!("../../templates/mail_seat.html"),
    ),
    (
        "mail_seat.txt",
        include_str!("../../templates/mail_seat.txt"),
    ),
    (
        "mail_shipping.html",
        include_str!("../../templates/mail_shipping.html"),
    ),
    (
        "mail_shipping.txt",
        include_str!("../../templates/mail_shipping.txt"),
    ),
    (
        "mail_buyer.txt",
        include_str!("../../templates/mail_buyer.txt"),
    ),
    (
        "mail_seller.html",
        include_str!("../../templates/mail_seller.html"),
    ),
    (
        "mail_seller.txt",
        include_str!("../../templates/mail_seller.txt"),
    ),
    (
        "mail_payment.html",
        include_str!("../../templates/mail_payment.html"),
    ),
    (
        "mail_payment.txt",
        include_str!("../../templates/mail_payment.txt"),
    ),
    ("testpay.html", include_str!("../../templates/testpay.html")),
];

#[derive(Debug, thiserror::Error)]
#[error("template {name} failed to render")]
pub struct RenderError {
    pub name: String,
    #[source]
    pub source: minijinja::Error,
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(store: &Store) -> Result<Templates, RenderError> {
        let mut env = Environment::new();
        // `{{ unix_seconds | date }}` → `2027-01-31` (UTC).
        env.add_filter("date", utc_date);
        // `{{ key | groups }}` → the parts of a licence key between its hyphens.
        env.add_filter("groups", |key: String| -> Vec<String> {
            key.split('-').map(str::to_owned).collect()
        });
        for (name, source) in BUILTIN {
            env.add_template(name, source)
                .map_err(|source| RenderError {
                    name: (*name).into(),
                    source,
                })?;
        }
        for (sku, product) in &store.products {
            for (ext, source) in [("html", &product.mail.html), ("txt", &product.mail.text)] {
                if let Some(source) = source {
                    let name = format!("product/{sku}.{ext}");
                    env.add_template_owned(name.clone(), source.clone())
                        .map_err(|source| RenderError { name, source })?;
                }
            }
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, RenderError> {
        let fail = |source| RenderError {
            name: name.into(),
            source,
        };
        self.env
            .get_template(name)
            .map_err(fail)?
            .render(context)
            .map_err(fail)
    }

    /// Renders a one-line template from the store (a mail subject) as plain text on one line.
    pub fn render_line(
        &self,
        source: &str,
        context: impl Serialize,
    ) -> Result<String, RenderError> {
        let text = self
            .env
            .render_str(source, context)
            .map_err(|source| RenderError {
                name: "subject".into(),
                source,
            })?;
        Ok(text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned())
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }
}

/// What every page and mail can use about the store.
#[derive(Debug, Serialize)]
pub struct StoreView<'a> {
    pub name: &'a str,
    pub seller_email: &'a str,
    pub logo_url: Option<&'a str>,
    pub primary_color: &'a str,
    pub font: &'a str,
}

impl<'a> StoreView<'a> {
    pub fn new(store: &'a Store) -> Self {
        StoreView {
            name: &store.settings.name,
            seller_email: store.settings.seller_email.as_str(),
            logo_url: store.branding.logo_url.as_deref(),
            primary_color: &store.branding.primary_color,
            font: &store.branding.font,
        }
    }
}

/// A line as pages and mails show it (and as the order page's JSON gives it).
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// `course`, `license_key`, `download` or `shipment`.
    pub kind: &'static str,
    pub state: &'static str,
    pub access: Option<Access>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub subtotal: String,
    /// The templates for this line's section (a product's override, or the built-in one).
    #[serde(skip)]
    pub templates: (String, String),
    /// The price of one unit, for pages and mail (not part of the order's JSON).
    #[serde(skip)]
    pub unit_price: String,
    /// A course sold by the seat: the seats after the buyer's own, for pages and mail (not
    /// part of the order's JSON). Their claim links are filled in by [`with_seat_links`].
    #[serde(skip)]
    pub seats: Vec<SeatView>,
}

/// A claimable seat as the buyer's page and mail show it.
#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    /// Seat 2 is the first after the buyer's own.
    pub number: usize,
    /// The claim link, while nobody has claimed the seat.
    pub url: Option<String>,
    pub holder_name: Option<String>,
    pub holder_email: Option<String>,
    /// `pending`, `delivered` or `failed` once claimed.
    pub state: Option<&'static str>,
    pub claimed_on: Option<String>,
}

/// Puts each free seat's claim link on the lines: the links derive from the order page's
/// token, which only the order page and the mailer hold.
pub fn with_seat_links(
    lines: &mut [LineView],
    token: &crate::domain::OrderToken,
    urls: &super::Urls,
) {
    for (index, line) in lines.iter_mut().enumerate() {
        for (seat, view) in line.seats.iter_mut().enumerate() {
            if view.holder_email.is_none() {
                let token = crate::domain::SeatToken::derive(token, index, seat);
                view.url = Some(urls.seat(&token));
            }
        }
    }
}

impl LineView {
    pub fn new(line: &Line, templates: &Templates) -> Self {
        let own = |ext: &str| {
            let name = format!("product/{}.{ext}", line.sku);
            if templates.has(&name) {
                name
            } else {
                format!("line.{ext}")
            }
        };
        LineView {
            sku: line.sku.to_string(),
            name: line.name.clone(),
            quantity: line.quantity.get(),
            kind: line.kind.as_str(),
            state: line.state.as_str(),
            access: line.access.clone(),
            failure: line.failure.clone(),
            subtotal: line.subtotal().to_string(),
            templates: (own("html"), own("txt")),
            unit_price: line.unit_price.to_string(),
            seats: line
                .seats
                .iter()
                .enumerate()
                .map(|(i, seat)| {
                    let holder = seat.holder.as_ref();
                    SeatView {
                        number: crate::domain::seat_number(i),
                        url: None,
                        holder_name: holder.map(|h| h.name.to_string()),
                        holder_email: holder.map(|h| h.email.to_string()),
                        state: holder.map(|h| match h.state {
                            crate::domain::SeatState::Pending => "pending",
                            crate::domain::SeatState::Delivered => "delivered",
                            crate::domain::SeatState::Failed => "failed",
                        }),
                        claimed_on: holder.map(|h| utc_date(h.claimed_at)),
                    }
                })
                .collect(),
        }
    }
}

/// A line with its template names, for rendering.
#[derive(Debug, Serialize)]
pub struct RenderedLine<'a> {
    #[serde(flatten)]
    pub line: &'a LineView,
    pub template_html: &'a str,
    pub template_txt: &'a str,
    /// What one unit costs.
    pub unit_price: &'a str,
    /// The seats after the buyer's own, for a course sold by the seat.
    pub seats: &'a [SeatView],
    /// Downloads its link still allows, where the page has counted them.
    pub downloads_left: Option<u32>,
    /// Its download link no longer works (used up or past its end).
    pub link_ended: bool,
}

pub fn rendered_lines(lines: &[LineView]) -> Vec<RenderedLine<'_>> {
    lines
        .iter()
        .map(|line| RenderedLine {
            line,
            template_html: &line.templates.0,
            template_txt: &line.templates.1,
            unit_price: &line.unit_price,
            seats: &line.seats,
            downloads_left: None,
            link_ended: false,
        })
        .collect()
}

/// `amount_minor`, `currency` and the formatted amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
    pub display: String,
}

impl From<Money> for MoneyView {
    fn from(m: Money) -> Self {
        MoneyView {
            amount_minor: m.minor(),
            currency: m.currency().to_string(),
            display: m.to_string(),
        }
    }
}

pub fn line_views(order: &Order, templates: &Templates) -> Vec<LineView> {
    order
        .lines
        .iter()
        .map(|l| LineView::new(l, templates))
        .collect()
}

/// What a buyer paying by bank transfer needs: where to send how much, with which reference,
/// by when. Shown on the order page and in the mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferView {
    pub account_holder: String,
    pub iban: String,
    pub bic: Option<String>,
    pub bank_name: Option<String>,
    pub instructions: Option<String>,
    pub reference: String,
    pub amount: String,
    /// The last day (UTC) before the order expires, `YYYY-MM-DD`.
    pub pay_by: String,
}

impl TransferView {
    pub fn of(store: &Store, order: &Order) -> Option<TransferView> {
        let bank = store.payments.bank_transfer.as_ref()?;
        Some(TransferView {
            account_holder: bank.account_holder.clone(),
            iban: bank.iban_display(),
            bic: bank.bic.clone(),
            bank_name: bank.bank_name.clone(),
            instructions: bank.instructions.clone(),
            reference: order.transfer_reference.clone()?,
            amount: order.total.to_string(),
            pay_by: utc_date(order.reserved_until),
        })
    }
}

/// An order's shipping for pages and mail: the address, the price, and each step so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingView {
    pub address: Vec<String>,
    pub price: String,
    pub weight_grams: u32,
    /// `awaiting_shipment`, `shipped` or `delivered`.
    pub step: &'static str,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub tracking_url: Option<String>,
    /// `YYYY-MM-DD` (UTC).
    pub shipped_on: Option<String>,
    pub delivered_on: Option<String>,
}

impl ShippingView {
    pub fn of(order: &Order) -> Option<ShippingView> {
        let shipping = order.shipping.as_ref()?;
        let parcel = shipping.parcel.as_ref();
        Some(ShippingView {
            address: shipping.address.lines(),
            price: shipping.price.to_string(),
            weight_grams: shipping.weight_grams,
            step: if shipping.delivered_at.is_some() {
                "delivered"
            } else if parcel.is_some() {
                "shipped"
            } else {
                "awaiting_shipment"
            },
            carrier: parcel.map(|p| p.carrier.clone()),
            tracking: parcel.map(|p| p.tracking.clone()),
            tracking_url: parcel.and_then(|p| p.tracking_url.clone()),
            shipped_on: parcel.map(|p| utc_date(p.shipped_at)),
            delivered_on: shipping.delivered_at.map(utc_date),
        })
    }
}

/// `YYYY-MM-DD HH:MM` of a Unix time (UTC).
pub fn utc_date_time(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        utc_date(unix),
        seconds / 3_600,
        seconds % 3_600 / 60
    )
}

/// `YYYY-MM-DD` of a Unix time (UTC), by the days-from-civil algorithm run backwards.
pub fn utc_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14");
        assert_eq!(utc_date(4_107_542_399), "2100-02-28");
        assert_eq!(super::utc_date_time(1_700_000_000), "2023-11-14 22:13");
    }
}
