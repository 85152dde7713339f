//! The buyer's pages: the product page with its form, and the order page (HTML and JSON),
//! both built from one view of the order.

use super::render::{
    line_views, rendered_lines, LineView, MoneyView, RenderError, ShippingView, StoreView,
    Templates, TransferView,
};
use super::Urls;
use crate::config::{Fulfillment, Product, ShippingPricing, Store};
use crate::domain::{Order, OrderStatus, OrderToken};
use serde::Serialize;

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

#[derive(Serialize)]
struct OrderContext<'a> {
    store: StoreView<'a>,
    title: &'a str,
    order: &'a OrderJson,
    lines: Vec<super::render::RenderedLine<'a>>,
    buyer_name: &'a str,
    message: &'a str,
    refresh: bool,
    /// Where to (re)try paying, while the reservation holds.
    pay_url: Option<String>,
    transfer: Option<TransferView>,
    shipping: Option<ShippingView>,
}

pub fn order_page(
    store: &Store,
    templates: &Templates,
    urls: &Urls,
    order: &Order,
    token: &OrderToken,
    now: i64,
) -> Result<String, RenderError> {
    let json = order_json(order, templates);
    let pages = &store.pages;
    let (title, message) = match json.state {
        PageState::Processing if order.status == OrderStatus::PaymentProcessing => (
            "Payment processing",
            "Your bank is processing the payment. This can take a few days; we will email you as soon as it is confirmed.",
        ),
        PageState::Processing => ("Processing your order", pages.processing.as_str()),
        PageState::AwaitingTransfer => (
            "Pay by bank transfer",
            "Your order is reserved. Please transfer the total with the reference below; we send your order as soon as the money arrives.",
        ),
        PageState::Approved => ("Order confirmed", pages.approved.as_str()),
        PageState::Declined => ("Payment declined", pages.declined.as_str()),
        PageState::Expired => ("Order expired", pages.expired.as_str()),
        PageState::Cancelled => ("Order cancelled", "This order was cancelled."),
    };
    let can_pay = order.status.takes_card_payment() && order.reservation_holds(now);
    let context = OrderContext {
        store: StoreView::new(store),
        title,
        order: &json,
        lines: rendered_lines(&json.lines),
        buyer_name: order.name.as_str(),
        message,
        // An asynchronous bank payment takes days: no point refreshing every second.
        refresh: json.state == PageState::Processing
            && order.status != OrderStatus::PaymentProcessing,
        pay_url: can_pay.then(|| urls.pay(token)),
        transfer: (json.state == PageState::AwaitingTransfer)
            .then(|| TransferView::of(store, order))
            .flatten(),
        shipping: ShippingView::of(order),
    };
    templates.render("order.html", context)
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
    checkout_url: String,
    bank_transfer: bool,
    /// A physical item: the form asks for the shipping address.
    ships: bool,
    /// What shipping costs, in words.
    shipping_note: String,
    /// The countries a flat rate ships to, for a list to choose from (empty: type a code).
    countries: Vec<String>,
}

pub fn buy_page(
    store: &Store,
    templates: &Templates,
    urls: &Urls,
    product: &Product,
    available: Option<u32>,
) -> Result<String, RenderError> {
    templates.render(
        "buy.html",
        BuyContext {
            store: StoreView::new(store),
            title: &product.name,
            sku: product.sku.as_str(),
            name: &product.name,
            description: &product.description,
            price: product.price.to_string(),
            sold_out: available == Some(0),
            checkout_url: urls.checkout(),
            bank_transfer: store.payments.bank_transfer.is_some(),
            ships: matches!(product.fulfillment, Fulfillment::Shipment { .. }),
            shipping_note: match store.shipping.as_ref().map(|s| &s.pricing) {
                Some(ShippingPricing::Flat { price, .. }) => format!("Shipping: {price} per order"),
                Some(ShippingPricing::Table(_)) => {
                    "Shipping is added by weight and destination.".into()
                }
                None => String::new(),
            },
            countries: match store.shipping.as_ref().map(|s| &s.pricing) {
                Some(ShippingPricing::Flat {
                    countries: Some(list),
                    ..
                }) => list.clone(),
                _ => Vec::new(),
            },
        },
    )
}

#[derive(Serialize)]
struct NotFoundContext<'a> {
    store: StoreView<'a>,
    title: &'a str,
}

pub fn not_found_page(store: &Store, templates: &Templates) -> Result<String, RenderError> {
    templates.render(
        "not_found.html",
        NotFoundContext {
            store: StoreView::new(store),
            title: "Not found",
        },
    )
}
