//! From raw TOML to a typed [`Store`], collecting every problem with its line.

use super::raw::{RawBankTransfer, RawFile, RawFulfillment, RawProduct, RawShipping};
use super::*;
use std::ops::Range;
use std::path::PathBuf;
use toml_edit::{ImDocument, Item, TableLike};

#[path = "automation_checks.rs"]
mod automation_checks;

pub(super) fn parse(text: &str, path: &Path) -> Result<Store, ConfigErrors> {
    parse_with_files(text, path).map(|(store, _)| store)
}

/// Also returns the template files the store read, so a build can watch them.
pub(super) fn parse_with_files(
    text: &str,
    path: &Path,
) -> Result<(Store, Vec<PathBuf>), ConfigErrors> {
    let doc = ImDocument::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(1);
        ConfigErrors(vec![ConfigError::new(
            path,
            line,
            "",
            first_line(e.message()),
        )])
    })?;
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let field = path_at(doc.as_table(), &span).join(".");
        ConfigErrors(vec![ConfigError::new(
            path,
            line_at(text, span.start),
            &field,
            first_line(e.message()),
        )])
    })?;
    let mut v = Validator {
        text,
        doc: &doc,
        path,
        errors: Vec::new(),
        files: Vec::new(),
    };
    let store = v.store(raw);
    if v.errors.is_empty() {
        Ok((store.expect("a store without errors is complete"), v.files))
    } else {
        v.errors.sort_by_key(|e| e.line);
        Err(ConfigErrors(v.errors))
    }
}

impl Store {
    /// Like [`Store::load`], also listing the template files it read.
    pub fn load_with_files(path: &Path) -> Result<(Store, Vec<PathBuf>), ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                path,
                0,
                "",
                format!("cannot read the file: {e}"),
            )])
        })?;
        parse_with_files(&text, path)
    }
}

/// ISO 13616: country code, check digits, then the account; the number mod 97 is 1.
fn iban_is_valid(iban: &str) -> bool {
    if !(15..=34).contains(&iban.len())
        || !iban
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        || !iban.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
        || !iban.as_bytes()[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let rearranged = iban[4..].bytes().chain(iban[..4].bytes());
    let mut rest: u32 = 0;
    for b in rearranged {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_owned()
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted path of the innermost key whose key or value covers `span`.
fn path_at(table: &dyn TableLike, span: &Range<usize>) -> Vec<String> {
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        let value_span = match item {
            Item::Value(v) => v.span(),
            Item::Table(t) => t.span(),
            _ => None,
        };
        let mut path = vec![key.to_owned()];
        if let Some(inner) = item.as_table_like() {
            let rest = path_at(inner, span);
            if !rest.is_empty() {
                path.extend(rest);
                return path;
            }
        }
        let covers = |s: Option<Range<usize>>| {
            s.is_some_and(|s| s.start <= span.start && span.start < s.end.max(s.start + 1))
        };
        if covers(key_span) || covers(value_span) {
            return path;
        }
    }
    Vec::new()
}

struct Validator<'a> {
    text: &'a str,
    doc: &'a ImDocument<&'a str>,
    path: &'a Path,
    errors: Vec<ConfigError>,
    files: Vec<PathBuf>,
}

impl Validator<'_> {
    /// The line of the deepest part of `field` present in the file.
    fn line_of(&self, field: &str) -> usize {
        let mut table: &dyn TableLike = self.doc.as_table();
        let mut line = 1;
        for part in field.split('.') {
            let Some((key, item)) = table.get_key_value(part) else {
                break;
            };
            if let Some(span) = key.span() {
                line = line_at(self.text, span.start);
            } else if let Some(span) = item.as_table().and_then(|t| t.span()) {
                line = line_at(self.text, span.start);
            }
            match item.as_table_like() {
                Some(t) => table = t,
                None => break,
            }
        }
        line
    }

    fn error(&mut self, field: &str, problem: impl Into<String>) {
        let line = self.line_of(field);
        self.errors
            .push(ConfigError::new(self.path, line, field, problem));
    }

    fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.error(field, e.to_string())).ok()
    }

    fn template(&mut self, field: &str, source: &str) {
        let mut env = minijinja::Environment::new();
        if let Err(e) = env.add_template("t", source) {
            self.error(
                field,
                format!("template error: {}", e.detail().unwrap_or("invalid syntax")),
            );
        }
    }

    fn non_empty(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.error(field, "must not be empty");
        }
    }

    fn url(&mut self, field: &str, value: &str) {
        let ok = (value.starts_with("https://") || value.starts_with("http://"))
            && value.len() > 8
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'<>`".contains(c));
        if !ok {
            self.error(field, format!("`{value}` is not an http(s) URL"));
        }
    }

    fn store(&mut self, raw: RawFile) -> Option<Store> {
        let currency = self.check("store.currency", Currency::parse(&raw.store.currency));
        let seller_email = self.check("store.seller_email", Email::parse(&raw.store.seller_email));
        self.non_empty("store.name", &raw.store.name);
        let (sender_name, sender_email) = self.sender(&raw.store.sender);
        if !(1..=24 * 60).contains(&raw.store.reservation_minutes) {
            self.error(
                "store.reservation_minutes",
                "must be from 1 to 1440 minutes",
            );
        }

        if let Some(url) = &raw.branding.logo_url {
            self.url("branding.logo_url", url);
        }
        let c = &raw.branding.primary_color;
        let hex = c.strip_prefix('#').unwrap_or("");
        if !(matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())) {
            self.error(
                "branding.primary_color",
                format!("`{c}` is not a colour like #1f6feb"),
            );
        }
        let font = &raw.branding.font;
        if font.is_empty()
            || !font
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ,-'".contains(c))
        {
            self.error(
                "branding.font",
                "a CSS font list of letters, digits, spaces, commas, hyphens and quotes",
            );
        }

        let grouping = match raw.mail.grouping.as_str() {
            "order" => Some(Grouping::Order),
            "item" => Some(Grouping::Item),
            other => {
                self.error(
                    "mail.grouping",
                    format!("`{other}` is not one of `order`, `item`"),
                );
                None
            }
        };
        let seller_copy = match raw.mail.seller_copy.as_str() {
            "separate" => Some(SellerCopy::Separate),
            "bcc" => Some(SellerCopy::Bcc),
            "none" => Some(SellerCopy::None),
            other => {
                self.error(
                    "mail.seller_copy",
                    format!("`{other}` is not one of `separate`, `bcc`, `none`"),
                );
                None
            }
        };
        self.template("mail.subject", &raw.mail.subject);

        let gateway = match raw.payments.gateway.as_str() {
            "testpay" => Some(GatewayName::Testpay),
            "stripe" => Some(GatewayName::Stripe),
            other => {
                self.error(
                    "payments.gateway",
                    format!("`{other}` is not a gateway Nightshift supports (`stripe`, `testpay`)"),
                );
                None
            }
        };
        let late_payment = match raw.payments.late_payment.as_str() {
            "fulfil_if_in_stock" => Some(LatePayment::FulfilIfInStock),
            "refund" => Some(LatePayment::Refund),
            "hold" => Some(LatePayment::Hold),
            other => {
                self.error(
                    "payments.late_payment",
                    format!("`{other}` is not one of `fulfil_if_in_stock`, `refund`, `hold`"),
                );
                None
            }
        };
        let bank_transfer = raw.payments.bank_transfer.map(|b| self.bank_transfer(b));

        if raw.products.is_empty() {
            self.error("products", "the store has no products");
        }
        // With a broken currency, prices are still checked against a stand-in so every other
        // problem shows in the same run; the store itself is refused anyway.
        let price_currency = currency.unwrap_or(Currency::parse("EUR").expect("EUR is known"));
        let mut products = BTreeMap::new();
        for (sku, product) in raw.products {
            let field = format!("products.{sku}");
            let Some(sku) = self.check(&field, Sku::parse(&sku)) else {
                continue;
            };
            if let Some(p) = self.product(&field, sku.clone(), product, price_currency) {
                products.insert(sku, p);
            }
        }
        // The downloads function may read one bucket only (its template policy names it).
        let mut buckets = products.values().filter_map(|p| match &p.fulfillment {
            Fulfillment::Download { bucket, .. } => Some((p.sku.clone(), bucket.clone())),
            _ => None,
        });
        if let Some((_, first)) = buckets.next() {
            for (sku, bucket) in buckets.filter(|(_, b)| *b != first) {
                self.error(
                    &format!("products.{sku}.fulfillment.bucket"),
                    format!(
                        "every download must come from one bucket; `{bucket}` is not `{first}`"
                    ),
                );
            }
        }
        let shipping = raw.shipping.map(|s| self.shipping(s, price_currency));
        let reminders = self.reminders(&raw.reminders);
        let sms = raw.sms.as_ref().map(|s| self.sms(s));
        let recovery = self.recovery(&raw.recovery);
        let reviews = self.reviews(&raw.reviews);
        let mut webhooks = Vec::new();
        for (i, hook) in raw.webhooks.into_iter().enumerate() {
            let field = format!("webhooks.{i}");
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| hook.url.starts_with(p));
            if !hook.url.starts_with("https://") && !loopback {
                self.error(
                    &format!("{field}.url"),
                    "must be an https:// address (http:// only on this machine, for tests)",
                );
            } else {
                self.url(&format!("{field}.url"), &hook.url);
            }
            self.secret_name(&format!("{field}.secret"), &hook.secret);
            webhooks.push(SellerWebhook {
                url: hook.url,
                secret: hook.secret,
            });
        }
        let ships = products
            .values()
            .any(|p| matches!(p.fulfillment, Fulfillment::Shipment { .. }));
        if ships && shipping.is_none() {
            self.error(
                "shipping",
                "the store sells physical items: add a [shipping] table with `flat_rate` or `rates`",
            );
        }

        Some(Store {
            settings: StoreSettings {
                name: raw.store.name,
                currency: currency?,
                seller_email: seller_email?,
                sender_name: sender_name?,
                sender_email: sender_email?,
                reservation_minutes: u32::try_from(raw.store.reservation_minutes).ok()?,
            },
            branding: Branding {
                logo_url: raw.branding.logo_url,
                primary_color: raw.branding.primary_color,
                font: raw.branding.font,
            },
            mail: MailSettings {
                grouping: grouping?,
                seller_copy: seller_copy?,
                seller_copy_includes_secrets: raw.mail.seller_copy_includes_secrets,
                subject: raw.mail.subject,
            },
            pages: PageTexts {
                processing: raw.pages.processing,
                approved: raw.pages.approved,
                declined: raw.pages.declined,
                expired: raw.pages.expired,
            },
            payments: Payments {
                gateway: gateway?,
                testpay: TestpaySettings {
                    deliver_twice_out_of_order: raw.payments.testpay.deliver_twice_out_of_order,
                },
                allow_testpay_in_prod: raw.payments.allow_testpay_in_prod,
                late_payment: late_payment?,
                bank_transfer: match bank_transfer {
                    Some(b) => Some(b?),
                    None => None,
                },
            },
            shipping: match shipping {
                Some(s) => Some(s?),
                None => None,
            },
            webhooks,
            reminders: reminders?,
            sms: match sms {
                Some(s) => Some(s?),
                None => None,
            },
            recovery: recovery?,
            reviews: reviews?,
            products,
        })
    }

    fn bank_transfer(&mut self, raw: RawBankTransfer) -> Option<BankTransfer> {
        const F: &str = "payments.bank_transfer";
        let mut ok = true;
        if raw.account_holder.trim().is_empty() {
            self.error(&format!("{F}.account_holder"), "must not be empty");
            ok = false;
        }
        let iban: String = raw
            .iban
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if !iban_is_valid(&iban) {
            self.error(
                &format!("{F}.iban"),
                format!(
                    "`{}` is not a valid IBAN (its check digits do not match)",
                    raw.iban
                ),
            );
            ok = false;
        }
        let bic = raw.bic.map(|b| b.trim().to_ascii_uppercase());
        if let Some(bic) = &bic {
            if !(matches!(bic.len(), 8 | 11) && bic.bytes().all(|b| b.is_ascii_alphanumeric())) {
                self.error(
                    &format!("{F}.bic"),
                    format!("`{bic}` is not a BIC of 8 or 11 letters and digits"),
                );
                ok = false;
            }
        }
        if !(1..=60).contains(&raw.pay_within_days) {
            self.error(&format!("{F}.pay_within_days"), "must be from 1 to 60 days");
            ok = false;
        }
        let prefix = &raw.reference_prefix;
        if !((1..=6).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
        {
            self.error(
                &format!("{F}.reference_prefix"),
                "1 to 6 capital letters or digits, such as `NS`",
            );
            ok = false;
        }
        ok.then(|| BankTransfer {
            account_holder: raw.account_holder.trim().to_owned(),
            iban,
            bic,
            bank_name: raw.bank_name,
            instructions: raw.instructions,
            pay_within_days: u32::try_from(raw.pay_within_days).unwrap_or(3),
            reference_prefix: raw.reference_prefix,
        })
    }

    /// `Name <address>` or a bare address.
    fn sender(&mut self, sender: &str) -> (Option<String>, Option<Email>) {
        let (name, address) = match sender.rsplit_once('<') {
            Some((name, rest)) if rest.ends_with('>') => {
                (name.trim().trim_matches('"'), &rest[..rest.len() - 1])
            }
            _ => ("", sender),
        };
        if name.chars().any(|c| c.is_control() || "\"<>".contains(c)) {
            self.error(
                "store.sender",
                "the display name may not hold quotes, angle brackets or control characters",
            );
            return (None, None);
        }
        let email = self.check("store.sender", Email::parse(address));
        (Some(name.to_owned()), email)
    }

    fn product(
        &mut self,
        field: &str,
        sku: Sku,
        raw: RawProduct,
        currency: Currency,
    ) -> Option<Product> {
        self.non_empty(&format!("{field}.name"), &raw.name);
        let price_field = format!("{field}.price");
        let price = self.money(&price_field, &raw.price, currency);
        if price.is_some_and(|p| p.minor() == 0) {
            self.error(&price_field, "must be more than zero");
        }
        let stock = match raw.stock {
            Some(n) if !(0..=1_000_000_000).contains(&n) => {
                self.error(
                    &format!("{field}.stock"),
                    "must be from 0 to 1000000000, or left out for unlimited",
                );
                None
            }
            other => other.map(|n| n as u32),
        };
        let fulfillment = self.fulfillment(&format!("{field}.fulfillment"), &raw.fulfillment);

        let mail_field = format!("{field}.mail");
        if let Some(subject) = &raw.mail.subject {
            self.template(&format!("{mail_field}.subject"), subject);
        }
        let (html, text) = match &raw.mail.template {
            Some(t) => self.template_files(&format!("{mail_field}.template"), t),
            None => (None, None),
        };
        if let Some(url) = raw.review_url.as_deref() {
            if !url.starts_with("https://") {
                self.error(
                    &format!("{field}.review_url"),
                    "must be an https:// address",
                );
            }
        }
        Some(Product {
            review_url: raw.review_url,
            sku,
            name: raw.name,
            description: raw.description,
            price: price?,
            stock,
            fulfillment: fulfillment?,
            mail: ProductMail {
                subject: raw.mail.subject,
                html,
                text,
            },
        })
    }

    /// An amount in the store's currency, written as a string (`"49.00"`) or a whole number.
    fn money(&mut self, field: &str, value: &toml::Value, currency: Currency) -> Option<Money> {
        match value {
            toml::Value::String(s) => self.check(field, Money::parse(s, currency)),
            toml::Value::Integer(n) if *n >= 0 => {
                self.check(field, Money::parse(&n.to_string(), currency))
            }
            toml::Value::Float(_) => {
                self.error(
                    field,
                    "write the amount as a string such as \"49.00\": decimals in TOML are inexact",
                );
                None
            }
            _ => {
                self.error(field, "must be an amount such as \"49.00\"");
                None
            }
        }
    }

    /// `[shipping]`: a flat rate or a table of rates, and the carriers' tracking links.
    fn shipping(&mut self, raw: RawShipping, currency: Currency) -> Option<ShippingSettings> {
        let pricing = match (&raw.flat_rate, raw.rates) {
            (Some(flat), None) => {
                let price = self.money("shipping.flat_rate", flat, currency);
                let countries = raw
                    .countries
                    .map(|list| self.countries("shipping.countries", list, false));
                Some(ShippingPricing::Flat {
                    price: price?,
                    countries: match countries {
                        Some(c) => Some(c?),
                        None => None,
                    },
                })
            }
            (None, Some(rates)) => {
                if raw.countries.is_some() {
                    self.error(
                        "shipping.countries",
                        "not used with `rates`: each rate lists its countries",
                    );
                }
                if rates.is_empty() {
                    self.error("shipping.rates", "list at least one rate");
                }
                let mut table = Vec::new();
                for (i, rate) in rates.into_iter().enumerate() {
                    let field = format!("shipping.rates.{i}");
                    let countries =
                        self.countries(&format!("{field}.countries"), rate.countries, true);
                    let price = self.money(&format!("{field}.price"), &rate.price, currency);
                    let grams = match u32::try_from(rate.up_to_grams) {
                        Ok(g) if g > 0 => Some(g),
                        _ => {
                            self.error(
                                &format!("{field}.up_to_grams"),
                                "must be a positive number of grams",
                            );
                            None
                        }
                    };
                    if let (Some(countries), Some(price), Some(up_to_grams)) =
                        (countries, price, grams)
                    {
                        table.push(ShippingRate {
                            countries,
                            up_to_grams,
                            price,
                        });
                    }
                }
                Some(ShippingPricing::Table(table))
            }
            (Some(_), Some(_)) => {
                self.error(
                    "shipping.rates",
                    "use either `flat_rate` or `rates`, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    "shipping",
                    "set `flat_rate` (one price per order) or `rates` (by weight and country)",
                );
                None
            }
        };
        for (carrier, template) in &raw.carriers {
            let field = format!("shipping.carriers.{carrier}");
            if !template.starts_with("https://") || !template.contains("{tracking}") {
                self.error(
                    &field,
                    "must be an https:// link holding `{tracking}`, where the tracking number goes",
                );
            }
            if carrier.is_empty()
                || !carrier
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                self.error(
                    &field,
                    "carrier names are lower-case letters, digits, `-` and `_`",
                );
            }
        }
        Some(ShippingSettings {
            pricing: pricing?,
            carriers: raw.carriers,
        })
    }

    /// Two-letter country codes (upper case), or `*` where `star` allows it.
    fn countries(&mut self, field: &str, list: Vec<String>, star: bool) -> Option<Vec<String>> {
        let mut ok = !list.is_empty();
        if list.is_empty() {
            self.error(field, "list at least one country");
        }
        for code in &list {
            let valid = crate::domain::country_name(code).is_some() || (star && code == "*");
            if !valid {
                self.error(
                    field,
                    format!(
                        "`{code}` is not an ISO 3166-1 two-letter country code in capitals such as `DE`{}",
                        if star { " (or `*` for anywhere)" } else { "" }
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(list)
    }

    fn fulfillment(&mut self, field: &str, raw: &RawFulfillment) -> Option<Fulfillment> {
        let kind = raw.kind.as_str();
        let provider = raw.provider.as_deref();
        let allowed: &[&str] = match (kind, provider) {
            ("course", Some("builtin")) => &["provider", "course_id", "login_url", "seats"],
            ("course", Some("webhook")) => &["provider", "course_id", "url", "secret", "seats"],
            ("course", Some("moodle")) => {
                &["provider", "course_id", "url", "secret", "role_id", "seats"]
            }
            ("course", _) => &[
                "provider",
                "course_id",
                "login_url",
                "url",
                "secret",
                "role_id",
                "seats",
            ],
            ("license_key", _) => &["seats", "valid_days"],
            ("download", _) => &["bucket", "key", "filename", "valid_days", "max_downloads"],
            ("shipment", _) => &["weight_grams"],
            _ => &[],
        };
        let present = [
            ("provider", raw.provider.is_some()),
            ("course_id", raw.course_id.is_some()),
            ("login_url", raw.login_url.is_some()),
            ("url", raw.url.is_some()),
            ("secret", raw.secret.is_some()),
            ("role_id", raw.role_id.is_some()),
            ("seats", raw.seats.is_some()),
            ("valid_days", raw.valid_days.is_some()),
            ("bucket", raw.bucket.is_some()),
            ("key", raw.key.is_some()),
            ("filename", raw.filename.is_some()),
            ("max_downloads", raw.max_downloads.is_some()),
            ("weight_grams", raw.weight_grams.is_some()),
        ];
        for (name, _) in present.iter().filter(|(n, p)| *p && !allowed.contains(n)) {
            let user = match provider {
                Some(p) if kind == "course" => {
                    format!("fulfillment kind `course` with provider `{p}`")
                }
                _ => format!("fulfillment kind `{kind}`"),
            };
            self.error(&format!("{field}.{name}"), format!("not used by {user}"));
        }
        match kind {
            "course" => {
                let course_id = self.required(field, "course_id", &raw.course_id);
                let provider = match provider {
                    Some("builtin") => {
                        let login_url = self.required(field, "login_url", &raw.login_url);
                        if let Some(u) = &login_url {
                            self.url(&format!("{field}.login_url"), u);
                        }
                        Some(CourseProvider::Builtin {
                            login_url: login_url?,
                        })
                    }
                    Some("webhook") => {
                        let (url, secret) = self.url_and_secret(field, raw);
                        Some(CourseProvider::Webhook {
                            url: url?,
                            secret: secret?,
                        })
                    }
                    Some("moodle") => {
                        let (url, token) = self.url_and_secret(field, raw);
                        if let Some(id) = &course_id {
                            if id.parse::<u32>().is_err() {
                                self.error(
                                    &format!("{field}.course_id"),
                                    "Moodle course ids are numbers (the `id=` in the course's address)",
                                );
                            }
                        }
                        let role_id = match raw.role_id {
                            None => Some(5),
                            Some(n) if (1..=1_000_000).contains(&n) => Some(n as u32),
                            Some(_) => {
                                self.error(
                                    &format!("{field}.role_id"),
                                    "must be a Moodle role id (5 is `student`)",
                                );
                                None
                            }
                        };
                        Some(CourseProvider::Moodle {
                            url: url?.trim_end_matches('/').to_owned(),
                            token: token?,
                            role_id: role_id?,
                        })
                    }
                    Some(other) => {
                        self.error(
                            &format!("{field}.provider"),
                            format!("`{other}` is not one of `builtin`, `webhook`, `moodle`"),
                        );
                        None
                    }
                    None => {
                        self.error(
                            &format!("{field}.provider"),
                            "missing: `builtin`, `webhook` or `moodle`",
                        );
                        None
                    }
                };
                let seats = match &raw.seats {
                    None => Some(false),
                    Some(toml::Value::Boolean(b)) => Some(*b),
                    Some(_) => {
                        self.error(
                            &format!("{field}.seats"),
                            "must be `true` (sell the course by the seat, to teams) or `false`",
                        );
                        None
                    }
                };
                Some(Fulfillment::Course {
                    course_id: course_id?,
                    provider: provider?,
                    seats: seats?,
                })
            }
            "license_key" => {
                let seats = match raw.seats.as_ref().map(toml::Value::as_integer) {
                    None => Some(1),
                    Some(Some(n)) if (1..=10_000).contains(&n) => Some(n as u16),
                    Some(_) => {
                        self.error(&format!("{field}.seats"), "must be from 1 to 10000");
                        None
                    }
                };
                let valid_days = match raw.valid_days {
                    None => Some(None),
                    Some(n) if (1..=36_500).contains(&n) => Some(Some(n as u32)),
                    Some(_) => {
                        self.error(
                            &format!("{field}.valid_days"),
                            "must be from 1 to 36500, or left out for a key that never expires",
                        );
                        None
                    }
                };
                Some(Fulfillment::LicenseKey {
                    seats: seats?,
                    valid_days: valid_days?,
                })
            }
            "download" => self.download(field, raw),
            "shipment" => match raw.weight_grams {
                None => Some(Fulfillment::Shipment { weight_grams: 0 }),
                Some(g) if (0..=1_000_000).contains(&g) => Some(Fulfillment::Shipment {
                    weight_grams: g as u32,
                }),
                Some(_) => {
                    self.error(
                        &format!("{field}.weight_grams"),
                        "must be from 0 to 1000000",
                    );
                    None
                }
            },
            other => {
                self.error(
                    &format!("{field}.kind"),
                    format!(
                        "`{other}` is not one of `course`, `license_key`, `download`, `shipment`"
                    ),
                );
                None
            }
        }
    }

    fn download(&mut self, field: &str, raw: &RawFulfillment) -> Option<Fulfillment> {
        let bucket = self.required(field, "bucket", &raw.bucket);
        if let Some(b) = &bucket {
            if !bucket_name_is_valid(b) {
                self.error(
                    &format!("{field}.bucket"),
                    "must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens",
                );
            }
        }
        let key = self.required(field, "key", &raw.key);
        if let Some(k) = &key {
            // The dev stack serves keys from a folder: no way out of it.
            let escapes =
                k.starts_with('/') || k.split('/').any(|p| p.is_empty() || p == "." || p == "..");
            if escapes || k.len() > 1024 || k.chars().any(char::is_control) {
                self.error(
                    &format!("{field}.key"),
                    "must be an object key such as `books/guide.pdf` (no leading `/`, empty, `.` or `..` parts)",
                );
            }
        }
        let filename = match &raw.filename {
            Some(name) => name.clone(),
            None => key
                .as_deref()
                .and_then(|k| k.rsplit('/').next())
                .unwrap_or_default()
                .to_owned(),
        };
        if raw.filename.is_some()
            && (filename.is_empty()
                || filename.len() > 200
                || filename
                    .chars()
                    .any(|c| c.is_control() || "\"\\/".contains(c)))
        {
            self.error(
                &format!("{field}.filename"),
                "must be a file name without quotes, slashes or control characters",
            );
        }
        let valid_days = match raw.valid_days {
            None => Some(7),
            Some(n) if (1..=3650).contains(&n) => Some(n as u32),
            Some(_) => {
                self.error(&format!("{field}.valid_days"), "must be from 1 to 3650");
                None
            }
        };
        let max_downloads = match raw.max_downloads {
            None => Some(5),
            Some(n) if (1..=1000).contains(&n) => Some(n as u32),
            Some(_) => {
                self.error(&format!("{field}.max_downloads"), "must be from 1 to 1000");
                None
            }
        };
        Some(Fulfillment::Download {
            bucket: bucket?,
            key: key?,
            filename,
            valid_days: valid_days?,
            max_downloads: max_downloads?,
        })
    }

    /// A provider's address and the name of the secret it authenticates with.
    fn url_and_secret(
        &mut self,
        field: &str,
        raw: &RawFulfillment,
    ) -> (Option<String>, Option<String>) {
        let url = self.required(field, "url", &raw.url);
        if let Some(u) = &url {
            self.url(&format!("{field}.url"), u);
        }
        let secret = self.required(field, "secret", &raw.secret);
        if let Some(s) = &secret {
            self.secret_name(&format!("{field}.secret"), s);
        }
        (url, secret)
    }

    fn secret_name(&mut self, field: &str, name: &str) {
        let named = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !named {
            self.error(
                field,
                "the name of a secret (a-z, 0-9, `-`, `_`), not the secret itself",
            );
        }
    }

    fn required(&mut self, field: &str, name: &str, value: &Option<String>) -> Option<String> {
        match value {
            Some(v) if !v.trim().is_empty() => Some(v.clone()),
            _ => {
                self.error(&format!("{field}.{name}"), "missing");
                None
            }
        }
    }

    /// A template named `mail/x` is the pair `mail/x.html` and `mail/x.txt` beside store.toml.
    fn template_files(&mut self, field: &str, name: &str) -> (Option<String>, Option<String>) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let read = |v: &mut Self, ext: &str| {
            let file = dir.join(format!("{name}.{ext}"));
            match std::fs::read_to_string(&file) {
                Ok(source) => {
                    v.template(field, &source);
                    v.files.push(file);
                    Some(source)
                }
                Err(e) => {
                    v.error(field, format!("cannot read {}: {e}", file.display()));
                    None
                }
            }
        };
        let html = read(self, "html");
        let text = read(self, "txt");
        (html, text)
    }
}

/// S3's rules for a bucket name, as far as a name can be checked without AWS.
fn bucket_name_is_valid(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r##"
[store]
name = "Test Store"
currency = "EUR"
seller_email = "seller@example.com"
sender = "Test Store <orders@example.com>"

[payments]
gateway = "testpay"

[products.course]
name = "A course"
price = "49.00"
fulfillment = { kind = "course", provider = "builtin", course_id = "c1", login_url = "https://learn.example.com" }

[products.book]
name = "A book"
price = 20
stock = 3
fulfillment = { kind = "shipment" }

[shipping]
flat_rate = "4.90"
"##;

    const FLAT: &str = "\n[shipping]\nflat_rate = \"4.90\"\n";

    fn errors(text: &str) -> Vec<String> {
        match Store::parse(text, Path::new("store.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_course_is_sold_by_the_seat_only_when_asked_and_seats_mean_what_the_kind_says() {
        let store = Store::parse(GOOD, Path::new("store.toml")).unwrap();
        let course = store.product(&Sku::parse("course").unwrap()).unwrap();
        assert!(!course.sells_seats());
        assert_eq!(course.units_per_order(), 1);
        let team = GOOD.replace(
            "login_url = \"https://learn.example.com\" }",
            "login_url = \"https://learn.example.com\", seats = true }",
        );
        let store = Store::parse(&team, Path::new("store.toml")).unwrap();
        let course = store.product(&Sku::parse("course").unwrap()).unwrap();
        assert!(course.sells_seats());
        assert_eq!(course.units_per_order(), crate::domain::Quantity::MAX);

        let bad = GOOD.replace(
            "login_url = \"https://learn.example.com\" }",
            "login_url = \"https://learn.example.com\", seats = 5 }",
        );
        let errs = errors(&bad);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].ends_with("products.course.fulfillment.seats: must be `true` (sell the course by the seat, to teams) or `false`"), "{errs:?}");
        let bad = GOOD.replace(
            "fulfillment = { kind = \"course\", provider = \"builtin\", course_id = \"c1\", login_url = \"https://learn.example.com\" }",
            "fulfillment = { kind = \"license_key\", seats = true }",
        );
        let errs = errors(&bad);
        assert!(
            errs.len() == 1
                && errs[0].ends_with("products.course.fulfillment.seats: must be from 1 to 10000"),
            "{errs:?}"
        );
    }

    #[test]
    fn bank_transfer_details_are_checked() {
        let good = GOOD.replace(
            "[payments]\ngateway = \"testpay\"",
            "[payments]\ngateway = \"stripe\"\n[payments.bank_transfer]\naccount_holder = \"Test Store Ltd\"\niban = \"DE89 3704 0044 0532 0130 00\"\nbic = \"COBADEFFXXX\"",
        );
        let store = Store::parse(&good, Path::new("store.toml")).unwrap();
        let bank = store.payments.bank_transfer.unwrap();
        assert_eq!(bank.iban, "DE89370400440532013000");
        assert_eq!(bank.iban_display(), "DE89 3704 0044 0532 0130 00");
        assert_eq!(bank.pay_within_days, 3);
        assert_eq!(store.payments.gateway, GatewayName::Stripe);

        let bad = good
            .replace("0532 0130 00", "0532 0130 01")
            .replace("COBADEFFXXX", "COBA");
        assert_eq!(
            errors(&bad),
            vec![
                "store.toml:12: payments.bank_transfer.iban: `DE89 3704 0044 0532 0130 01` is not a valid IBAN (its check digits do not match)",
                "store.toml:13: payments.bank_transfer.bic: `COBA` is not a BIC of 8 or 11 letters and digits",
            ]
        );
    }

    #[test]
    fn licence_and_moodle_settings_are_checked_with_their_lines() {
        let course = "fulfillment = { kind = \"course\", provider = \"builtin\", course_id = \"c1\", login_url = \"https://learn.example.com\" }";
        let good = GOOD.replace(course, "fulfillment = { kind = \"course\", provider = \"moodle\", url = \"https://moodle.example.com/\", secret = \"moodle-token\", course_id = \"7\" }")
            .replace("fulfillment = { kind = \"shipment\" }", "fulfillment = { kind = \"license_key\", valid_days = 30 }");
        let store = Store::parse(&good, Path::new("store.toml")).unwrap();
        let course = store.product(&Sku::parse("course").unwrap()).unwrap();
        assert_eq!(
            course.fulfillment,
            Fulfillment::Course {
                course_id: "7".into(),
                provider: CourseProvider::Moodle {
                    url: "https://moodle.example.com".into(),
                    token: "moodle-token".into(),
                    role_id: 5
                },
                seats: false,
            }
        );
        let book = store.product(&Sku::parse("book").unwrap()).unwrap();
        assert_eq!(
            book.fulfillment,
            Fulfillment::LicenseKey {
                seats: 1,
                valid_days: Some(30)
            }
        );
        assert!(store.sells_license_keys());

        let bad = good
            .replace(
                "course_id = \"7\"",
                "course_id = \"intro\", login_url = \"https://x.example.com\"",
            )
            .replace(
                "valid_days = 30",
                "valid_days = 0, seats = 2, secret = \"x\"",
            );
        assert_eq!(
            errors(&bad),
            vec![
                "store.toml:14: products.course.fulfillment.login_url: not used by fulfillment kind `course` with provider `moodle`",
                "store.toml:14: products.course.fulfillment.course_id: Moodle course ids are numbers (the `id=` in the course's address)",
                "store.toml:20: products.book.fulfillment.secret: not used by fulfillment kind `license_key`",
                "store.toml:20: products.book.fulfillment.valid_days: must be from 1 to 36500, or left out for a key that never expires",
            ]
        );
    }

    #[test]
    fn a_good_store_parses_with_defaults() {
        let store = Store::parse(GOOD, Path::new("store.toml")).unwrap();
        assert_eq!(store.settings.sender_name, "Test Store");
        assert_eq!(store.settings.reservation_minutes, 30);
        assert_eq!(store.mail.grouping, Grouping::Order);
        let book = store.product(&Sku::parse("book").unwrap()).unwrap();
        assert_eq!(book.price.minor(), 2000);
        assert_eq!(book.stock, Some(3));
    }

    #[test]
    fn a_float_price_is_reported_with_file_line_and_field() {
        let text = GOOD.replace("price = \"49.00\"", "price = 49.99");
        assert_eq!(errors(&text), vec![
            "store.toml:13: products.course.price: write the amount as a string such as \"49.00\": decimals in TOML are inexact"
        ]);
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let text = GOOD
            .replace("currency = \"EUR\"", "currency = \"EURO\"")
            .replace("seller@example.com", "seller-at-example")
            .replace("stock = 3", "stock = -1");
        let errs = errors(&text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("store.toml:4: store.currency: "),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("store.toml:5: store.seller_email: "),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("store.toml:19: products.book.stock: "),
            "{errs:?}"
        );
    }

    #[test]
    fn an_unknown_field_is_reported_at_its_line() {
        let text = GOOD.replace("stock = 3", "stok = 3");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("store.toml:19: products.book.stok: unknown field `stok`"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_missing_course_setting_names_the_field() {
        let text = GOOD.replace(", login_url = \"https://learn.example.com\"", "");
        assert_eq!(
            errors(&text),
            vec!["store.toml:14: products.course.fulfillment.login_url: missing"]
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let text = GOOD.replace("[payments]", "[payments");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("store.toml:8: "), "{errs:?}");
    }

    #[test]
    fn a_broken_subject_template_is_refused() {
        let text = GOOD.replace("[payments]", "[mail]\nsubject = \"{{ oops\"\n\n[payments]");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("store.toml:9: mail.subject: template error"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_css_injection_in_branding_is_refused() {
        let text = GOOD.replace(
            "[payments]",
            "[branding]\nfont = \"x;}body{display:none\"\n\n[payments]",
        );
        assert_eq!(errors(&text).len(), 1);
    }

    #[test]
    fn download_settings_are_checked_with_their_lines() {
        let course = "fulfillment = { kind = \"course\", provider = \"builtin\", course_id = \"c1\", login_url = \"https://learn.example.com\" }";
        let good = GOOD.replace(
            course,
            "fulfillment = { kind = \"download\", bucket = \"shop-files\", key = \"books/guide.pdf\" }",
        );
        let store = Store::parse(&good, Path::new("store.toml")).unwrap();
        assert_eq!(
            store
                .product(&Sku::parse("course").unwrap())
                .unwrap()
                .fulfillment,
            Fulfillment::Download {
                bucket: "shop-files".into(),
                key: "books/guide.pdf".into(),
                filename: "guide.pdf".into(),
                valid_days: 7,
                max_downloads: 5,
            }
        );
        assert_eq!(store.downloads_bucket(), Some("shop-files"));

        let bad = good
            .replace(
                "bucket = \"shop-files\"",
                "bucket = \"Shop_Files\", seats = 2",
            )
            .replace(
                "key = \"books/guide.pdf\"",
                "key = \"../etc/passwd\", max_downloads = 0, filename = \"a\\\"b\"",
            );
        assert_eq!(
            errors(&bad),
            vec![
                "store.toml:14: products.course.fulfillment.seats: not used by fulfillment kind `download`",
                "store.toml:14: products.course.fulfillment.bucket: must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens",
                "store.toml:14: products.course.fulfillment.key: must be an object key such as `books/guide.pdf` (no leading `/`, empty, `.` or `..` parts)",
                "store.toml:14: products.course.fulfillment.filename: must be a file name without quotes, slashes or control characters",
                "store.toml:14: products.course.fulfillment.max_downloads: must be from 1 to 1000",
            ]
        );

        // Two downloads from two buckets: the downloads function reads only one.
        let two = good.replace(
            "fulfillment = { kind = \"shipment\" }",
            "fulfillment = { kind = \"download\", bucket = \"other-files\", key = \"b.pdf\" }",
        );
        assert_eq!(
            errors(&two),
            vec!["store.toml:14: products.course.fulfillment.bucket: every download must come from one bucket; `shop-files` is not `other-files`"]
        );
    }

    #[test]
    fn shipping_is_required_for_physical_items_and_checked_with_its_lines() {
        assert_eq!(
            errors(&GOOD.replace(FLAT, "")),
            vec!["store.toml:1: shipping: the store sells physical items: add a [shipping] table with `flat_rate` or `rates`"]
        );
        let table = GOOD.replace(FLAT, "").replace(
            "[products.course]",
            "[shipping]\nrates = [\n  { countries = [\"DE\"], up_to_grams = 1000, price = \"4.90\" },\n  { countries = [\"*\"], up_to_grams = 5000, price = \"15.00\" },\n]\ncarriers = { dhl = \"https://t.example/{tracking}\" }\n\n[products.course]",
        );
        let store = Store::parse(&table, Path::new("store.toml")).unwrap();
        let shipping = store.shipping.as_ref().unwrap();
        let eur = |minor| Money::from_minor(minor, store.settings.currency);
        assert_eq!(shipping.quote("DE", 1000), Ok(eur(490)));
        assert_eq!(
            shipping.quote("DE", 5001),
            Err(ShippingRefused::TooHeavy {
                country: "DE".into(),
                grams: 5001
            })
        );
        assert_eq!(shipping.quote("FR", 1001), Ok(eur(1500)));
        assert_eq!(
            shipping.quote("DE", 1001),
            Ok(eur(1500)),
            "then the `*` rate"
        );
        assert_eq!(
            shipping.tracking_url("dhl", "JJ 12/3"),
            Some("https://t.example/JJ%2012%2F3".into())
        );

        let flat = GOOD.replace(FLAT, "").replace(
            "[products.course]",
            "[shipping]\nflat_rate = \"3.50\"\ncountries = [\"DE\", \"AT\"]\n\n[products.course]",
        );
        let store = Store::parse(&flat, Path::new("store.toml")).unwrap();
        let shipping = store.shipping.as_ref().unwrap();
        assert_eq!(shipping.quote("AT", 90_000).map(|m| m.minor()), Ok(350));
        assert_eq!(
            shipping.quote("CH", 1),
            Err(ShippingRefused::Country("CH".into()))
        );

        let bad = GOOD.replace(FLAT, "").replace(
            "[products.course]",
            "[shipping]\nrates = [{ countries = [\"de\"], up_to_grams = 0, price = 4.9 }]\ncountries = [\"DE\"]\ncarriers = { DHL = \"http://t.example/\" }\n\n[products.course]",
        ).replace("fulfillment = { kind = \"shipment\" }", "fulfillment = { kind = \"shipment\", weight_grams = -1 }");
        assert_eq!(
            errors(&bad),
            vec![
                "store.toml:12: shipping.rates.0.countries: `de` is not an ISO 3166-1 two-letter country code in capitals such as `DE` (or `*` for anywhere)",
                "store.toml:12: shipping.rates.0.price: write the amount as a string such as \"49.00\": decimals in TOML are inexact",
                "store.toml:12: shipping.rates.0.up_to_grams: must be a positive number of grams",
                "store.toml:13: shipping.countries: not used with `rates`: each rate lists its countries",
                "store.toml:14: shipping.carriers.DHL: must be an https:// link holding `{tracking}`, where the tracking number goes",
                "store.toml:14: shipping.carriers.DHL: carrier names are lower-case letters, digits, `-` and `_`",
                "store.toml:25: products.book.fulfillment.weight_grams: must be from 0 to 1000000",
            ]
        );
    }

    #[test]
    fn seller_webhooks_need_https_and_a_secret_name() {
        let good = format!(
            "{GOOD}\n[[webhooks]]\nurl = \"https://erp.example.com/orders\"\nsecret = \"erp\"\n"
        );
        let store = Store::parse(&good, Path::new("store.toml")).unwrap();
        assert_eq!(
            store.webhooks,
            vec![SellerWebhook {
                url: "https://erp.example.com/orders".into(),
                secret: "erp".into()
            }]
        );
        let bad = good
            .replace("https://erp.example.com", "http://erp.example.com")
            .replace("secret = \"erp\"", "secret = \"whsec_ABC\"");
        assert_eq!(
            errors(&bad),
            vec![
                "store.toml:25: webhooks.0.url: must be an https:// address (http:// only on this machine, for tests)",
                "store.toml:25: webhooks.0.secret: the name of a secret (a-z, 0-9, `-`, `_`), not the secret itself",
            ]
        );
    }
}
