//! Orders, their lines, and the status state machine that only moves forward.

use super::{BuyerName, Email, Money, OrderId, Quantity, Sku};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an order is in its life. Statuses only move forward (see [`OrderStatus::can_move_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    /// The buyer chose to pay by bank transfer; the seller confirms the money arrived.
    AwaitingTransfer,
    /// The gateway accepted an asynchronous payment (a bank debit) and owes us its outcome.
    PaymentProcessing,
    /// The last payment attempt was declined; the buyer may retry while the reservation holds.
    Declined,
    Paid,
    AwaitingShipment,
    /// The seller sent the parcel (`nightshift orders ship`).
    Shipped,
    /// The parcel arrived (`nightshift orders deliver`).
    Delivered,
    Fulfilled,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot move from {from} to {to}")]
pub struct TransitionRefused {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 11] = [
        OrderStatus::PendingPayment,
        OrderStatus::AwaitingTransfer,
        OrderStatus::PaymentProcessing,
        OrderStatus::Declined,
        OrderStatus::Paid,
        OrderStatus::AwaitingShipment,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Fulfilled,
        OrderStatus::Expired,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::AwaitingTransfer => "awaiting_transfer",
            OrderStatus::PaymentProcessing => "payment_processing",
            OrderStatus::Declined => "declined",
            OrderStatus::Paid => "paid",
            OrderStatus::AwaitingShipment => "awaiting_shipment",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Expired => "expired",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Progress along the order's life; every allowed transition strictly increases it.
    ///
    /// An expired order ranks below a paid one: money that arrives after the order expired
    /// (a late payment) may still pay it, when the store's `late_payment` policy takes the
    /// stock again. Nothing else moves an expired order.
    pub fn rank(self) -> u8 {
        match self {
            OrderStatus::PendingPayment | OrderStatus::AwaitingTransfer => 0,
            OrderStatus::PaymentProcessing => 1,
            OrderStatus::Declined => 2,
            OrderStatus::Expired => 3,
            OrderStatus::Paid => 4,
            OrderStatus::AwaitingShipment => 5,
            OrderStatus::Fulfilled | OrderStatus::Shipped => 6,
            OrderStatus::Delivered => 7,
            OrderStatus::Cancelled => 8,
        }
    }

    pub fn can_move_to(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (
                PendingPayment,
                PaymentProcessing | Paid | Declined | Expired | Cancelled
            ) | (AwaitingTransfer, Paid | Expired | Cancelled)
                | (PaymentProcessing, Paid | Declined | Cancelled)
                | (Declined, Paid | Expired | Cancelled)
                | (Paid, AwaitingShipment | Fulfilled)
                | (AwaitingShipment, Fulfilled | Shipped)
                | (Shipped, Delivered)
                | (Expired, Paid)
        )
    }

    pub fn move_to(self, to: OrderStatus) -> Result<OrderStatus, TransitionRefused> {
        if self.can_move_to(to) {
            Ok(to)
        } else {
            Err(TransitionRefused { from: self, to })
        }
    }

    /// The buyer can open the gateway's page: a first attempt or a retry after a decline.
    pub fn takes_card_payment(self) -> bool {
        matches!(self, OrderStatus::PendingPayment | OrderStatus::Declined)
    }

    /// Unpaid and holding stock until its reservation runs out. An order whose asynchronous
    /// payment is processing does not expire: the gateway owes it an outcome.
    pub fn can_expire(self) -> bool {
        matches!(
            self,
            OrderStatus::PendingPayment | OrderStatus::Declined | OrderStatus::AwaitingTransfer
        )
    }

    pub fn is_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid
                | OrderStatus::AwaitingShipment
                | OrderStatus::Shipped
                | OrderStatus::Delivered
                | OrderStatus::Fulfilled
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of delivery a line needs; the settings themselves live in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentKind {
    Course,
    LicenseKey,
    Download,
    Shipment,
}

impl FulfillmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentKind::Course => "course",
            FulfillmentKind::LicenseKey => "license_key",
            FulfillmentKind::Download => "download",
            FulfillmentKind::Shipment => "shipment",
        }
    }
}

/// Each line's own delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    Pending,
    Delivered,
    AwaitingShipment,
    /// In the parcel the seller sent.
    Shipped,
    /// The delivery failed permanently; the seller has been told.
    Failed,
}

impl LineState {
    pub fn as_str(self) -> &'static str {
        match self {
            LineState::Pending => "pending",
            LineState::Delivered => "delivered",
            LineState::AwaitingShipment => "awaiting_shipment",
            LineState::Shipped => "shipped",
            LineState::Failed => "failed",
        }
    }

    pub fn is_settled(self) -> bool {
        !matches!(self, LineState::Pending)
    }
}

/// What a delivered line gives the buyer. Its `Debug` shows only the kind: usernames are
/// often emails, and passwords, keys and links are secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Access {
    Course {
        login_url: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// A signed licence key (see the `nightshift-license` crate for its format).
    LicenseKey {
        key: String,
        seats: u32,
        /// Unix seconds; `None` never expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
    /// A link to `GET /downloads/{token}` that works until `expires_at` (Unix seconds) for at
    /// most `max_downloads` downloads.
    Download {
        url: String,
        filename: String,
        expires_at: i64,
        max_downloads: u32,
    },
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Access::Course { .. } => "Course",
            Access::LicenseKey { .. } => "LicenseKey",
            Access::Download { .. } => "Download",
        };
        write!(f, "Access::{kind}(***)")
    }
}

/// The result of running one line's fulfillment action, stored once per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LineResult {
    Delivered { access: Access },
    AwaitingShipment,
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: Sku,
    pub name: String,
    pub kind: FulfillmentKind,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub state: LineState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// A course sold by the seat: the seats after the buyer's own, each claimed through its
    /// own link (see [`super::seats`]). Empty for everything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<super::Seat>,
}

impl Line {
    pub fn apply(&mut self, result: &LineResult) {
        match result {
            LineResult::Delivered { access } => {
                self.state = LineState::Delivered;
                self.access = Some(access.clone());
            }
            LineResult::AwaitingShipment => self.state = LineState::AwaitingShipment,
            LineResult::Failed { reason } => {
                self.state = LineState::Failed;
                self.failure = Some(reason.clone());
            }
        }
    }

    pub fn subtotal(&self) -> Money {
        // Checked when the order was priced; a line never overflows afterwards.
        self.unit_price
            .times(self.quantity.get())
            .unwrap_or(self.unit_price)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    /// Bumped by every write; writes are conditional on the version they read.
    pub version: u64,
    pub status: OrderStatus,
    pub email: Email,
    pub name: BuyerName,
    pub lines: Vec<Line>,
    pub total: Money,
    pub created_at: i64,
    /// Unix seconds until which stock is held and payment is accepted.
    pub reserved_until: i64,
    #[serde(default)]
    pub payment_method: PaymentMethod,
    /// The reference a bank transfer must carry, for orders paid by transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_reference: Option<String>,
    /// The total refunded so far, as the gateway reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<Money>,
    /// The buyer is told by mail that their payment failed: set when a payment that was still
    /// processing (a bank debit) fails, since the buyer left the gateway's page before it did.
    /// A card declined on the page needs no mail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decline_notice: bool,
    /// A payment that arrived after the order expired and was given back (the store's
    /// `late_payment = "refund"`): the buyer is mailed why, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_refund: Option<Money>,
    /// The gateway's payment sessions opened for the order, newest last (only for gateways
    /// that keep them, such as Stripe): before the order expires each is asked whether it
    /// took a payment, and closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_sessions: Vec<String>,
    /// The buyer's mobile number and their consent to texts about the order (reminders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<super::TextConsent>,
    /// Transfer reminders sent so far (each is mailed, and texted with consent, once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reminders_sent: u32,
    /// When the next transfer reminder is due (Unix seconds), while the transfer is awaited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reminder_at: Option<i64>,
    /// When the buyer, who asked for it, is mailed a link back to their unpaid order
    /// (`[recovery] after` the checkout); `None` once that was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_at: Option<i64>,
    /// The recovery mail is due (it goes out once).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovery_mailed: bool,
    /// When the buyer is asked for a review (`[reviews] after_days` after a digital order
    /// was fulfilled or a parcel delivered); `None` once that was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_at: Option<i64>,
    /// The review request is due (it goes out once).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub review_mailed: bool,
    /// When the reconciler looks at the order to see that the work queued for it was done
    /// (Unix seconds): set whenever work is queued, cleared once it all was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_at: Option<i64>,
    /// Looks the reconciler has taken since work was last queued (each later than the one
    /// before).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks: u32,
    /// Payment problems the seller must look at (each is mailed to them once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_issues: Vec<String>,
    /// The store's public address when the order was placed (`https://shop.example.com`):
    /// links made later, away from any request (download links), start with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_url: Option<String>,
    /// Where the physical items go and what shipping cost (in `total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<super::Shipping>,
    /// Seller webhooks that gave up on this order (each is mailed to the seller once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_failures: Vec<String>,
    /// Recognises the order page's token (`None`: the order has no page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<super::TokenCheck>,
    /// Every payment event the order has taken in, applied or not, kept with the order so
    /// that the write applying an event also records it (a repeat then changes nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<SeenEvent>,
}

/// How long queued work may take before the reconciler looks whether it was done.
pub const CHECK_AFTER_SECONDS: i64 = 5 * 60;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A payment event an order has taken in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEvent {
    /// `<gateway>:<event id>`.
    pub id: String,
    /// When it arrived (Unix seconds).
    pub at: i64,
}

impl SeenEvent {
    pub fn key(event: &super::PaymentEvent) -> String {
        format!("{}:{}", event.gateway, event.event_id)
    }
}

/// How the buyer chose to pay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// On the card gateway's hosted page.
    #[default]
    Card,
    BankTransfer,
}

impl Order {
    /// Whether `token` opens this order's page.
    pub fn opened_by(&self, token: &super::OrderToken) -> bool {
        token.order_id() == self.id && self.token.as_ref().is_some_and(|c| c.matches(token))
    }

    /// Whether the order has taken in this payment event before.
    pub fn has_seen(&self, event: &PaymentEvent) -> bool {
        let key = SeenEvent::key(event);
        self.events.iter().any(|e| e.id == key)
    }

    /// The status the order reaches once every line is settled, if it has settled.
    pub fn settled_status(&self) -> Option<OrderStatus> {
        if self
            .lines
            .iter()
            .any(|l| !l.state.is_settled() || l.state == LineState::Failed)
        {
            return None;
        }
        if self
            .lines
            .iter()
            .any(|l| l.state == LineState::AwaitingShipment)
        {
            Some(OrderStatus::AwaitingShipment)
        } else {
            Some(OrderStatus::Fulfilled)
        }
    }

    pub fn reservation_holds(&self, now: i64) -> bool {
        now < self.reserved_until
    }

    /// When the order next has timed work (Unix seconds), if it has any: an unpaid order
    /// expires when its reservation runs out; a transfer awaited gets its next reminder. Stores index orders by it, so the scheduler
    /// finds due work without reading every order.
    pub fn due_at(&self) -> Option<i64> {
        let expiry = self.status.can_expire().then_some(self.reserved_until);
        let reminder = self
            .next_reminder_at
            .filter(|_| self.status == OrderStatus::AwaitingTransfer);
        [
            expiry,
            reminder,
            self.recovery_at,
            self.review_at,
            self.check_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Work was queued for the order at `now`: the reconciler looks a few minutes later
    /// that it was done.
    pub fn check_later(&mut self, now: i64) {
        self.check_at = Some(now + CHECK_AFTER_SECONDS);
        self.checks = 0;
    }
}

/// A payment gateway's verdict on one attempt, already verified by the gateway adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    pub gateway: String,
    pub event_id: String,
    pub order_id: OrderId,
    pub outcome: PaymentOutcome,
    /// The gateway's name for the payment itself (Stripe: the PaymentIntent), which a refund
    /// names; `None` where the gateway gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentOutcome {
    Approved {
        amount: Money,
    },
    /// An asynchronous payment was started; its outcome follows as another event.
    Processing,
    Declined {
        reason: String,
    },
    /// The gateway's session ran out unpaid.
    Expired,
    /// Money went back to the buyer; `total` is everything refunded so far.
    Refunded {
        total: Money,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = OrderStatus> {
        proptest::sample::select(OrderStatus::ALL.to_vec())
    }

    #[test]
    fn a_paid_order_never_returns_to_pending_or_declined() {
        assert!(OrderStatus::Paid
            .move_to(OrderStatus::PendingPayment)
            .is_err());
        assert!(OrderStatus::Paid.move_to(OrderStatus::Declined).is_err());
        assert!(OrderStatus::Fulfilled.move_to(OrderStatus::Paid).is_err());
    }

    #[test]
    fn an_async_payment_ends_paid_or_declined_but_never_expires() {
        assert!(OrderStatus::PaymentProcessing.can_move_to(OrderStatus::Paid));
        assert!(OrderStatus::PaymentProcessing.can_move_to(OrderStatus::Declined));
        assert!(!OrderStatus::PaymentProcessing.can_expire());
        assert!(!OrderStatus::Declined.can_move_to(OrderStatus::PaymentProcessing));
        assert!(OrderStatus::AwaitingTransfer.can_expire());
        assert!(!OrderStatus::AwaitingTransfer.takes_card_payment());
    }

    #[test]
    fn a_declined_order_can_still_be_paid() {
        assert_eq!(
            OrderStatus::Declined.move_to(OrderStatus::Paid),
            Ok(OrderStatus::Paid)
        );
    }

    #[test]
    fn cancelled_orders_stay_put_and_expired_ones_only_take_a_late_payment() {
        for to in OrderStatus::ALL {
            assert!(!OrderStatus::Cancelled.can_move_to(to));
            assert_eq!(
                OrderStatus::Expired.can_move_to(to),
                to == OrderStatus::Paid,
                "{to}"
            );
        }
    }

    proptest! {
        #[test]
        fn every_allowed_transition_moves_forward(from in status(), to in status()) {
            if from.can_move_to(to) {
                prop_assert!(to.rank() > from.rank());
            }
        }

        #[test]
        fn any_sequence_of_attempts_never_lowers_the_rank(attempts in proptest::collection::vec(status(), 0..30)) {
            let mut current = OrderStatus::PendingPayment;
            for to in attempts {
                let before = current.rank();
                if let Ok(next) = current.move_to(to) { current = next; }
                prop_assert!(current.rank() >= before);
            }
        }
    }
}
