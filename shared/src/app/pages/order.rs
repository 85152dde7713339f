//! The order page (HTML and JSON), built from one view of the order.

use crate::app::render::{
    line_views, rendered_lines, utc_date_time, with_seat_links, LineView, MoneyView, RenderError,
    RenderedLine, ShippingView, StoreView, Templates, TransferView,
};
use crate::app::Urls;
use crate::config::Store;
use crate::domain::{Access, FulfillmentKind, Order, OrderStatus, OrderToken};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the order page shows, from the order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageState {
    /// Payment or fulfilment is under way; the page refreshes itself.
    Processing,
    /// Waiting for the buyer's bank transfer; the page shows the bank details.
    AwaitingTransfer,
    Approved,
    Declined,
    Expired,
    Cancelled,
}

impl PageState {
    pub fn of(order: &Order) -> PageState {
        match order.status {
            OrderStatus::PendingPayment | OrderStatus::PaymentProcessing => PageState::Processing,
            OrderStatus::AwaitingTransfer => PageState::AwaitingTransfer,
            OrderStatus::Paid if order.lines.iter().any(|l| !l.state.is_settled()) => {
                PageState::Processing
            }
            OrderStatus::Paid
            | OrderStatus::AwaitingShipment
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Fulfilled => PageState::Approved,
            OrderStatus::Declined => PageState::Declined,
            OrderStatus::Expired => PageState::Expired,
            OrderStatus::Cancelled => PageState::Cancelled,
        }
    }
}

/// The order page's JSON (`GET /orders/{token}.json`).
#[derive(Debug, Clone, Serialize)]
pub struct OrderJson {
    pub order_id: String,
    pub status: OrderStatus,
    pub state: PageState,
    pub lines: Vec<LineView>,
    pub total: MoneyView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingView>,
}

pub fn order_json(order: &Order, templates: &Templates) -> OrderJson {
    OrderJson {
        order_id: order.id.to_string(),
        status: order.status,
        state: PageState::of(order),
        lines: line_views(order, templates),
        total: order.total.into(),
        shipping: ShippingView::of(order),
    }
}

/// How often the page reloads itself (without JavaScript) while a confirmation is expected,
/// and how many times before it stops and offers a link instead (WCAG 2.2.1: no endless
/// timed refresh). With JavaScript it asks the order's JSON once a second instead, for as
/// long, and reloads only when the order has moved on.
pub const REFRESH_SECONDS: u32 = 3;
pub const REFRESH_LIMIT: u32 = 20;

/// What the order page knows besides the order: this visit and the order's live counters.
#[derive(Debug, Clone, Default)]
pub struct Visit {
    /// The buyer is back from the gateway, or the page reloaded itself (`?poll=N`).
    pub returning: bool,
    /// How many times the page has reloaded itself so far.
    pub polls: u32,
    /// The rest of the query (the gateway's return parameters), kept when it reloads.
    pub query: Vec<(String, String)>,
    /// Downloads used so far per line index, for lines with a download link.
    pub downloads_used: BTreeMap<usize, u32>,
}

#[derive(Serialize)]
struct OrderContext<'a> {
    store: StoreView<'a>,
    title: &'a str,
    order: &'a OrderJson,
    lines: Vec<RenderedLine<'a>>,
    buyer_name: &'a str,
    message: String,
    /// Where the page reloads itself to, while a confirmation is expected.
    refresh_url: Option<String>,
    refresh_seconds: u32,
    /// The page stopped reloading itself: a link to look again.
    check_again_url: Option<String>,
    /// With JavaScript, the page asks this (the order's JSON) instead of reloading, and
    /// reloads once when the order has moved on; `stop_url` after the last try.
    watch_url: Option<String>,
    stop_url: Option<String>,
    watch_tries: u32,
    /// Where to (re)try paying, while the reservation holds.
    pay_url: Option<String>,
    transfer: Option<TransferView>,
    shipping: Option<ShippingView>,
    /// Whether the approved order shows access details (it has digital lines).
    has_access: bool,
    /// A page (not a mail): interactive parts such as copy buttons may show.
    on_page: bool,
}

pub fn order_page(
    store: &Store,
    templates: &Templates,
    urls: &Urls,
    order: &Order,
    token: &OrderToken,
    now: i64,
    visit: &Visit,
) -> Result<String, RenderError> {
    let mut json = order_json(order, templates);
    with_seat_links(&mut json.lines, token, urls);
    let pages = &store.pages;
    let can_pay = order.status.takes_card_payment() && order.reservation_holds(now);
    let confirming = match order.status {
        OrderStatus::Paid => json.state == PageState::Processing,
        OrderStatus::PendingPayment => visit.returning,
        _ => false,
    };
    let digital = order
        .lines
        .iter()
        .any(|l| l.kind != FulfillmentKind::Shipment);
    let physical = order
        .lines
        .iter()
        .any(|l| l.kind == FulfillmentKind::Shipment);
    let (title, message) = match json.state {
        PageState::Processing if order.status == OrderStatus::PaymentProcessing => (
            "Payment processing",
            "Your bank is processing the payment. This can take a few days; we will email you as soon as it is confirmed.".to_owned(),
        ),
        PageState::Processing if order.status == OrderStatus::PendingPayment && !confirming => (
            "Waiting for your payment",
            format!(
                "Nothing has been charged yet. Your order is reserved until {} UTC: pay to complete it.",
                utc_date_time(order.reserved_until)
            ),
        ),
        PageState::Processing => ("Processing your order", pages.processing.clone()),
        PageState::AwaitingTransfer => (
            "Pay by bank transfer",
            "Your order is reserved. Please transfer the total with the reference below; we send your order as soon as the money arrives.".to_owned(),
        ),
        PageState::Approved if !digital => (
            "Order confirmed",
            "Thank you! Your order is confirmed. We will pack it and email you the tracking link when it is on its way.".to_owned(),
        ),
        PageState::Approved if physical => (
            "Order confirmed",
            format!("{} The parcel follows; we email you when it is on its way.", pages.approved),
        ),
        PageState::Approved => ("Order confirmed", pages.approved.clone()),
        PageState::Declined => ("Payment declined", pages.declined.clone()),
        PageState::Expired => ("Order expired", pages.expired.clone()),
        PageState::Cancelled => ("Order cancelled", "This order was cancelled.".to_owned()),
    };
    let order_url = urls.order(token);
    let polling = confirming && visit.polls < REFRESH_LIMIT;
    // The page again, as its `n`-th reload: the gateway's query kept, `poll=n` after it.
    let polled = |n: u32| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(&visit.query);
        query.append_pair("poll", &n.to_string());
        format!("{order_url}?{}", query.finish())
    };
    let mut lines = rendered_lines(&json.lines);
    for (i, line) in lines.iter_mut().enumerate() {
        if let (Some(used), Some(Access::Download { max_downloads, .. })) =
            (visit.downloads_used.get(&i), &line.line.access)
        {
            line.downloads_left = Some(max_downloads.saturating_sub(*used));
        }
        if let Some(Access::Download { expires_at, .. }) = &line.line.access {
            line.link_ended = line.downloads_left == Some(0) || now >= *expires_at;
        }
    }
    let context = OrderContext {
        store: StoreView::new(store),
        title,
        order: &json,
        lines,
        buyer_name: order.name.as_str(),
        message,
        refresh_url: polling.then(|| polled(visit.polls + 1)),
        refresh_seconds: REFRESH_SECONDS,
        check_again_url: (confirming && !polling).then(|| order_url.clone()),
        watch_url: polling.then(|| format!("{order_url}.json")),
        stop_url: polling.then(|| polled(REFRESH_LIMIT)),
        watch_tries: REFRESH_LIMIT.saturating_sub(visit.polls) * REFRESH_SECONDS,
        pay_url: (can_pay && !confirming).then(|| urls.pay(token)),
        transfer: (json.state == PageState::AwaitingTransfer)
            .then(|| TransferView::of(store, order))
            .flatten(),
        shipping: ShippingView::of(order),
        has_access: digital,
        on_page: true,
    };
    templates.render("order.html", context)
}
