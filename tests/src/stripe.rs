//! A fake Stripe API for Checkout Sessions. It checks every form field Nightshift sends the
//! way Stripe would (unknown or missing parameters are refused with Stripe's error shape),
//! keeps sessions, honours `Idempotency-Key`, and lets a test complete or expire a session and
//! build the signed webhook Stripe would send.

use crate::fake_http::{serve, Request};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const SECRET_KEY: &str = "sk_test_nightshift_fake";
pub const WEBHOOK_SECRET: &str = "whsec_nightshift_fake_endpoint";

#[derive(Default)]
pub struct StripeLog {
    pub sessions: BTreeMap<String, Value>,
    /// Every `POST /v1/checkout/sessions` form, as sent.
    pub created: Vec<BTreeMap<String, String>>,
    /// Idempotency key → (the form it was first used with, the session it made).
    idempotency: HashMap<String, (BTreeMap<String, String>, String)>,
    /// Requests refused, with Stripe's message.
    pub refused: Vec<String>,
    pub retrievals: usize,
    events: usize,
    /// Sessions expired through `POST /v1/checkout/sessions/{id}/expire`.
    pub expired: Vec<String>,
    /// Every refund made (`POST /v1/refunds`), as its form; one per idempotency key.
    pub refunds: Vec<BTreeMap<String, String>>,
    refund_keys: HashMap<String, Value>,
    /// Every event made, delivered or not, for `GET /v1/events`.
    listed: Vec<Value>,
    /// Requests to `GET /v1/events`, as their query strings.
    pub event_lists: Vec<String>,
}

pub struct FakeStripe {
    pub url: String,
    pub log: Arc<Mutex<StripeLog>>,
}

type Answer = (u16, Value);

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let log = Arc::new(Mutex::new(StripeLog::default()));
        let shared = log.clone();
        let url = serve(move |request| {
            let (status, body) = handle(request, &shared);
            (status, body.to_string())
        })
        .await;
        FakeStripe { url, log }
    }

    /// The environment a dev stack needs to use this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STRIPE_API_BASE", self.url.clone()),
            ("STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ]
    }

    pub fn session(&self, id: &str) -> Value {
        self.log.lock().expect("lock").sessions[id].clone()
    }

    pub fn created(&self) -> Vec<BTreeMap<String, String>> {
        self.log.lock().expect("lock").created.clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.log.lock().expect("lock").refused.clone()
    }

    pub fn expired_by_api(&self) -> Vec<String> {
        self.log.lock().expect("lock").expired.clone()
    }

    pub fn refunds(&self) -> Vec<BTreeMap<String, String>> {
        self.log.lock().expect("lock").refunds.clone()
    }

    /// The buyer paid on Stripe's page (`paid`), or started a bank debit (`unpaid`).
    pub fn complete(&self, id: &str, payment_status: &str) {
        let mut log = self.log.lock().expect("lock");
        let session = log.sessions.get_mut(id).expect("a session");
        session["status"] = json!("complete");
        session["payment_status"] = json!(payment_status);
    }

    pub fn expire(&self, id: &str) {
        let mut log = self.log.lock().expect("lock");
        let session = log.sessions.get_mut(id).expect("a session");
        session["status"] = json!("expired");
    }

    /// The event Stripe would send about a session now, as `(body, Stripe-Signature)`.
    pub fn event(&self, kind: &str, session_id: &str, timestamp: i64) -> (Vec<u8>, String) {
        let object = self.session(session_id);
        self.signed_event(kind, object, timestamp)
    }

    /// An event about any object, signed with the endpoint's secret.
    pub fn signed_event(&self, kind: &str, object: Value, timestamp: i64) -> (Vec<u8>, String) {
        let n = {
            let mut log = self.log.lock().expect("lock");
            log.events += 1;
            log.events
        };
        let event = json!({
            "id": format!("evt_fake_{n}"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": timestamp,
            "livemode": false,
            "type": kind,
            "data": { "object": object },
        });
        self.log.lock().expect("lock").listed.push(event.clone());
        let body = event.to_string().into_bytes();
        // Stripe's scheme and Nightshift-Signature's are the same HMAC; the harness's own
        // signer keeps the black-box tests independent of the code under test.
        let header = crate::sign(WEBHOOK_SECRET, timestamp, &body);
        (body, header)
    }
}

fn handle(request: Request, log: &Mutex<StripeLog>) -> Answer {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorised = header("authorization") == Some(format!("Bearer {SECRET_KEY}"));
    let (method, path) = (request.method.clone(), request.path.clone());
    let query = request.query.clone();
    let key = header("idempotency-key");
    let form_encoded =
        header("content-type").is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = request.body;
    let mut log = log.lock().expect("lock");
    if !authorised {
        return refuse(&mut log, 401, "Invalid API Key provided");
    }
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/checkout/sessions") => {
            if !form_encoded {
                return refuse(&mut log, 400, "the body must be form-encoded");
            }
            let form: BTreeMap<String, String> = form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            create(&mut log, form, key)
        }
        ("POST", p) if p.starts_with("/v1/checkout/sessions/") && p.ends_with("/expire") => {
            let id = &p["/v1/checkout/sessions/".len()..p.len() - "/expire".len()];
            let Some(session) = log.sessions.get_mut(id) else {
                return refuse(&mut log, 404, &format!("No such checkout.session: '{id}'"));
            };
            if session["status"] != "open" {
                return refuse(
                    &mut log,
                    400,
                    "This Checkout Session is not in an expireable state.",
                );
            }
            session["status"] = json!("expired");
            let session = session.clone();
            log.expired.push(id.to_owned());
            (200, session)
        }
        ("POST", "/v1/refunds") => {
            if !form_encoded {
                return refuse(&mut log, 400, "the body must be form-encoded");
            }
            let form: BTreeMap<String, String> = form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            refund(&mut log, form, key)
        }
        ("GET", "/v1/events") => {
            let query = query.unwrap_or_default();
            log.event_lists.push(query.clone());
            list_events(&log, &query)
        }
        ("GET", p) if p.starts_with("/v1/checkout/sessions/") => {
            log.retrievals += 1;
            let id = &p["/v1/checkout/sessions/".len()..];
            match log.sessions.get(id) {
                Some(session) => (200, session.clone()),
                None => refuse(&mut log, 404, &format!("No such checkout.session: '{id}'")),
            }
        }
        _ => refuse(&mut log, 404, "Unrecognized request URL"),
    }
}

fn refuse(log: &mut StripeLog, status: u16, message: &str) -> Answer {
    log.refused.push(message.to_owned());
    (
        status,
        json!({ "error": { "type": "invalid_request_error", "message": message } }),
    )
}

fn now() -> i64 {
    crate::now()
}

/// Checks a session form as Stripe does, field by field.
fn check(form: &BTreeMap<String, String>) -> Result<(), String> {
    const TOP: [&str; 8] = [
        "mode",
        "client_reference_id",
        "customer_email",
        "metadata[order_id]",
        "payment_intent_data[metadata][order_id]",
        "success_url",
        "cancel_url",
        "expires_at",
    ];
    const LINE: [&str; 4] = [
        "[quantity]",
        "[price_data][currency]",
        "[price_data][unit_amount]",
        "[price_data][product_data][name]",
    ];
    for key in form.keys() {
        let known = TOP.contains(&key.as_str())
            || key.strip_prefix("line_items[").is_some_and(|rest| {
                rest.split_once(']')
                    .is_some_and(|(i, field)| i.parse::<usize>().is_ok() && LINE.contains(&field))
            });
        if !known {
            return Err(format!("Received unknown parameter: {key}"));
        }
    }
    for key in TOP {
        if form.get(key).is_none_or(|v| v.is_empty()) {
            return Err(format!("Missing required param: {key}."));
        }
    }
    if form["mode"] != "payment" {
        return Err("mode must be `payment`".into());
    }
    if form["metadata[order_id]"] != form["client_reference_id"]
        || form["payment_intent_data[metadata][order_id]"] != form["client_reference_id"]
    {
        return Err("the order id differs between fields".into());
    }
    if !form["customer_email"].contains('@') {
        return Err("Invalid email address".into());
    }
    for url in ["success_url", "cancel_url"] {
        if !form[url].starts_with("http") {
            return Err(format!("Not a valid URL: {url}"));
        }
    }
    if !form["success_url"].contains("session_id={CHECKOUT_SESSION_ID}") {
        return Err("success_url lacks {CHECKOUT_SESSION_ID}".into());
    }
    let expires_at: i64 = form["expires_at"]
        .parse()
        .map_err(|_| "Invalid integer: expires_at".to_owned())?;
    let now = now();
    if expires_at < now + 30 * 60 || expires_at > now + 24 * 3600 {
        return Err(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now".into(),
        );
    }
    let lines = form.keys().filter(|k| k.ends_with("[quantity]")).count();
    if lines == 0 {
        return Err("line_items is required in payment mode".into());
    }
    for i in 0..lines {
        let field = |f: &str| form.get(&format!("line_items[{i}]{f}"));
        for f in LINE {
            if field(f).is_none() {
                return Err(format!("Missing required param: line_items[{i}]{f}."));
            }
        }
        if field("[quantity]")
            .and_then(|q| q.parse::<u32>().ok())
            .is_none_or(|q| q == 0)
        {
            return Err(format!("Invalid quantity for line_items[{i}]"));
        }
        if field("[price_data][unit_amount]")
            .and_then(|a| a.parse::<i64>().ok())
            .is_none_or(|a| a < 0)
        {
            return Err(format!(
                "Invalid integer: line_items[{i}][price_data][unit_amount]"
            ));
        }
        let currency = field("[price_data][currency]").map_or("", String::as_str);
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!("Invalid currency: {currency}"));
        }
    }
    Ok(())
}

fn create(log: &mut StripeLog, form: BTreeMap<String, String>, key: Option<String>) -> Answer {
    let Some(key) = key else {
        return refuse(log, 400, "this fake insists on an Idempotency-Key");
    };
    if let Some((first, id)) = log.idempotency.get(&key) {
        if *first != form {
            return refuse(
                log,
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        let session = log.sessions[id].clone();
        return (200, session);
    }
    if let Err(message) = check(&form) {
        return refuse(log, 400, &message);
    }
    let lines = form.keys().filter(|k| k.ends_with("[quantity]")).count();
    let total: i64 = (0..lines)
        .map(|i| {
            let q: i64 = form[&format!("line_items[{i}][quantity]")]
                .parse()
                .unwrap_or(0);
            let a: i64 = form[&format!("line_items[{i}][price_data][unit_amount]")]
                .parse()
                .unwrap_or(0);
            q * a
        })
        .sum();
    let id = format!("cs_test_fake{}", log.sessions.len() + 1);
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("https://checkout.stripe.test/c/pay/{id}"),
        "mode": "payment",
        "status": "open",
        "payment_status": "unpaid",
        "amount_total": total,
        "currency": form["line_items[0][price_data][currency]"],
        "client_reference_id": form["client_reference_id"],
        "customer_email": form["customer_email"],
        "metadata": { "order_id": form["metadata[order_id]"] },
        "payment_intent": format!("pi_fake{}", log.sessions.len() + 1),
        "expires_at": form["expires_at"].parse::<i64>().unwrap_or(0),
        "success_url": form["success_url"],
        "cancel_url": form["cancel_url"],
    });
    log.sessions.insert(id.clone(), session.clone());
    log.created.push(form.clone());
    log.idempotency.insert(key, (form, id));
    (200, session)
}

/// A refund of a paid session's whole PaymentIntent, once per idempotency key.
fn refund(log: &mut StripeLog, form: BTreeMap<String, String>, key: Option<String>) -> Answer {
    let Some(key) = key else {
        return refuse(log, 400, "this fake insists on an Idempotency-Key");
    };
    if let Some(answer) = log.refund_keys.get(&key) {
        return (200, answer.clone());
    }
    if let Some(unknown) = form.keys().find(|k| {
        !["payment_intent", "amount", "metadata[order_id]", "reason"].contains(&k.as_str())
    }) {
        return refuse(log, 400, &format!("Received unknown parameter: {unknown}"));
    }
    let Some(intent) = form.get("payment_intent") else {
        return refuse(log, 400, "One of the following params should be provided for this request: payment_intent or charge.");
    };
    let Some(session) = log
        .sessions
        .values()
        .find(|s| s["payment_intent"] == intent.as_str())
        .cloned()
    else {
        return refuse(log, 404, &format!("No such payment_intent: '{intent}'"));
    };
    if session["payment_status"] != "paid" {
        return refuse(
            log,
            400,
            "This PaymentIntent does not have a successful charge to refund.",
        );
    }
    let answer = json!({
        "id": format!("re_fake{}", log.refunds.len() + 1),
        "object": "refund",
        "amount": session["amount_total"],
        "currency": session["currency"],
        "payment_intent": intent,
        "status": "succeeded",
    });
    log.refunds.push(form);
    log.refund_keys.insert(key, answer.clone());
    (200, answer)
}

/// `GET /v1/events`: newest first, filtered by `types[]` and `created[gte]`, 100 at most per
/// page with `starting_after`.
fn list_events(log: &StripeLog, query: &str) -> Answer {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let types: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "types[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let since: i64 = pairs
        .iter()
        .find(|(k, _)| k == "created[gte]")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = pairs
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(10);
    let after = pairs
        .iter()
        .find(|(k, _)| k == "starting_after")
        .map(|(_, v)| v.as_str());
    let mut matching: Vec<&Value> = log
        .listed
        .iter()
        .rev()
        .filter(|e| types.is_empty() || types.contains(&e["type"].as_str().unwrap_or("")))
        .filter(|e| e["created"].as_i64().unwrap_or(0) >= since)
        .collect();
    if let Some(after) = after {
        match matching.iter().position(|e| e["id"] == after) {
            Some(i) => matching.drain(..=i).for_each(drop),
            None => matching.clear(),
        }
    }
    let has_more = matching.len() > limit;
    matching.truncate(limit);
    (
        200,
        json!({ "object": "list", "url": "/v1/events", "has_more": has_more, "data": matching }),
    )
}
