//! The capabilities use cases need, one small trait each. Adapters implement them: embedded
//! ones for the dev stack and tests, AWS ones in Lambda.

use crate::config::CourseProvider;
use crate::domain::{
    Access, Email, Order, OrderId, OrderToken, PaymentEvent, PaymentMethod, Sku, TokenHash,
};
use serde::{Deserialize, Serialize};
use std::future::Future;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Unix seconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// A cryptographically secure source of random bytes.
pub trait Entropy: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost to a concurrent one; read again and retry.
    #[error("the order changed while it was being updated")]
    Conflict,
    #[error("the state store is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("a stored item could not be read")]
    Corrupt(#[source] BoxError),
    /// A claim is no longer the caller's: its lease ran out and another worker took it, or
    /// finished it. The caller must stop; the new owner carries on.
    #[error("the claim's lease ran out and another worker took it over")]
    LeaseLost,
}

/// Units of one sku taken from a limited stock by an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub sku: Sku,
    pub quantity: u32,
    /// The stock in store.toml; the store counts units taken against it.
    pub limit: u32,
    /// How the order pays: the store counts units held by unpaid orders per way of paying,
    /// since a card order's hold ends in minutes and a bank transfer's in days.
    pub method: PaymentMethod,
}

/// A limited sku's stock as the store counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// Units taken by orders, paid or not: what counts against the limit.
    pub taken: u32,
    /// Of those, units held by orders not paid yet, by card (or another gateway)…
    pub held_by_card: u32,
    /// …and by bank transfer. Held units come back unless their order is paid in time.
    pub held_by_transfer: u32,
}

impl StockLevel {
    pub fn held(&self) -> u32 {
        self.held_by_card.saturating_add(self.held_by_transfer)
    }
}

/// Remembers the first answer to a checkout sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the key; the key itself is not stored.
    pub key_hash: String,
    /// SHA-256 of the request it answered.
    pub fingerprint: String,
    pub order_id: OrderId,
}

/// Everything a checkout writes, in one atomic step.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order: Order,
    pub reservations: Vec<Reservation>,
    pub idempotency: Option<IdempotencyRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{0} is sold out")]
    SoldOut(Sku),
    #[error("the idempotency key was used before")]
    KeyUsed(IdempotencyRecord),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Addresses that asked for no more reminder mail (recovery, reviews), kept by a digest of
/// the address only.
pub trait Suppressions: Send + Sync {
    /// Adds the address (by its digest, [`crate::domain::Email::digest`]); again is harmless.
    fn suppress(
        &self,
        digest: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn is_suppressed(&self, digest: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

mod claims;

pub use claims::{Claim, Owner, WorkClaims};

/// Orders with timed work, found by when it is due (a sparse index: only orders with
/// something due are in it, so finding them never reads the others).
pub trait DueOrders: Send + Sync {
    /// Up to `limit` orders whose [`Order::due_at`] is at or before `now`, soonest first.
    fn orders_due(
        &self,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OrderId>, StoreError>> + Send;
}

pub trait OrderStore: Send + Sync {
    /// Stores the order, its stock reservations and its idempotency record together, or
    /// nothing.
    fn place_order(&self, new: &NewOrder) -> impl Future<Output = Result<(), PlaceError>> + Send;

    fn idempotency_record(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    fn order(&self, id: &OrderId)
        -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;

    /// The order a page token opens: one read of the order the token names, which must
    /// recognise the token.
    fn order_by_token(
        &self,
        token: &OrderToken,
    ) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send {
        async move {
            let order = self.order(&token.order_id()).await?;
            Ok(order.filter(|o| o.opened_by(token)))
        }
    }

    /// Units of a sku taken so far by orders, and how many of those unpaid orders hold.
    fn stock(&self, sku: &Sku) -> impl Future<Output = Result<StockLevel, StoreError>> + Send;

    /// Units of a sku taken so far by orders.
    fn stock_taken(&self, sku: &Sku) -> impl Future<Output = Result<u32, StoreError>> + Send {
        async move { Ok(self.stock(sku).await?.taken) }
    }

    /// Writes `order` if the stored version is still `expected_version`.
    fn save_order(
        &self,
        order: &Order,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes `order`, just paid, if unchanged since `expected_version`, and counts its
    /// reservations as sold (no longer held), in the same write.
    fn save_paid_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes `order`, paid after it expired, if unchanged since `expected_version`, and takes
    /// its reservations' units from the stock again as sold, in the same write; refuses with
    /// [`PlaceError::SoldOut`] (writing nothing) when they are no longer there.
    fn save_late_paid_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> impl Future<Output = Result<(), PlaceError>> + Send;

    /// Writes `order` if unchanged since `expected_version` and gives back its reservations.
    fn release_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The licences on the revocation list (ids `ord_…/line`), sorted.
    fn revoked_licenses(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Whether one licence is on the revocation list (a single read).
    fn is_license_revoked(&self, id: &str)
        -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Keeps a new download link's record (once per token).
    fn grant_download(
        &self,
        token: &TokenHash,
        grant: &DownloadGrant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one download through a link, atomically: never past its limit or its expiry.
    fn take_download(
        &self,
        token: &TokenHash,
        now: i64,
    ) -> impl Future<Output = Result<DownloadTake, StoreError>> + Send;

    /// How many downloads a link has given so far, without counting one (`None`: no such
    /// link). For the order page.
    fn downloads_used(
        &self,
        token: &TokenHash,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;

    /// Puts licences on the revocation list; ones already on it stay as they were.
    fn revoke_licenses(
        &self,
        ids: &[String],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueName {
    Fulfillment,
    Mail,
}

/// A queue message; it only names the order, which is read fresh from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    FulfilOrder {
        order_id: OrderId,
    },
    SendMail {
        order_id: OrderId,
    },
    /// POST the paid order to the store's `webhook`-th seller webhook; `attempt` counts the
    /// tries so far (each retry is sent again with a growing delay).
    NotifySeller {
        order_id: OrderId,
        webhook: u32,
        attempt: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u8,
    #[serde(flatten)]
    message: Message,
}

impl Message {
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Envelope {
            v: 1,
            message: self.clone(),
        })
        .expect("messages serialise")
    }

    pub fn from_json(body: &str) -> Result<Message, serde_json::Error> {
        let envelope: Envelope = serde_json::from_str(body)?;
        if envelope.v != 1 {
            return Err(serde::de::Error::custom(format!(
                "unknown message version {}",
                envelope.v
            )));
        }
        Ok(envelope.message)
    }

    pub fn queue(&self) -> QueueName {
        match self {
            Message::FulfilOrder { .. } | Message::NotifySeller { .. } => QueueName::Fulfillment,
            Message::SendMail { .. } => QueueName::Mail,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the {queue:?} queue refused a message")]
pub struct QueueError {
    pub queue: QueueName,
    #[source]
    pub source: BoxError,
}

pub trait Queue: Send + Sync {
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Sends the message to be received no sooner than `delay_seconds` from now (at most 900,
    /// SQS's limit).
    fn send_after(
        &self,
        message: &Message,
        delay_seconds: u32,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// A rendered mail ready for the transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMail {
    /// `Name <address>`.
    pub from: String,
    pub to: Vec<Email>,
    pub cc: Vec<Email>,
    pub bcc: Vec<Email>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the mail could not be sent")]
pub struct MailError(#[source] pub BoxError);

pub trait MailSender: Send + Sync {
    fn send(&self, mail: &OutgoingMail) -> impl Future<Output = Result<(), MailError>> + Send;
}

/// A text message ready for the SMS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingText {
    pub to: crate::domain::Phone,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the text message could not be sent")]
pub struct TextError(#[source] pub BoxError);

/// Sends text messages (AWS End User Messaging SMS, SNS, or the dev stack's SMS outbox).
pub trait TextSender: Send + Sync {
    fn send(&self, text: &OutgoingText) -> impl Future<Output = Result<(), TextError>> + Send;
}

/// For a store that sends no texts: nothing asks it to, and if something did it would fail.
pub struct NoTexts;

impl TextSender for NoTexts {
    async fn send(&self, _: &OutgoingText) -> Result<(), TextError> {
        Err(TextError("this store sends no text messages".into()))
    }
}

/// A hosted payment page the buyer is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSession {
    pub id: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the payment gateway could not be reached or failed")]
    Unavailable(#[source] BoxError),
    #[error("the payment gateway refused the request: {0}")]
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the signature header is missing")]
    MissingSignature,
    #[error("the signature header is malformed")]
    MalformedSignature,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("the body is not a payment event: {0}")]
    MalformedBody(String),
}

pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;

    /// The shortest time a session may stay open (Stripe: 30 minutes). An order's reservation
    /// is extended to cover it, so a payment never lands after its order expired.
    fn minimum_session_seconds(&self) -> i64 {
        0
    }

    /// Opens a hosted payment page for the order; the buyer returns to `return_url`.
    fn open_session(
        &self,
        order: &Order,
        return_url: &str,
    ) -> impl Future<Output = Result<PaymentSession, GatewayError>> + Send;

    /// Verifies a webhook over its raw bytes. `Ok(None)` is an event type that changes nothing.
    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<PaymentEvent>, WebhookError>;

    /// The buyer came back to the order page with `query`: the gateway's own word on that
    /// payment, if it gives one, so the page need not wait for the webhook.
    fn returned(
        &self,
        order: &Order,
        query: &str,
    ) -> impl Future<Output = Result<Option<PaymentEvent>, GatewayError>> + Send {
        let _ = (order, query);
        async { Ok(None) }
    }

    /// The gateway's payment events since `since` (Unix seconds), as its webhooks would have
    /// brought them, for the reconciler to apply any the store missed. Gateways that cannot
    /// list them give none.
    fn recent_events(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<PaymentEvent>, GatewayError>> + Send {
        let _ = since;
        async { Ok(Vec::new()) }
    }

    /// Whether the gateway keeps its sessions and can be asked about them later: the order
    /// then remembers each session opened for it, and [`PaymentGateway::close_session`] is
    /// asked about every one before the order expires.
    fn remembers_sessions(&self) -> bool {
        false
    }

    /// Makes sure session `id` of `order` takes no more money: gives the payment it took
    /// (paid, or an asynchronous payment under way) as the event its webhook would bring,
    /// else closes it (Stripe: expires it) and gives `None`.
    fn close_session(
        &self,
        order: &Order,
        id: &str,
    ) -> impl Future<Output = Result<Option<PaymentEvent>, GatewayError>> + Send {
        let _ = (order, id);
        async { Ok(None) }
    }
}

/// Gives money back through the gateway that took it.
pub trait Refunds: Send + Sync {
    /// Gives the payment `event` reported back to the buyer, all of it. `key` names this
    /// refund: asked twice with the same key, the gateway refunds once.
    fn refund(
        &self,
        event: &PaymentEvent,
        key: &str,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;
}

/// Money that came in outside any gateway (a bank transfer the seller confirmed): nothing can
/// refund it but the seller, by hand.
pub struct ByHand;

impl Refunds for ByHand {
    async fn refund(&self, _: &PaymentEvent, _: &str) -> Result<(), GatewayError> {
        Err(GatewayError::Refused(
            "money that came in outside the gateway is refunded by hand".into(),
        ))
    }
}

impl<T: Refunds> Refunds for std::sync::Arc<T> {
    fn refund(
        &self,
        event: &PaymentEvent,
        key: &str,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send {
        (**self).refund(event, key)
    }
}

/// Who to enrol, as sent to a course provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolment {
    pub order_id: OrderId,
    pub line: usize,
    pub email: Email,
    pub name: String,
    pub course_id: String,
    /// For a course sold by the seat: the claimed seat's number (the buyer's own is 1 and is
    /// sent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<usize>,
}

impl Enrolment {
    /// Names this enrolment for the provider to recognise a retry of it:
    /// `{order}:{line}`, or `{order}:{line}:{seat}` for a claimed seat.
    pub fn step_id(&self) -> String {
        match self.seat {
            None => format!("{}:{}", self.order_id, self.line),
            Some(seat) => format!("{}:{}:{seat}", self.order_id, self.line),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// Worth retrying later (timeouts, 5xx).
    #[error("the course provider is unavailable: {0}")]
    Transient(String),
    /// Retrying will not help (4xx, a malformed answer).
    #[error("the course provider refused the enrolment: {0}")]
    Permanent(String),
}

pub trait CourseEnroller: Send + Sync {
    fn enrol(
        &self,
        provider: &CourseProvider,
        enrolment: &Enrolment,
    ) -> impl Future<Output = Result<Access, EnrolError>> + Send;
}

/// Signs licence keys with the store's signing key.
pub trait LicenseSigner: Send + Sync {
    fn sign(&self, license: &nightshift_license::License) -> Result<String, SignError>;

    /// Signs a revocation list (see `nightshift_license::revocation_message`).
    fn sign_revocations(&self, issued_at: u64, ids: &[String]) -> Result<String, SignError>;

    /// The public half, which checks keys.
    fn public_key(&self) -> Option<nightshift_license::VerifyingKey>;
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no licence signing key is configured (secret `license-signing-key`)")]
    NoKey,
    #[error(transparent)]
    Format(#[from] nightshift_license::LicenseError),
}

/// Tells the seller's own systems about an order: a signed JSON POST.
pub trait SellerNotifier: Send + Sync {
    fn notify(
        &self,
        url: &str,
        secret: &str,
        body: &[u8],
        idempotency_key: &str,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying later (no answer, timeouts, 5xx, 429).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (another 4xx, a missing secret).
    #[error("{0}")]
    Permanent(String),
}

/// Everything that delivers an order line: what the fulfilment use case needs (entropy makes
/// download links; the notifier calls the seller's webhooks).
pub trait Fulfillers: CourseEnroller + LicenseSigner + Entropy + SellerNotifier {}

impl<T: CourseEnroller + LicenseSigner + Entropy + SellerNotifier> Fulfillers for T {}

/// Hands out short-lived links to the files downloads serve: S3 presigned URLs on AWS, the
/// dev stack's own signed links to a local folder.
pub trait FileLinks: Send + Sync {
    /// A URL that fetches `key` from `bucket` for `seconds`, saved as `filename`.
    fn link(
        &self,
        bucket: &str,
        key: &str,
        filename: &str,
        seconds: u64,
    ) -> impl Future<Output = Result<String, BoxError>> + Send;
}

/// A download link's record, kept under the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadGrant {
    pub order_id: OrderId,
    pub line: u32,
    pub sku: Sku,
    /// Unix seconds after which the link no longer works.
    pub expires_at: i64,
    pub max_downloads: u32,
}

/// What taking one download through a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadTake {
    /// Counted: this was download number `used` of `grant.max_downloads`.
    Counted {
        grant: DownloadGrant,
        used: u32,
    },
    Unknown,
    Expired,
    Exhausted,
}

/// Lets one gateway instance (with its state) serve several functions in one process.
impl<T: PaymentGateway> PaymentGateway for std::sync::Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn open_session(
        &self,
        order: &Order,
        return_url: &str,
    ) -> impl Future<Output = Result<PaymentSession, GatewayError>> + Send {
        (**self).open_session(order, return_url)
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<PaymentEvent>, WebhookError> {
        (**self).verify_webhook(headers, body, now)
    }

    fn minimum_session_seconds(&self) -> i64 {
        (**self).minimum_session_seconds()
    }

    fn returned(
        &self,
        order: &Order,
        query: &str,
    ) -> impl Future<Output = Result<Option<PaymentEvent>, GatewayError>> + Send {
        (**self).returned(order, query)
    }

    fn remembers_sessions(&self) -> bool {
        (**self).remembers_sessions()
    }

    fn recent_events(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<PaymentEvent>, GatewayError>> + Send {
        (**self).recent_events(since)
    }

    fn close_session(
        &self,
        order: &Order,
        id: &str,
    ) -> impl Future<Output = Result<Option<PaymentEvent>, GatewayError>> + Send {
        (**self).close_session(order, id)
    }
}
