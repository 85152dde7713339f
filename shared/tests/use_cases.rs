//! Use cases on the embedded adapters: checkout and stock, payment events, fulfilment, mail.

use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::license::LicenseKeys;
use shared::app::checkout::{
    place_order, Checkout, CheckoutContext, CheckoutError, CheckoutForm, Receipt,
};
use shared::app::expiry::Expiry;
use shared::app::fulfil::{fulfil_order, FulfilError};
use shared::app::mail::{send_order_mails, Mailing};
use shared::app::payment::{apply_payment_event, Applied};
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::{CourseProvider, Store};
use shared::domain::{
    Access, LineState, Money, Order, OrderId, OrderStatus, OrderToken, PaymentEvent,
    PaymentOutcome, Sku,
};
use shared::license::SigningKey;
use shared::ports::{
    Clock, CourseEnroller, EnrolError, Enrolment, Entropy, LicenseSigner, Message, OrderStore,
    QueueName, SignError, WorkClaims,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const STORE: &str = r##"
[store]
name = "Test Store"
currency = "EUR"
seller_email = "seller@example.com"
sender = "Test Store <orders@example.com>"

[mail]
grouping = "order"
seller_copy = "separate"

[payments]
gateway = "testpay"

[shipping]
rates = [
  { countries = ["DE"], up_to_grams = 1000, price = "4.90" },
  { countries = ["*"], up_to_grams = 1000, price = "12.00" },
]
carriers = { dhl = "https://track.example/dhl?code={tracking}" }

[products.course]
name = "Course"
price = "49.00"
fulfillment = { kind = "course", provider = "webhook", course_id = "c1", url = "https://lms.example.com/enrol", secret = "lms" }

[products.seats]
name = "Seats"
price = "10.00"
stock = 5
fulfillment = { kind = "course", provider = "webhook", course_id = "c2", url = "https://lms.example.com/enrol", secret = "lms" }

# A course sold by the seat, through the seller's LMS (a claim reaches outside).
[products.team]
name = "Team Course"
price = "100.00"
stock = 6
fulfillment = { kind = "course", provider = "webhook", course_id = "t1", url = "https://lms.example.com/enrol", secret = "lms", seats = true }

[products.book]
name = "Book"
price = "20.00"
stock = 3
fulfillment = { kind = "shipment", weight_grams = 300 }

[products.crate]
name = "Crate"
price = "80.00"
fulfillment = { kind = "shipment", weight_grams = 2000 }

[products.app]
name = "App"
price = "15.00"
fulfillment = { kind = "license_key", seats = 2, valid_days = 365 }

[products.ebook]
name = "E-book"
price = "9.00"
fulfillment = { kind = "download", bucket = "shop-files", key = "books/e-book.pdf", valid_days = 3, max_downloads = 2 }
"##;

struct TestClock(AtomicI64);

/// A gateway that keeps sessions, like Stripe: a test marks one paid; closing an open one
/// records it. Refunds are recorded by key (or refused, when a test says so).
#[derive(Default)]
struct FakeGateway {
    /// Session id → the payment it took, if any.
    paid: Mutex<HashMap<String, PaymentEvent>>,
    closed: Mutex<Vec<String>>,
    refunds: Mutex<Vec<String>>,
    refuse_refunds: std::sync::atomic::AtomicBool,
    opened: AtomicU64,
}

impl shared::ports::PaymentGateway for FakeGateway {
    fn name(&self) -> &'static str {
        "testpay"
    }

    async fn open_session(
        &self,
        order: &Order,
        return_url: &str,
    ) -> Result<shared::ports::PaymentSession, shared::ports::GatewayError> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        // Like Stripe's idempotency key: the same reservation and events, the same session.
        let id = format!(
            "cs_{}_{}_{}",
            order.id,
            order.reserved_until,
            order.events.len()
        );
        Ok(shared::ports::PaymentSession {
            url: format!("https://pay.example/{id}?back={return_url}"),
            id,
        })
    }

    fn verify_webhook(
        &self,
        _: &http::HeaderMap,
        _: &[u8],
        _: i64,
    ) -> Result<Option<PaymentEvent>, shared::ports::WebhookError> {
        Ok(None)
    }

    fn remembers_sessions(&self) -> bool {
        true
    }

    async fn close_session(
        &self,
        _: &Order,
        id: &str,
    ) -> Result<Option<PaymentEvent>, shared::ports::GatewayError> {
        if let Some(event) = self.paid.lock().unwrap().get(id) {
            return Ok(Some(event.clone()));
        }
        self.closed.lock().unwrap().push(id.to_owned());
        Ok(None)
    }
}

impl shared::ports::Refunds for FakeGateway {
    async fn refund(&self, _: &PaymentEvent, key: &str) -> Result<(), shared::ports::GatewayError> {
        if self.refuse_refunds.load(Ordering::SeqCst) {
            return Err(shared::ports::GatewayError::Refused("no".into()));
        }
        self.refunds.lock().unwrap().push(key.to_owned());
        Ok(())
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Deterministic but distinct bytes for every call.
struct CountingEntropy(AtomicU64);

impl Entropy for CountingEntropy {
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, Ordering::SeqCst).to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = n[i % 8] ^ (i as u8).wrapping_mul(31);
        }
    }
}

/// Counts enrolments; answers with a scripted list of failures first.
#[derive(Default)]
struct FakeEnroller {
    calls: AtomicUsize,
    script: Mutex<Vec<EnrolError>>,
    /// Seller webhook calls: (url, body).
    notified: Mutex<Vec<(String, Vec<u8>)>>,
    /// Answers for the next seller webhook calls (popped from the end); none means success.
    notify_script: Mutex<Vec<shared::ports::NotifyError>>,
}

impl shared::ports::SellerNotifier for FakeEnroller {
    async fn notify(
        &self,
        url: &str,
        _secret: &str,
        body: &[u8],
        _key: &str,
    ) -> Result<(), shared::ports::NotifyError> {
        self.notified
            .lock()
            .unwrap()
            .push((url.to_owned(), body.to_vec()));
        match self.notify_script.lock().unwrap().pop() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl CourseEnroller for FakeEnroller {
    async fn enrol(&self, _: &CourseProvider, e: &Enrolment) -> Result<Access, EnrolError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if let Some(err) = self.script.lock().unwrap().pop() {
            return Err(err);
        }
        Ok(Access::Course {
            login_url: "https://learn.example.com".into(),
            username: e.email.to_string(),
            password: Some("pw".into()),
        })
    }
}

/// Test keys: the signing key's seed is fixed so keys can be checked against its public half.
const LICENSE_SEED: [u8; 32] = [9; 32];

fn license_keys() -> LicenseKeys {
    LicenseKeys::new(Some(SigningKey::from_bytes(&LICENSE_SEED)))
}

impl LicenseSigner for FakeEnroller {
    fn sign(&self, license: &shared::license::License) -> Result<String, SignError> {
        license_keys().sign(license)
    }

    fn sign_revocations(&self, issued_at: u64, ids: &[String]) -> Result<String, SignError> {
        license_keys().sign_revocations(issued_at, ids)
    }

    fn public_key(&self) -> Option<shared::license::VerifyingKey> {
        license_keys().public_key()
    }
}

impl Entropy for FakeEnroller {
    fn fill(&self, buf: &mut [u8]) {
        CountingEntropy(AtomicU64::new(
            self.calls.fetch_add(1, Ordering::SeqCst) as u64 + 100,
        ))
        .fill(buf);
    }
}

struct World {
    store: Store,
    templates: Templates,
    orders: EmbeddedStore,
    queue: EmbeddedQueue,
    clock: TestClock,
    entropy: CountingEntropy,
    enroller: FakeEnroller,
    urls: Urls,
    gateway: FakeGateway,
}

impl World {
    fn new() -> World {
        Self::with_store(STORE)
    }

    fn with_store(text: &str) -> World {
        let store = Store::parse(text, Path::new("store.toml")).unwrap();
        World {
            templates: Templates::new(&store).unwrap(),
            store,
            orders: EmbeddedStore::in_memory(),
            queue: EmbeddedQueue::default(),
            clock: TestClock(AtomicI64::new(1_700_000_000)),
            entropy: CountingEntropy(AtomicU64::new(1)),
            enroller: FakeEnroller::default(),
            urls: Urls::new("https://shop.example.com"),
            gateway: FakeGateway::default(),
        }
    }

    fn expiry(&self) -> Expiry<'_, EmbeddedStore, EmbeddedQueue, FakeGateway, TestClock> {
        Expiry {
            store: &self.store,
            orders: &self.orders,
            queue: &self.queue,
            gateway: &self.gateway,
            clock: &self.clock,
        }
    }

    fn ctx(&self) -> CheckoutContext<'_, TestClock, CountingEntropy> {
        CheckoutContext {
            store: &self.store,
            urls: &self.urls,
            clock: &self.clock,
            entropy: &self.entropy,
            token_key: b"k",
            session_seconds: 0,
        }
    }

    async fn checkout(
        &self,
        items: &[(&str, u32)],
        key: Option<&str>,
    ) -> Result<Receipt, CheckoutError> {
        let form = CheckoutForm {
            items: items
                .iter()
                .map(|(s, q)| (s.to_string(), q.to_string()))
                .collect(),
            email: "ann@example.com".into(),
            name: "Ann".into(),
            payment_method: String::new(),
            address: address("DE"),
            ..Default::default()
        };
        place_order(
            &self.ctx(),
            &self.orders,
            &self.queue,
            &Checkout::parse(&form)?,
            key,
        )
        .await
    }

    async fn checkout_form(&self, form: &CheckoutForm) -> Result<Receipt, CheckoutError> {
        place_order(
            &self.ctx(),
            &self.orders,
            &self.queue,
            &Checkout::parse(form)?,
            None,
        )
        .await
    }

    fn event(&self, id: &str, order: &OrderId, outcome: PaymentOutcome) -> PaymentEvent {
        PaymentEvent {
            gateway: "testpay".into(),
            event_id: id.into(),
            order_id: order.clone(),
            outcome,
            payment_ref: Some(format!("pay_{id}")),
        }
    }

    fn approved(&self, id: &str, order: &OrderId, minor: i64) -> PaymentEvent {
        let amount = Money::from_minor(minor, self.store.settings.currency);
        self.event(id, order, PaymentOutcome::Approved { amount })
    }

    async fn status(&self, id: &OrderId) -> OrderStatus {
        self.order(id).await.status
    }

    async fn order(&self, id: &OrderId) -> Order {
        self.orders.order(id).await.unwrap().unwrap()
    }

    async fn fulfil(&self, id: &OrderId) -> Result<shared::app::fulfil::Fulfilled, FulfilError> {
        fulfil_order(
            &self.store,
            &self.orders,
            &self.queue,
            &self.clock,
            &self.enroller,
            id,
        )
        .await
    }

    fn mailing(&self) -> Mailing<'_> {
        Mailing {
            store: &self.store,
            templates: &self.templates,
            token_key: b"k",
        }
    }

    /// Sends the order's mails into the outbox; every mail in it.
    async fn send_mails(&self, id: &OrderId) -> Vec<shared::ports::OutgoingMail> {
        let outbox = self.orders.outbox();
        send_order_mails(&self.mailing(), &self.orders, &outbox, &self.clock, id)
            .await
            .unwrap();
        outbox.mails().unwrap()
    }

    fn drained(&self, queue: QueueName) -> Vec<Message> {
        self.queue
            .try_receive(queue, 1000)
            .into_iter()
            .map(|d| Message::from_json(&d.body).unwrap())
            .collect()
    }
}

fn address(country: &str) -> shared::domain::AddressForm {
    shared::domain::AddressForm {
        name: "Ann Lee".into(),
        line1: "Hauptstr. 1".into(),
        postal_code: "10115".into(),
        city: "Berlin".into(),
        country: country.into(),
        ..Default::default()
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

#[tokio::test]
async fn checkout_prices_from_the_catalogue_and_reserves_stock() {
    let w = World::new();
    let receipt = w
        .checkout(&[("book", 2), ("course", 1)], None)
        .await
        .unwrap();
    let order = w.orders.order(&receipt.order_id).await.unwrap().unwrap();
    // Two books of 300 g to Germany: the first rate, 4.90.
    assert_eq!(order.total.minor(), 2 * 2000 + 4900 + 490);
    let shipping = order.shipping.as_ref().unwrap();
    assert_eq!((shipping.weight_grams, shipping.price.minor()), (600, 490));
    assert_eq!(shipping.address.city, "Berlin");
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(order.reserved_until, 1_700_000_000 + 30 * 60);
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 2);
    assert!(receipt
        .order_url
        .starts_with("https://shop.example.com/orders/"));
}

#[tokio::test]
async fn the_order_token_names_its_order_and_is_stored_only_as_a_digest() {
    let w = World::new();
    let receipt = w.checkout(&[("course", 1)], None).await.unwrap();
    let token = OrderToken::parse(receipt.order_url.rsplit('/').next().unwrap()).unwrap();
    assert_eq!(token.order_id(), receipt.order_id);
    let order = w.orders.order_by_token(&token).await.unwrap().unwrap();
    assert_eq!(order.id, receipt.order_id);
    let stored = serde_json::to_string(&w.orders.orders().await.unwrap()).unwrap();
    // The order id is public; the token's secret half is nowhere in the store.
    assert!(!stored.contains(&token.as_str()[20..]));
}

#[tokio::test]
async fn a_sold_out_checkout_changes_nothing() {
    let w = World::new();
    w.checkout(&[("book", 2)], None).await.unwrap();
    let refused = w.checkout(&[("course", 1), ("book", 2)], None).await;
    assert!(matches!(refused, Err(CheckoutError::SoldOut(s)) if s == sku("book")));
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 2);
    assert_eq!(w.orders.orders().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_products_and_bad_input_are_refused() {
    let w = World::new();
    assert!(matches!(
        w.checkout(&[("nope", 1)], None).await,
        Err(CheckoutError::UnknownProduct(_))
    ));
    assert!(matches!(
        w.checkout(&[("course", 0)], None).await,
        Err(CheckoutError::Invalid {
            field: "quantity",
            ..
        })
    ));
    assert!(matches!(
        w.checkout(&[], None).await,
        Err(CheckoutError::Invalid { field: "items", .. })
    ));
    let bad_email = CheckoutForm {
        items: vec![("course".into(), "1".into())],
        email: "x".into(),
        name: "A".into(),
        payment_method: String::new(),
        address: Default::default(),
        ..Default::default()
    };
    assert!(matches!(
        Checkout::parse(&bad_email),
        Err(CheckoutError::Invalid { field: "email", .. })
    ));
    assert!(w.orders.orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_answer() {
    let w = World::new();
    let first = w.checkout(&[("book", 1)], Some("key-1")).await.unwrap();
    let again = w.checkout(&[("book", 1)], Some("key-1")).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 1);
    assert!(matches!(
        w.checkout(&[("book", 2)], Some("key-1")).await,
        Err(CheckoutError::KeyReused)
    ));
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_make_one_order() {
    let w = Arc::new(World::new());
    let answers = futures::future::join_all((0..10).map(|_| {
        let w = w.clone();
        async move { w.checkout(&[("book", 1)], Some("same")).await.unwrap() }
    }))
    .await;
    assert!(answers.windows(2).all(|p| p[0] == p[1]));
    assert_eq!(w.orders.orders().await.unwrap().len(), 1);
}

#[tokio::test]
async fn fifty_concurrent_reservations_for_five_seats_sell_exactly_five() {
    let w = Arc::new(World::new());
    let results = futures::future::join_all((0..50).map(|_| {
        let w = w.clone();
        tokio::spawn(async move { w.checkout(&[("seats", 1)], None).await })
    }))
    .await;
    let sold = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), Err(CheckoutError::SoldOut(_))))
        .count();
    assert_eq!((sold, refused), (5, 45));
    assert_eq!(w.orders.stock_taken(&sku("seats")).await.unwrap(), 5);
}

#[tokio::test]
async fn an_approved_payment_moves_the_order_to_paid_once_and_queues_fulfilment() {
    let w = World::new();
    let r = w.checkout(&[("course", 1)], None).await.unwrap();
    let event = w.approved("evt_1", &r.order_id, 4900);
    let q = &w.queue;
    assert_eq!(
        apply_payment_event(&w.store, &w.orders, q, &w.gateway, &w.clock, &event)
            .await
            .unwrap(),
        Applied::Moved(OrderStatus::Paid)
    );
    assert_eq!(
        apply_payment_event(&w.store, &w.orders, q, &w.gateway, &w.clock, &event)
            .await
            .unwrap(),
        Applied::Duplicate
    );
    assert_eq!(w.status(&r.order_id).await, OrderStatus::Paid);
    assert_eq!(w.order(&r.order_id).await.events.len(), 1);
    assert!(w.drained(QueueName::Fulfillment).iter().all(|m| *m
        == Message::FulfilOrder {
            order_id: r.order_id.clone()
        }));
}

#[tokio::test]
async fn a_decline_after_approval_is_recorded_but_never_moves_the_order_back() {
    let w = World::new();
    let r = w.checkout(&[("course", 1)], None).await.unwrap();
    let declined = w.event(
        "evt_d",
        &r.order_id,
        PaymentOutcome::Declined {
            reason: "card".into(),
        },
    );
    apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved("evt_a", &r.order_id, 4900),
    )
    .await
    .unwrap();
    let applied = apply_payment_event(
        &w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &declined,
    )
    .await
    .unwrap();
    assert!(matches!(applied, Applied::Recorded(_)));
    assert_eq!(w.status(&r.order_id).await, OrderStatus::Paid);
    assert_eq!(w.order(&r.order_id).await.events.len(), 2);
}

#[tokio::test]
async fn a_declined_order_can_be_paid_on_retry() {
    let w = World::new();
    let r = w.checkout(&[("course", 1)], None).await.unwrap();
    let declined = w.event(
        "evt_d",
        &r.order_id,
        PaymentOutcome::Declined {
            reason: "card".into(),
        },
    );
    apply_payment_event(
        &w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &declined,
    )
    .await
    .unwrap();
    assert_eq!(w.status(&r.order_id).await, OrderStatus::Declined);
    assert!(w.drained(QueueName::Fulfillment).is_empty());
    apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved("evt_a", &r.order_id, 4900),
    )
    .await
    .unwrap();
    assert_eq!(w.status(&r.order_id).await, OrderStatus::Paid);
}

#[tokio::test]
async fn a_payment_of_the_wrong_amount_does_not_pay_the_order() {
    let w = World::new();
    let r = w.checkout(&[("course", 1)], None).await.unwrap();
    let applied = apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved("evt", &r.order_id, 100),
    )
    .await
    .unwrap();
    assert!(matches!(applied, Applied::Recorded(note) if note.contains("does not match")));
    assert_eq!(w.status(&r.order_id).await, OrderStatus::PendingPayment);
}

#[tokio::test]
async fn concurrent_deliveries_of_different_events_apply_each_once() {
    let w = Arc::new(World::new());
    let r = w.checkout(&[("course", 1)], None).await.unwrap();
    let events = vec![
        w.event(
            "d1",
            &r.order_id,
            PaymentOutcome::Declined { reason: "x".into() },
        ),
        w.approved("a1", &r.order_id, 4900),
        w.event(
            "d2",
            &r.order_id,
            PaymentOutcome::Declined { reason: "x".into() },
        ),
    ];
    let tasks = (0..5).flat_map(|_| events.clone()).map(|e| {
        let w = w.clone();
        tokio::spawn(async move {
            apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &e)
                .await
                .unwrap()
        })
    });
    futures::future::join_all(tasks).await;
    assert_eq!(w.status(&r.order_id).await, OrderStatus::Paid);
    assert_eq!(w.order(&r.order_id).await.events.len(), 3);
}

#[tokio::test]
async fn an_unpaid_order_expires_after_its_reservation_and_releases_stock() {
    let w = World::new();
    let r = w.checkout(&[("book", 3)], None).await.unwrap();
    assert!(matches!(
        w.checkout(&[("book", 1)], None).await,
        Err(CheckoutError::SoldOut(_))
    ));
    w.clock.0.fetch_add(30 * 60, Ordering::SeqCst);
    let order = w
        .expiry()
        .expire_if_due(&r.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.status, OrderStatus::Expired);
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 0);
    // A second look changes nothing more.
    w.expiry().expire_if_due(&r.order_id).await.unwrap();
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 0);
    let late = apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved("late", &r.order_id, 6000 + 490),
    )
    .await
    .unwrap();
    // Paid after all: the store's default `late_payment` takes the stock again.
    assert_eq!(late, Applied::Moved(OrderStatus::Paid));
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 3);
}

async fn paid(w: &World, items: &[(&str, u32)]) -> OrderId {
    let r = w.checkout(items, None).await.unwrap();
    let total = w
        .orders
        .order(&r.order_id)
        .await
        .unwrap()
        .unwrap()
        .total
        .minor();
    apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved(&format!("evt-{}", r.order_id), &r.order_id, total),
    )
    .await
    .unwrap();
    w.drained(QueueName::Fulfillment);
    r.order_id
}

/// `n` fulfilments of the order at once; their results.
async fn fulfil_concurrently(
    w: &Arc<World>,
    id: &OrderId,
    n: usize,
) -> Vec<Result<shared::app::fulfil::Fulfilled, FulfilError>> {
    let runs = (0..n).map(|_| {
        let (w, id) = (w.clone(), id.clone());
        tokio::spawn(async move { w.fulfil(&id).await })
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("a fulfilment task"))
        .collect()
}

#[tokio::test]
async fn fulfilment_delivers_each_line_once_even_when_run_concurrently() {
    let w = Arc::new(World::new());
    let id = paid(&w, &[("course", 1), ("seats", 1), ("book", 1)]).await;
    for result in fulfil_concurrently(&w, &id, 8).await {
        // A run that found a step leased by another asks to look again when that lease
        // ends, and nothing else.
        match result {
            Ok(_) | Err(FulfilError::Busy { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // The queue's redelivery: finished steps are reused, never run again.
    w.fulfil(&id).await.unwrap();
    assert_eq!(w.enroller.calls.load(Ordering::SeqCst), 2);
    let order = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::AwaitingShipment);
    assert_eq!(order.lines[0].state, LineState::Delivered);
    assert_eq!(order.lines[2].state, LineState::AwaitingShipment);
}

#[tokio::test]
async fn a_builtin_login_is_kept_once_without_a_claim_even_when_fulfilled_concurrently() {
    // A built-in login exists only once it is saved on the order, so its step takes no claim
    // (two writes fewer per line); the order's versioned write keeps one login only.
    let text = STORE.replacen(
        r#"provider = "webhook", course_id = "c1", url = "https://lms.example.com/enrol", secret = "lms""#,
        r#"provider = "builtin", course_id = "c1", login_url = "https://learn.example.com""#,
        1,
    );
    let w = Arc::new(World::with_store(&text));
    let id = paid(&w, &[("course", 1)]).await;
    for result in fulfil_concurrently(&w, &id, 8).await {
        match result {
            Ok(_) | Err(FulfilError::Retry(_) | FulfilError::Contended) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let first = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(first.status, OrderStatus::Fulfilled);
    assert_eq!(first.lines[0].state, LineState::Delivered);
    // A redelivery changes nothing: the login shown is the one kept.
    w.fulfil(&id).await.unwrap();
    let again = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(again.lines[0].access, first.lines[0].access);
    assert_eq!(again.version, first.version);
    assert!(
        w.orders
            .claim(
                &id,
                "STEP#0#course",
                &shared::ports::Owner::new(),
                w.clock.now(),
                w.clock.now() + 1
            )
            .await
            .unwrap()
            == shared::ports::Claim::Acquired,
        "no claim was written for a built-in login"
    );
}

#[tokio::test]
async fn a_transient_provider_failure_is_retried_and_a_permanent_one_recorded() {
    let w = World::new();
    let id = paid(&w, &[("course", 1), ("seats", 1)]).await;
    w.enroller.script.lock().unwrap().extend([
        EnrolError::Permanent("400".into()),
        EnrolError::Transient("503".into()),
    ]);
    assert!(matches!(w.fulfil(&id).await, Err(FulfilError::Retry(1))));
    assert!(
        w.drained(QueueName::Mail).is_empty(),
        "no mail while a line is pending"
    );
    w.fulfil(&id).await.unwrap();
    let order = w.orders.order(&id).await.unwrap().unwrap();
    let states: Vec<_> = order.lines.iter().map(|l| l.state).collect();
    assert!(
        states.contains(&LineState::Failed) && states.contains(&LineState::Delivered),
        "{states:?}"
    );
    assert_eq!(
        order.status,
        OrderStatus::Paid,
        "an order with a failed line is not fulfilled"
    );
    assert_eq!(
        w.drained(QueueName::Mail),
        vec![Message::SendMail { order_id: id }]
    );
}

#[tokio::test]
async fn fulfilling_an_unknown_order_is_not_retryable() {
    let w = World::new();
    let err = w.fulfil(&OrderId::from_random([9; 10])).await.unwrap_err();
    assert!(!err.is_retryable());
}

async fn mails_for(w: &World, items: &[(&str, u32)]) -> Vec<shared::ports::OutgoingMail> {
    let id = paid(w, items).await;
    w.fulfil(&id).await.unwrap();
    let outbox = w.orders.outbox();
    let sent = send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, &id)
        .await
        .unwrap();
    // A repeated message sends nothing more.
    assert_eq!(
        send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, &id)
            .await
            .unwrap(),
        0
    );
    let mails = outbox.mails().unwrap();
    assert_eq!(sent, mails.len());
    mails
}

#[tokio::test]
async fn an_order_gets_one_condensed_mail_and_a_separate_seller_copy() {
    let w = World::new();
    let mails = mails_for(&w, &[("course", 1), ("seats", 1)]).await;
    let buyer: Vec<_> = mails
        .iter()
        .filter(|m| m.to[0].as_str() == "ann@example.com")
        .collect();
    assert_eq!(buyer.len(), 1);
    assert!(
        buyer[0].text.contains("Course")
            && buyer[0].text.contains("Seats")
            && buyer[0].text.contains("pw")
    );
    assert!(buyer[0].html.contains("pw"));
    let copies: Vec<_> = mails
        .iter()
        .filter(|m| m.subject.starts_with("[Copy]"))
        .collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].to[0].as_str(), "seller@example.com");
    assert_eq!(buyer[0].from, "Test Store <orders@example.com>");
}

#[tokio::test]
async fn per_item_grouping_sends_one_mail_per_line_and_bcc_copies_the_seller() {
    let w = World::with_store(
        &STORE
            .replace("grouping = \"order\"", "grouping = \"item\"")
            .replace("\"separate\"", "\"bcc\""),
    );
    let mails = mails_for(&w, &[("course", 1), ("seats", 1)]).await;
    assert_eq!(mails.len(), 2);
    assert!(mails
        .iter()
        .all(|m| m.bcc.iter().any(|b| b.as_str() == "seller@example.com")));
    assert!(mails
        .iter()
        .any(|m| m.text.contains("Course") && !m.text.contains("Seats")));
}

#[tokio::test]
async fn a_physical_line_tells_the_seller_to_ship_and_no_copy_is_sent_when_disabled() {
    let w = World::with_store(&STORE.replace("\"separate\"", "\"none\""));
    let mails = mails_for(&w, &[("book", 2)]).await;
    let subjects: Vec<_> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(mails.len(), 2, "{subjects:?}");
    let ship = mails
        .iter()
        .find(|m| m.subject.starts_with("Ship order"))
        .unwrap();
    assert!(ship.text.contains("2 x Book"));
    // The buyer's mail says what one unit cost.
    let buyer = mails
        .iter()
        .find(|m| m.to[0].as_str() == "ann@example.com")
        .unwrap();
    assert!(
        buyer.text.contains("Book x 2 (€20.00 each)"),
        "{}",
        buyer.text
    );
    assert!(buyer.html.contains("(€20.00 each)"));
}

#[tokio::test]
async fn buyer_input_is_escaped_in_html_mail() {
    let w = World::new();
    let form = CheckoutForm {
        items: vec![("course".into(), "1".into())],
        email: "ann@example.com".into(),
        name: "<script>alert(1)</script>".into(),
        payment_method: String::new(),
        address: Default::default(),
        ..Default::default()
    };
    let r = place_order(
        &w.ctx(),
        &w.orders,
        &w.queue,
        &Checkout::parse(&form).unwrap(),
        None,
    )
    .await
    .unwrap();
    apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved("e", &r.order_id, 4900),
    )
    .await
    .unwrap();
    w.fulfil(&r.order_id).await.unwrap();
    let outbox = w.orders.outbox();
    send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, &r.order_id)
        .await
        .unwrap();
    for mail in outbox.mails().unwrap() {
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(mail.html.contains("&lt;script&gt;"));
    }
}

#[tokio::test]
async fn a_gateway_expiry_releases_stock_only_once_the_reservation_ran_out() {
    let w = World::new();
    let r = w.checkout(&[("book", 3)], None).await.unwrap();
    let expired = w.event("cs_1:expired", &r.order_id, PaymentOutcome::Expired);
    // An earlier session of the order expired while the order still holds: recorded only.
    let early = apply_payment_event(
        &w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &expired,
    )
    .await
    .unwrap();
    assert!(matches!(early, Applied::Recorded(_)));
    assert_eq!(w.status(&r.order_id).await, OrderStatus::PendingPayment);
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 3);

    w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
    let last = w.event("cs_2:expired", &r.order_id, PaymentOutcome::Expired);
    let applied = apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &last)
        .await
        .unwrap();
    assert_eq!(applied, Applied::Moved(OrderStatus::Expired));
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 0);
    // Again: a duplicate, the stock is not given back twice.
    assert_eq!(
        apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &last)
            .await
            .unwrap(),
        Applied::Duplicate
    );
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 0);
}

#[tokio::test]
async fn money_that_cannot_be_applied_is_flagged_to_the_seller_once() {
    let w = World::with_store(&STORE.replace(
        "gateway = \"testpay\"",
        "gateway = \"testpay\"\nlate_payment = \"hold\"",
    ));
    // Paid after the order expired, in a store that holds late payments: not revived, the
    // seller is told.
    let late = w.checkout(&[("book", 1)], None).await.unwrap();
    w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
    w.expiry().expire_if_due(&late.order_id).await.unwrap();
    let paid_late = w.approved("cs_9:paid", &late.order_id, 2000 + 490);
    let applied = apply_payment_event(
        &w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &paid_late,
    )
    .await
    .unwrap();
    assert!(matches!(applied, Applied::Recorded(ref note) if note.contains("expired")));
    assert_eq!(w.status(&late.order_id).await, OrderStatus::Expired);

    // The wrong amount: not marked paid.
    let short = w.checkout(&[("course", 1)], None).await.unwrap();
    let wrong = w.approved("cs_8:paid", &short.order_id, 100);
    apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &wrong)
        .await
        .unwrap();
    assert_eq!(w.status(&short.order_id).await, OrderStatus::PendingPayment);
    // The right amount in another currency is a mismatch too.
    let usd = shared::domain::Currency::parse("USD").unwrap();
    let dollars = w.event(
        "cs_7:paid",
        &short.order_id,
        PaymentOutcome::Approved {
            amount: Money::from_minor(4900, usd),
        },
    );
    apply_payment_event(
        &w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &dollars,
    )
    .await
    .unwrap();
    assert_eq!(w.status(&short.order_id).await, OrderStatus::PendingPayment);

    let mail_messages = w.drained(QueueName::Mail);
    assert!(mail_messages.contains(&Message::SendMail {
        order_id: late.order_id.clone()
    }));
    let outbox = w.orders.outbox();
    for id in [&late.order_id, &short.order_id] {
        send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, id)
            .await
            .unwrap();
        send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, id)
            .await
            .unwrap();
    }
    let alerts = outbox.mails().unwrap();
    assert_eq!(alerts.len(), 3, "one alert per problem, each once");
    for alert in &alerts {
        assert_eq!(alert.to[0].as_str(), "seller@example.com");
        assert!(alert.subject.starts_with("Action needed: a payment"));
    }
    assert!(alerts[0].text.contains("refund"));
    assert!(alerts
        .iter()
        .any(|m| m.text.contains("does not match the order total")));
}

#[tokio::test]
async fn refunds_are_recorded_on_the_order_and_never_shrink() {
    let w = World::new();
    let r = w.checkout(&[("course", 1)], None).await.unwrap();
    apply_payment_event(
        &w.store,
        &w.orders,
        &w.queue,
        &w.gateway,
        &w.clock,
        &w.approved("cs_1:paid", &r.order_id, 4900),
    )
    .await
    .unwrap();
    let eur = w.store.settings.currency;
    for (id, minor) in [("evt_r2", 4900), ("evt_r1", 1000)] {
        let refund = w.event(
            id,
            &r.order_id,
            PaymentOutcome::Refunded {
                total: Money::from_minor(minor, eur),
            },
        );
        apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &refund)
            .await
            .unwrap();
    }
    let order = w.orders.order(&r.order_id).await.unwrap().unwrap();
    assert_eq!(order.refunded, Some(Money::from_minor(4900, eur)));
    assert_eq!(order.status, OrderStatus::Paid);
}

#[tokio::test]
async fn an_asynchronous_failure_mails_the_buyer_but_a_card_decline_does_not() {
    let w = World::new();
    let outbox = w.orders.outbox();
    let card = w.checkout(&[("course", 1)], None).await.unwrap();
    let debit = w.checkout(&[("course", 1)], None).await.unwrap();
    let decline = |id: &OrderId| {
        w.event(
            &format!("{id}:failed"),
            id,
            PaymentOutcome::Declined {
                reason: "no".into(),
            },
        )
    };
    let processing = w.event(
        "cs_d:processing",
        &debit.order_id,
        PaymentOutcome::Processing,
    );
    for event in [
        decline(&card.order_id),
        processing,
        decline(&debit.order_id),
    ] {
        apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &event)
            .await
            .unwrap();
    }
    assert_eq!(w.status(&debit.order_id).await, OrderStatus::Declined);
    for id in [&card.order_id, &debit.order_id] {
        send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, id)
            .await
            .unwrap();
    }
    let mails = outbox.mails().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to[0].as_str(), "ann@example.com");
    assert!(mails[0].text.contains("did not go through"));
}

#[tokio::test]
async fn a_licence_line_gets_one_signed_key_that_verifies_offline() {
    let w = World::new();
    let id = paid(&w, &[("app", 2)]).await;
    w.fulfil(&id).await.unwrap();
    w.fulfil(&id).await.unwrap();
    let order = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Fulfilled);
    let Some(Access::LicenseKey {
        key,
        seats,
        expires_at,
    }) = order.lines[0].access.clone()
    else {
        panic!("no licence key: {:?}", order.lines[0]);
    };
    let now = w.clock.now();
    assert_eq!(seats, 4, "2 units of 2 seats each");
    assert_eq!(expires_at, Some(now + 365 * 86_400));
    let public = SigningKey::from_bytes(&LICENSE_SEED).verifying_key();
    let license = shared::license::verify(&public, &key).unwrap();
    assert_eq!(license.product, "app");
    assert_eq!(license.order_id, id.to_string());
    assert_eq!((license.line, license.seats), (0, 4));
    assert_eq!(license.issued_at as i64, now);
    assert!(license.is_for("ANN@example.com"));

    let mails = w.send_mails(&id).await;
    let buyer = mails
        .iter()
        .find(|m| m.to[0].as_str() == "ann@example.com")
        .unwrap();
    assert!(buyer.text.contains(&key) && buyer.html.contains(&key));
    assert!(buyer.text.contains("4 seats") && buyer.text.contains("Valid until 2024-11-13"));
}

#[tokio::test]
async fn without_a_signing_key_a_licence_line_waits_for_one() {
    struct NoKey;
    impl CourseEnroller for NoKey {
        async fn enrol(&self, _: &CourseProvider, _: &Enrolment) -> Result<Access, EnrolError> {
            Err(EnrolError::Transient("unused".into()))
        }
    }
    impl shared::ports::SellerNotifier for NoKey {
        async fn notify(
            &self,
            _: &str,
            _: &str,
            _: &[u8],
            _: &str,
        ) -> Result<(), shared::ports::NotifyError> {
            Ok(())
        }
    }
    impl Entropy for NoKey {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(1);
        }
    }
    impl LicenseSigner for NoKey {
        fn sign(&self, _: &shared::license::License) -> Result<String, SignError> {
            Err(SignError::NoKey)
        }

        fn sign_revocations(&self, _: u64, _: &[String]) -> Result<String, SignError> {
            Err(SignError::NoKey)
        }

        fn public_key(&self) -> Option<shared::license::VerifyingKey> {
            None
        }
    }
    let w = World::new();
    let id = paid(&w, &[("app", 1)]).await;
    let result = fulfil_order(&w.store, &w.orders, &w.queue, &w.clock, &NoKey, &id).await;
    assert!(matches!(result, Err(FulfilError::Retry(1))), "{result:?}");
    let order = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(order.lines[0].state, LineState::Pending);
    // Once a key is configured, the redelivered message delivers the line.
    w.fulfil(&id).await.unwrap();
    assert_eq!(w.status(&id).await, OrderStatus::Fulfilled);
}

/// A gateway whose sessions must stay open 30 minutes, like Stripe's: records the order
/// version and reservation each session was opened for (what Stripe's idempotency key and
/// `expires_at` are made of).
#[derive(Default)]
struct LongSessions(Mutex<Vec<(u64, i64)>>);

impl shared::ports::PaymentGateway for LongSessions {
    fn name(&self) -> &'static str {
        "long"
    }

    fn minimum_session_seconds(&self) -> i64 {
        30 * 60
    }

    async fn open_session(
        &self,
        order: &shared::domain::Order,
        _return_url: &str,
    ) -> Result<shared::ports::PaymentSession, shared::ports::GatewayError> {
        self.0
            .lock()
            .unwrap()
            .push((order.version, order.reserved_until));
        Ok(shared::ports::PaymentSession {
            id: format!("s{}", order.version),
            url: format!("https://pay.example.com/s{}", order.version),
        })
    }

    fn verify_webhook(
        &self,
        _headers: &http::HeaderMap,
        _body: &[u8],
        _now: i64,
    ) -> Result<Option<PaymentEvent>, shared::ports::WebhookError> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_second_click_on_the_pay_link_reopens_the_same_session() {
    let w = World::new();
    let receipt = w.checkout(&[("course", 1)], None).await.unwrap();
    let gateway = LongSessions::default();
    let open = || {
        shared::app::payment::open_payment(
            &w.store,
            &w.orders,
            &w.queue,
            &gateway,
            &w.clock,
            &receipt.order_id,
            "https://shop.example.com/orders/t",
        )
    };
    let first = open().await.unwrap();
    // The reservation now outlasts the session Stripe keeps open for 30 minutes.
    let opened = gateway.0.lock().unwrap()[0];
    assert!(opened.1 >= w.clock.now() + 30 * 60 + 60);
    w.clock.0.fetch_add(90, Ordering::SeqCst);
    let second = open().await.unwrap();
    assert_eq!(first, second);
    let sessions = gateway.0.lock().unwrap().clone();
    assert_eq!(sessions, vec![opened, opened], "same version and expiry");
    // Much later the reservation is extended again, so the new session still expires first.
    w.clock.0.fetch_add(20 * 60, Ordering::SeqCst);
    open().await.unwrap();
    let last = *gateway.0.lock().unwrap().last().unwrap();
    assert!(last.0 > opened.0 && last.1 >= w.clock.now() + 30 * 60 + 60);
}

impl shared::ports::Refunds for LongSessions {
    async fn refund(&self, _: &PaymentEvent, _: &str) -> Result<(), shared::ports::GatewayError> {
        Err(shared::ports::GatewayError::Refused(
            "no refunds here".into(),
        ))
    }
}

/// A gateway that cannot be reached: like [`LongSessions`], but opening a session fails.
struct DownGateway;

impl shared::ports::PaymentGateway for DownGateway {
    fn name(&self) -> &'static str {
        "down"
    }

    async fn open_session(
        &self,
        _order: &shared::domain::Order,
        _return_url: &str,
    ) -> Result<shared::ports::PaymentSession, shared::ports::GatewayError> {
        Err(shared::ports::GatewayError::Refused("down".into()))
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<PaymentEvent>, shared::ports::WebhookError> {
        LongSessions::default().verify_webhook(headers, body, now)
    }
}

impl World {
    /// The buy page's form checkout: the receipt, and where the buyer is sent.
    async fn checkout_and_pay<G: shared::ports::PaymentGateway>(
        &self,
        gateway: &G,
        key: Option<&str>,
    ) -> (Receipt, String) {
        let form = CheckoutForm {
            items: vec![("course".into(), "1".into())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            ..CheckoutForm::default()
        };
        let ctx = CheckoutContext {
            session_seconds: gateway.minimum_session_seconds(),
            ..self.ctx()
        };
        shared::app::checkout::place_order_and_pay(
            &ctx,
            &self.orders,
            &self.queue,
            gateway,
            &Checkout::parse(&form).unwrap(),
            key,
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_form_checkout_opens_the_session_at_once_and_holds_stock_long_enough_for_it() {
    let w = World::new();
    let gateway = LongSessions::default();
    let (receipt, destination) = w.checkout_and_pay(&gateway, Some("k1")).await;
    assert_eq!(destination, "https://pay.example.com/s1");
    // Placed holding its stock past the session's 30 minutes: opening it wrote nothing more.
    let order = w.order(&receipt.order_id).await;
    assert_eq!(order.version, 1);
    assert!(order.reserved_until >= w.clock.now() + 30 * 60 + 60);
    assert_eq!(
        gateway.0.lock().unwrap().clone(),
        vec![(1, order.reserved_until)]
    );
    // The pay link, followed at once, finds the reservation long enough and reuses it.
    let again = shared::app::payment::open_payment(
        &w.store,
        &w.orders,
        &w.queue,
        &gateway,
        &w.clock,
        &receipt.order_id,
        &receipt.order_url,
    )
    .await
    .unwrap();
    assert_eq!(again, destination);
    // A replayed checkout places nothing and sends the buyer to the pay link.
    let (replayed, to) = w.checkout_and_pay(&gateway, Some("k1")).await;
    assert_eq!(replayed, receipt);
    assert_eq!(to, receipt.payment_url);
    assert_eq!(w.orders.orders().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_form_checkout_whose_gateway_fails_sends_the_buyer_to_the_pay_link() {
    let w = World::new();
    let (receipt, destination) = w.checkout_and_pay(&DownGateway, None).await;
    assert_eq!(destination, receipt.payment_url);
    assert!(destination.ends_with("/pay"));
    assert_eq!(
        w.status(&receipt.order_id).await,
        OrderStatus::PendingPayment
    );
}

/// Links that name what they were asked for.
struct NamedLinks;

impl shared::ports::FileLinks for NamedLinks {
    async fn link(
        &self,
        bucket: &str,
        key: &str,
        filename: &str,
        seconds: u64,
    ) -> Result<String, shared::ports::BoxError> {
        Ok(format!("s3://{bucket}/{key}#{filename}@{seconds}"))
    }
}

#[tokio::test]
async fn a_download_line_gets_one_link_that_counts_down_and_expires() {
    use shared::app::downloads::{open_download, DownloadError};
    let w = World::new();
    let id = paid(&w, &[("ebook", 1), ("course", 1)]).await;
    w.fulfil(&id).await.unwrap();
    w.fulfil(&id).await.unwrap();
    let order = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Fulfilled);
    let line = order.lines.iter().find(|l| l.sku == sku("ebook")).unwrap();
    let Some(Access::Download {
        url,
        filename,
        expires_at,
        max_downloads,
    }) = line.access.clone()
    else {
        panic!("no download link: {line:?}");
    };
    assert_eq!(filename, "e-book.pdf");
    assert_eq!((expires_at, max_downloads), (w.clock.now() + 3 * 86_400, 2));
    let token = url
        .strip_prefix("https://shop.example.com/downloads/")
        .unwrap_or_else(|| panic!("{url}"));

    let open = || open_download(&w.store, &w.orders, &NamedLinks, &w.clock, token);
    let first = open().await.unwrap();
    assert_eq!(first.url, "s3://shop-files/books/e-book.pdf#e-book.pdf@300");
    assert_eq!(first.remaining, 1);
    w.clock.0.store(expires_at, Ordering::SeqCst);
    assert!(matches!(open().await, Err(DownloadError::Expired)));
    w.clock.0.store(expires_at - 1, Ordering::SeqCst);
    assert_eq!(open().await.unwrap().remaining, 0);
    assert!(matches!(open().await, Err(DownloadError::Exhausted)));

    let mails = w.send_mails(&id).await;
    let buyer = mails
        .iter()
        .find(|m| m.to[0].as_str() == "ann@example.com")
        .unwrap();
    // One mail for the order, with the course login and the download link.
    assert!(buyer.text.contains(&url) && buyer.text.contains("Username:"));
    assert!(buyer
        .text
        .contains("The link works 2 times, until 2023-11-17."));
}

#[tokio::test]
async fn physical_items_need_an_address_and_are_priced_by_weight_and_country() {
    let w = World::new();
    let place = |items: Vec<(&'static str, &'static str)>, address| {
        let form = CheckoutForm {
            items: items
                .into_iter()
                .map(|(s, q)| (s.to_owned(), q.to_owned()))
                .collect(),
            email: "ann@example.com".into(),
            name: "Ann".into(),
            payment_method: String::new(),
            address,
            ..Default::default()
        };
        let w = &w;
        async move {
            place_order(
                &w.ctx(),
                &w.orders,
                &w.queue,
                &Checkout::parse(&form)?,
                None,
            )
            .await
        }
    };
    // No address for a book: refused, nothing reserved.
    let refused = place(vec![("book", "1")], Default::default()).await;
    assert!(
        matches!(
            refused,
            Err(CheckoutError::Invalid {
                field: "address",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 0);
    // Over every rate's weight: refused as unshippable, nothing reserved.
    let heavy = place(vec![("book", "1"), ("crate", "1")], address("FR")).await;
    assert!(
        matches!(heavy, Err(CheckoutError::CannotShip(_))),
        "{heavy:?}"
    );
    assert_eq!(w.orders.stock_taken(&sku("book")).await.unwrap(), 0);
    // Elsewhere, the `*` rate.
    let receipt = place(vec![("book", "1")], address("fr")).await.unwrap();
    let order = w.orders.order(&receipt.order_id).await.unwrap().unwrap();
    assert_eq!(order.total.minor(), 2000 + 1200);
    assert_eq!(order.shipping.unwrap().address.country, "FR");
    // A digital order keeps no address even when one is sent.
    let receipt = place(vec![("course", "1")], address("DE")).await.unwrap();
    let order = w.orders.order(&receipt.order_id).await.unwrap().unwrap();
    assert!(order.shipping.is_none());
    assert_eq!(order.total.minor(), 4900);
}

#[tokio::test]
async fn shipping_and_delivery_move_forward_once_and_mail_the_buyer_once_each() {
    use shared::app::shipping::{deliver_order, ship_order, ShipError, Shipped};
    let w = World::new();
    let id = paid(&w, &[("book", 1), ("course", 1)]).await;
    w.fulfil(&id).await.unwrap();
    assert_eq!(w.status(&id).await, OrderStatus::AwaitingShipment);
    let outbox = w.orders.outbox();
    let mailing = w.mailing();
    let send = || send_order_mails(&mailing, &w.orders, &outbox, &w.clock, &id);
    send().await.unwrap();
    // Delivering before shipping, an unknown carrier, a bad tracking number: refused.
    assert!(matches!(
        deliver_order(&w.store, &w.orders, &w.queue, &w.clock, &id).await,
        Err(ShipError::NotShipped { .. })
    ));
    let ship = |carrier: &'static str, tracking: &'static str| {
        ship_order(
            &w.store, &w.orders, &w.queue, &w.clock, &id, carrier, tracking,
        )
    };
    assert!(matches!(
        ship("pigeon", "1").await,
        Err(ShipError::UnknownCarrier(..))
    ));
    assert!(matches!(
        ship("dhl", "a/b").await,
        Err(ShipError::BadTracking)
    ));
    assert_eq!(w.status(&id).await, OrderStatus::AwaitingShipment);

    let shipped = ship("DHL", "00340434 1234").await.unwrap();
    assert!(matches!(shipped, Shipped::Moved(_)));
    let order = shipped.order().clone();
    assert_eq!(order.status, OrderStatus::Shipped);
    let parcel = order.shipping.as_ref().unwrap().parcel.clone().unwrap();
    assert_eq!(
        parcel.tracking_url.as_deref(),
        Some("https://track.example/dhl?code=00340434%201234")
    );
    let book = order.lines.iter().find(|l| l.sku == sku("book")).unwrap();
    assert_eq!(book.state, LineState::Shipped);
    let course = order.lines.iter().find(|l| l.sku == sku("course")).unwrap();
    assert_eq!(course.state, LineState::Delivered);
    // The same command again changes nothing; another parcel is refused.
    assert!(matches!(
        ship("dhl", "00340434 1234").await.unwrap(),
        Shipped::Already(_)
    ));
    assert!(matches!(
        ship("dhl", "999").await,
        Err(ShipError::ShippedOtherwise(..))
    ));

    send().await.unwrap();
    let delivered = deliver_order(&w.store, &w.orders, &w.queue, &w.clock, &id)
        .await
        .unwrap();
    assert_eq!(delivered.order().status, OrderStatus::Delivered);
    assert!(matches!(
        deliver_order(&w.store, &w.orders, &w.queue, &w.clock, &id)
            .await
            .unwrap(),
        Shipped::Already(_)
    ));
    send().await.unwrap();
    send().await.unwrap();
    let mails = outbox.mails().unwrap();
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    let count = |prefix: &str| subjects.iter().filter(|s| s.starts_with(prefix)).count();
    assert_eq!(
        count("Your order from Test Store is on its way"),
        1,
        "{subjects:?}"
    );
    assert_eq!(
        count("Your order from Test Store was delivered"),
        1,
        "{subjects:?}"
    );
    assert_eq!(count("Ship order"), 1, "{subjects:?}");
    let tracking = mails
        .iter()
        .find(|m| m.subject.contains("on its way"))
        .unwrap();
    assert_eq!(tracking.to[0].as_str(), "ann@example.com");
    assert!(tracking
        .text
        .contains("https://track.example/dhl?code=00340434%201234"));
    assert!(tracking.text.contains("1 x Book") && !tracking.text.contains("Course"));
    let packing = mails
        .iter()
        .find(|m| m.subject.starts_with("Ship order"))
        .unwrap();
    assert!(packing.text.contains("Hauptstr. 1") && packing.text.contains("10115 Berlin"));
}

#[tokio::test]
async fn a_paid_order_is_queued_once_per_seller_webhook_and_retried_with_backoff_until_it_gives_up()
{
    use shared::app::notify::{backoff_seconds, notify_seller, Notified, MAX_ATTEMPTS};
    use shared::ports::NotifyError;
    let w = World::with_store(&format!(
        "{STORE}\n[[webhooks]]\nurl = \"https://erp.example.com/hook\"\nsecret = \"erp\"\n\n[[webhooks]]\nurl = \"https://crm.example.com/hook\"\nsecret = \"crm\"\n"
    ));
    assert_eq!(
        (1..MAX_ATTEMPTS)
            .map(|a| backoff_seconds(a - 1))
            .collect::<Vec<_>>(),
        vec![5, 20, 80, 320, 900, 900, 900]
    );
    let id = paid(&w, &[("course", 1)]).await;
    w.drained(QueueName::Fulfillment);
    w.fulfil(&id).await.unwrap();
    w.fulfil(&id).await.unwrap();
    let queued: Vec<Message> = w
        .drained(QueueName::Fulfillment)
        .into_iter()
        .filter(|m| matches!(m, Message::NotifySeller { .. }))
        .collect();
    assert_eq!(
        queued,
        (0..2)
            .map(|webhook| Message::NotifySeller {
                order_id: id.clone(),
                webhook,
                attempt: 0
            })
            .collect::<Vec<_>>(),
        "one message per webhook, however often fulfilment runs"
    );

    let notify = |webhook: u32, attempt: u32| {
        notify_seller(
            &w.store,
            &w.orders,
            &w.queue,
            &w.clock,
            &w.enroller,
            &id,
            webhook,
            attempt,
        )
    };
    // The ERP is down, then answers: the try after the failure delivers.
    w.enroller
        .notify_script
        .lock()
        .unwrap()
        .push(NotifyError::Transient("the webhook answered 503".into()));
    assert_eq!(notify(0, 0).await.unwrap(), Notified::Rescheduled(5));
    assert_eq!(notify(0, 1).await.unwrap(), Notified::Delivered);
    assert_eq!(notify(0, 1).await.unwrap(), Notified::AlreadyDone);
    let calls = w.enroller.notified.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, calls[1].1, "the same body each time");
    let body: serde_json::Value = serde_json::from_slice(&calls[0].1).unwrap();
    assert_eq!(body["type"], "order.paid");
    assert_eq!(body["order"]["order_id"], id.to_string());
    assert!(
        !String::from_utf8_lossy(&calls[0].1).contains("pw"),
        "no passwords"
    );

    // The CRM fails on its last try: given up, the seller is told once.
    w.enroller
        .notify_script
        .lock()
        .unwrap()
        .push(NotifyError::Transient(
            "no answer from the webhook: timed out".into(),
        ));
    let gave_up = notify(1, MAX_ATTEMPTS - 1).await.unwrap();
    assert!(
        matches!(gave_up, Notified::GaveUp(ref r) if r.contains("crm.example.com") && r.contains("8 tries")),
        "{gave_up:?}"
    );
    assert_eq!(
        notify(1, MAX_ATTEMPTS - 1).await.unwrap(),
        Notified::AlreadyDone
    );
    let order = w.orders.order(&id).await.unwrap().unwrap();
    assert_eq!(order.webhook_failures.len(), 1);
    let outbox = w.orders.outbox();
    for _ in 0..2 {
        send_order_mails(&w.mailing(), &w.orders, &outbox, &w.clock, &id)
            .await
            .unwrap();
    }
    let alerts: Vec<_> = outbox
        .mails()
        .unwrap()
        .into_iter()
        .filter(|m| m.subject.starts_with("Action needed: your webhook"))
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].to[0].as_str(), "seller@example.com");
    assert!(alerts[0].text.contains("https://crm.example.com/hook"));
    // An unknown webhook number cannot succeed: it goes to the DLQ.
    assert!(!notify(7, 0).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn a_course_or_a_download_is_bought_once_per_order_and_a_refusal_reserves_nothing() {
    let w = World::new();
    for items in [
        &[("seats", 2)][..],
        &[("ebook", 1), ("ebook", 1)][..],
        &[("course", 3)][..],
    ] {
        assert!(
            matches!(
                w.checkout(items, None).await,
                Err(CheckoutError::OncePerOrder(_))
            ),
            "{items:?}"
        );
    }
    let seats = Sku::parse("seats").unwrap();
    assert_eq!(w.orders.stock_taken(&seats).await.unwrap(), 0);
    // A licence for several seats and several books stay one line of many units.
    let r = w.checkout(&[("app", 3), ("book", 2)], None).await.unwrap();
    let order = w.order(&r.order_id).await;
    assert_eq!(order.lines[0].quantity.get(), 3);
    assert_eq!(order.lines[1].quantity.get(), 2);
}

#[test]
fn a_form_with_several_problems_reports_them_all_and_the_api_the_first() {
    let form = CheckoutForm {
        items: vec![("book".into(), "1".into())],
        email: "ann@localhost".into(),
        name: "A".repeat(101),
        payment_method: String::new(),
        address: shared::domain::AddressForm {
            name: "Ann".into(),
            line1: "Main 1".into(),
            country: "DE".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let problems = Checkout::parse_all(&form).unwrap_err();
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| match p {
            CheckoutError::Invalid { field, .. } => *field,
            _ => "?",
        })
        .collect();
    assert_eq!(fields, ["address.city", "email", "name"]);
    assert_eq!(
        Checkout::parse(&form).unwrap_err().to_string(),
        problems[0].to_string()
    );
}

mod pages {
    use super::*;
    use shared::app::order_token;
    use shared::app::pages::{order_page, Visit, REFRESH_LIMIT};

    fn page(w: &World, order: &Order, visit: &Visit) -> String {
        let token = order_token(b"k", &order.id);
        order_page(
            &w.store,
            &w.templates,
            &w.urls,
            order,
            &token,
            w.clock.now(),
            visit,
        )
        .unwrap()
        .replace("&#x2f;", "/")
    }

    #[tokio::test]
    async fn an_unpaid_order_waits_for_its_payment_and_reloads_only_while_one_is_confirming() {
        let w = World::new();
        let r = w.checkout(&[("course", 1)], None).await.unwrap();
        let order = w.order(&r.order_id).await;
        let waiting = page(&w, &order, &Visit::default());
        assert!(waiting.contains("Waiting for your payment"), "{waiting}");
        assert!(waiting.contains("/pay\""));
        assert!(!waiting.contains("http-equiv=\"refresh\""));

        // Back from the gateway, still unpaid: reload every few seconds, keeping the query.
        let back = Visit {
            returning: true,
            query: vec![("session_id".into(), "cs_test_1".into())],
            ..Visit::default()
        };
        let confirming = page(&w, &order, &back);
        assert!(confirming.contains("content=\"3;url="), "{confirming}");
        assert!(confirming.contains("?session_id=cs_test_1&amp;poll=1"));
        // With JavaScript it asks the order's JSON instead, and reloads once it moved on;
        // the timed reload is for browsers without it.
        assert!(confirming.contains(".json\", { headers"), "{confirming}");
        assert!(confirming.contains("<noscript><meta http-equiv=\"refresh\""));
        assert!(!waiting.contains(".json\", { headers"));
        assert!(!confirming.contains("/pay\""));

        // After the last reload: a link to look again instead.
        let tired = Visit {
            returning: true,
            polls: REFRESH_LIMIT,
            ..Visit::default()
        };
        let stopped = page(&w, &order, &tired);
        assert!(!stopped.contains("http-equiv=\"refresh\""));
        assert!(stopped.contains("check again"));
    }

    #[tokio::test]
    async fn a_paid_order_reloads_until_delivered_and_a_parcel_promises_no_access_details() {
        let w = World::new();
        let id = paid(&w, &[("course", 1)]).await;
        let settling = page(&w, &w.order(&id).await, &Visit::default());
        assert!(settling.contains("http-equiv=\"refresh\""), "{settling}");
        w.fulfil(&id).await.unwrap();
        let done = page(&w, &w.order(&id).await, &Visit::default());
        assert!(!done.contains("http-equiv=\"refresh\""));

        let book = paid(&w, &[("book", 1)]).await;
        w.fulfil(&book).await.unwrap();
        let parcel = page(&w, &w.order(&book).await, &Visit::default());
        assert!(parcel.contains("We will pack it"), "{parcel}");
        assert!(!parcel.contains("access details"));
    }

    #[tokio::test]
    async fn a_refused_form_shows_each_message_beside_its_field_and_what_was_typed_escaped() {
        use shared::app::pages::current_buy_page;
        let w = World::new();
        let form = CheckoutForm {
            items: vec![("book".into(), "2".into())],
            email: "ann@localhost".into(),
            name: "<b>Ann</b>".into(),
            payment_method: "bank_transfer".into(),
            address: shared::domain::AddressForm {
                name: "Ann".into(),
                city: "Berlin".into(),
                country: "FR".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let problems = Checkout::parse_all(&form).unwrap_err();
        let page = current_buy_page(
            &w.store,
            &w.templates,
            &w.urls,
            &w.orders,
            shared::app::pages::BuyRequest {
                sku: "book",
                form: Some(&form),
                problems: &problems,
            },
            shared::app::pages::HoldWindows::at(w.clock.now(), &w.store, 0),
        )
        .await
        .unwrap();
        // Beside the fields the page shows, in the form's order in the summary.
        let email = page.find("href=\"#email\"").unwrap();
        let street = page.find("href=\"#address_line1\"").unwrap();
        assert!(email < street, "{page}");
        assert!(page.contains("id=\"email-error\""));
        assert!(page.contains("aria-describedby=\"email-error email-hint\""));
        assert!(page.contains("id=\"address_line1-error\""));
        // What was typed, escaped.
        assert!(
            page.contains("value=\"&lt;b&gt;Ann&lt;&#x2f;b&gt;\""),
            "{page}"
        );
        assert!(!page.contains("<b>Ann"));
        assert!(page.contains("value=\"ann@localhost\""));
        // The country typed stays chosen, and the summary prices shipping there.
        assert!(page.contains("<option value=\"FR\" selected>France</option>"));
        assert!(page.contains("Shipping to <span id=\"summary-destination\">France</span>"));

        // A course is bought once per order: its page has no quantity field to point at.
        let course = CheckoutForm {
            items: vec![("course".into(), "2".into())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            ..Default::default()
        };
        let refused = w.checkout(&[("course", 2)], None).await.unwrap_err();
        let page = current_buy_page(
            &w.store,
            &w.templates,
            &w.urls,
            &w.orders,
            shared::app::pages::BuyRequest {
                sku: "course",
                form: Some(&course),
                problems: &[refused],
            },
            shared::app::pages::HoldWindows::at(w.clock.now(), &w.store, 0),
        )
        .await
        .unwrap();
        assert!(page.contains("bought once per order"));
        assert!(!page.contains("id=\"quantity\""));
        assert!(!page.contains("href=\"#quantity\""));

        // This store takes no transfers: the message is about the form, as the page shows
        // no payment choice to point at.
        let transfer = CheckoutForm {
            payment_method: "bank_transfer".into(),
            ..course.clone()
        };
        let refused = w
            .checkout_form(&CheckoutForm {
                items: vec![("course".into(), "1".into())],
                ..transfer.clone()
            })
            .await
            .unwrap_err();
        let page = current_buy_page(
            &w.store,
            &w.templates,
            &w.urls,
            &w.orders,
            shared::app::pages::BuyRequest {
                sku: "course",
                form: Some(&transfer),
                problems: &[refused],
            },
            shared::app::pages::HoldWindows::at(w.clock.now(), &w.store, 0),
        )
        .await
        .unwrap();
        assert!(page.contains("does not take bank transfers"), "{page}");
        assert!(!page.contains("href=\"#payment_method\""));
    }

    #[tokio::test]
    async fn a_download_shows_the_downloads_left_and_says_when_the_link_is_used_up() {
        let w = World::new();
        let id = paid(&w, &[("ebook", 1)]).await;
        w.fulfil(&id).await.unwrap();
        let order = w.order(&id).await;
        let mut visit = Visit::default();
        visit.downloads_used.insert(0, 1);
        assert!(page(&w, &order, &visit).contains("1 of 2 downloads left"));
        visit.downloads_used.insert(0, 2);
        let used_up = page(&w, &order, &visit);
        assert!(
            used_up.contains("This download link has ended"),
            "{used_up}"
        );
        assert!(!used_up.contains(">Download "));
    }
}

#[tokio::test]
async fn every_buyer_mail_links_to_the_order_page_and_the_sellers_copy_names_the_order() {
    let w = World::new();
    let mails = mails_for(&w, &[("course", 1)]).await;
    let buyer = mails
        .iter()
        .find(|m| m.to[0].as_str() == "ann@example.com")
        .unwrap();
    let order_id = buyer
        .text
        .split_whitespace()
        .find(|w| w.starts_with("ord_"))
        .unwrap()
        .trim_end_matches('.');
    let token = shared::app::order_token(b"k", &OrderId::parse(order_id).unwrap());
    let link = format!("https://shop.example.com/orders/{}", token.as_str());
    assert!(buyer.text.contains(&link), "{}", buyer.text);
    assert!(buyer.html.replace("&#x2f;", "/").contains(&link));
    assert!(buyer
        .html
        .contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));

    let copy = mails
        .iter()
        .find(|m| m.to[0].as_str() == "seller@example.com")
        .unwrap();
    assert_eq!(
        copy.subject,
        format!("[Copy] Order {order_id} · Course · Ann")
    );
    assert!(copy.text.contains("ann@example.com") && copy.html.contains("ann@example.com"));
    // The buyer's password stays with the buyer unless the store asks otherwise.
    assert!(buyer.text.contains("pw"));
    assert!(!copy.text.contains("Password:  pw") && !copy.html.contains(">pw<"));
    assert!(copy.text.contains("sent to the buyer only"));

    let w = World::with_store(&STORE.replace(
        "seller_copy = \"separate\"",
        "seller_copy = \"separate\"\nseller_copy_includes_secrets = true",
    ));
    let mails = mails_for(&w, &[("course", 1), ("book", 1)]).await;
    let copy = mails
        .iter()
        .find(|m| m.subject.starts_with("[Copy]"))
        .unwrap();
    assert!(
        copy.subject.contains("Course and 1 more"),
        "{}",
        copy.subject
    );
    assert!(copy.text.contains("Password:  pw"), "{}", copy.text);
    assert!(copy.text.contains("Ship to:"));
}

mod seats {
    use super::*;
    use shared::app::order_token;
    use shared::app::pages::{order_page, seat_page, Visit};
    use shared::app::seats::{claim_seat, find_seat, ClaimError, SeatForm};
    use shared::domain::{SeatRefused, SeatState, SeatToken};

    fn link(order: &OrderId, seat: usize) -> String {
        SeatToken::derive(&order_token(b"k", order), 0, seat)
            .as_str()
            .to_owned()
    }

    fn form(name: &str, email: &str) -> SeatForm {
        SeatForm {
            name: name.into(),
            email: email.into(),
        }
    }

    async fn claim(w: &World, token: &str, name: &str, email: &str) -> Result<(), ClaimError> {
        claim_seat(&w.orders, &w.queue, &w.clock, token, &form(name, email))
            .await
            .map(|_| ())
    }

    fn refused(result: Result<(), ClaimError>) -> SeatRefused {
        match result {
            Err(ClaimError::Refused(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn three_seats_enrol_the_buyer_and_each_claimer_once_and_mail_each_their_own_login() {
        let w = World::new();
        let id = paid(&w, &[("team", 3)]).await;
        w.fulfil(&id).await.unwrap();
        let order = w.order(&id).await;
        assert_eq!(order.lines[0].state, LineState::Delivered);
        assert_eq!(
            order.lines[0].seats.len(),
            2,
            "the buyer's seat and two links"
        );
        assert_eq!(w.enroller.calls.load(Ordering::SeqCst), 1);
        assert_eq!(w.orders.stock_taken(&sku("team")).await.unwrap(), 3);

        let (first, second) = (link(&id, 0), link(&id, 1));
        claim(&w, &first, "Kim Park", "kim@example.com")
            .await
            .unwrap();
        assert_eq!(
            w.drained(QueueName::Fulfillment),
            vec![Message::FulfilOrder {
                order_id: id.clone()
            }]
        );
        // The same person again (a reload): their claim stands, nothing changes.
        let version = w.order(&id).await.version;
        claim(&w, &first, "Kim Park", "KIM@example.com")
            .await
            .unwrap();
        assert_eq!(w.order(&id).await.version, version);
        // One seat per person, one person per seat, the buyer already has theirs.
        assert!(matches!(
            refused(claim(&w, &second, "Kim", "kim@example.com").await),
            SeatRefused::AlreadySeated(_)
        ));
        assert!(matches!(
            refused(claim(&w, &second, "Ann", "ann@example.com").await),
            SeatRefused::AlreadySeated(_)
        ));
        assert_eq!(
            refused(claim(&w, &first, "Lee", "lee@example.com").await),
            SeatRefused::Taken
        );

        // The worker enrols the claimer, once however often it runs.
        w.fulfil(&id).await.unwrap();
        w.fulfil(&id).await.unwrap();
        assert_eq!(w.enroller.calls.load(Ordering::SeqCst), 2);
        let order = w.order(&id).await;
        let holder = order.lines[0].seats[0].holder.as_ref().unwrap();
        assert_eq!(holder.state, SeatState::Delivered);
        assert!(
            matches!(&holder.access, Some(Access::Course { username, .. }) if username == "kim@example.com")
        );

        let mails = w.send_mails(&id).await;
        let to = |addr: &str| -> Vec<&shared::ports::OutgoingMail> {
            mails.iter().filter(|m| m.to[0].as_str() == addr).collect()
        };
        let kim = to("kim@example.com");
        assert_eq!(kim.len(), 1);
        assert_eq!(kim[0].subject, "Your seat in Team Course from Test Store");
        for body in [&kim[0].text, &kim[0].html] {
            assert!(
                body.contains("Hello Kim Park") && body.contains("seat 2"),
                "{body}"
            );
            assert!(body.contains("pw"), "the claimer's own password");
            assert!(
                !body.contains("/orders/") && !body.contains("/seats/"),
                "nothing of the buyer's order: {body}"
            );
            assert!(
                !body.contains("300.00") && !body.contains("100.00"),
                "no prices: {body}"
            );
        }
        // The buyer's mail lists the seats: who took one, and the free seat's link.
        let ann = to("ann@example.com");
        assert_eq!(ann.len(), 1);
        assert!(
            ann[0].text.contains("Seat 2: Kim Park <kim@example.com>"),
            "{}",
            ann[0].text
        );
        assert!(ann[0]
            .text
            .contains(&format!("Seat 3: https://shop.example.com/seats/{second}")));
        assert!(
            !ann[0].text.contains(&first),
            "a claimed seat's link is not shown again"
        );
        // The seller's copy leaves the free link out (it would give a seat away).
        let seller = to("seller@example.com");
        assert!(seller.iter().all(|m| !m.text.contains("/seats/")));
        assert!(seller
            .iter()
            .any(|m| m.text.contains("Seat 3: not claimed yet")));
        // Sending again sends nothing new.
        assert_eq!(w.send_mails(&id).await.len(), mails.len());

        // The buyer's page shows the same.
        let token = order_token(b"k", &id);
        let page = order_page(
            &w.store,
            &w.templates,
            &w.urls,
            &order,
            &token,
            w.clock.now(),
            &Visit::default(),
        )
        .unwrap()
        .replace("&#x2f;", "/");
        assert!(page.contains("Kim Park (kim@example.com)"), "{page}");
        assert!(page.contains(&format!("https://shop.example.com/seats/{second}")));
        // The order's JSON is as it was: no seats in it.
        let json =
            serde_json::to_string(&shared::app::pages::order_json(&order, &w.templates)).unwrap();
        assert!(!json.contains("seats") && !json.contains("kim@"), "{json}");
    }

    #[tokio::test]
    async fn seats_open_once_paid_and_only_their_own_link_opens_them() {
        let w = World::new();
        let r = w.checkout(&[("team", 2)], None).await.unwrap();
        let token = link(&r.order_id, 0);
        assert_eq!(
            refused(claim(&w, &token, "Kim", "kim@example.com").await),
            SeatRefused::NotOpen
        );
        let found = find_seat(&w.orders, &token).await.unwrap().unwrap();
        let page = seat_page(
            &w.store,
            &w.templates,
            &found,
            "/seats/x",
            &SeatForm::default(),
            &[],
            false,
        )
        .unwrap();
        assert!(
            page.contains("The seats open once the order is paid"),
            "{page}"
        );
        // Another seat's number, another order's token, a tampered secret: nothing there.
        let other = SeatToken::derive(&OrderToken::new(&r.order_id, [3; 16]), 0, 0);
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 2.., "AA");
        for bad in [
            link(&r.order_id, 1),
            other.as_str().to_owned(),
            tampered,
            "junk".into(),
        ] {
            assert!(find_seat(&w.orders, &bad).await.unwrap().is_none(), "{bad}");
            assert!(matches!(
                claim(&w, &bad, "Kim", "kim@example.com").await,
                Err(ClaimError::NotFound)
            ));
        }
        // A form with mistakes names each field and changes nothing.
        let version = w.order(&r.order_id).await.version;
        match claim(&w, &token, "", "not-an-address").await {
            Err(ClaimError::Invalid(fields)) => {
                let names: Vec<_> = fields.iter().map(|(f, _)| *f).collect();
                assert_eq!(names, ["name", "email"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.order(&r.order_id).await.version, version);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_people_racing_for_one_seat_cannot_both_have_it() {
        let w = Arc::new(World::new());
        let id = paid(&w, &[("team", 2)]).await;
        w.fulfil(&id).await.unwrap();
        let token = link(&id, 0);
        let runs = (0..8).map(|n| {
            let (w, token) = (w.clone(), token.clone());
            tokio::spawn(
                async move { claim(&w, &token, "Someone", &format!("p{n}@example.com")).await },
            )
        });
        let results: Vec<_> = futures::future::join_all(runs)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(ClaimError::Refused(SeatRefused::Taken)))));
    }

    #[tokio::test]
    async fn a_worker_that_died_enrolling_a_claimer_is_taken_over_once_its_lease_ends() {
        let w = World::new();
        let id = paid(&w, &[("team", 2)]).await;
        w.fulfil(&id).await.unwrap();
        claim(&w, &link(&id, 0), "Kim", "kim@example.com")
            .await
            .unwrap();
        // A worker took the enrolment and crashed before finishing it: the next run waits
        // for its lease to end.
        let now = w.clock.now();
        let dead = shared::ports::Owner::new();
        w.orders
            .claim(&id, "SEAT#0#0", &dead, now, now + 120)
            .await
            .unwrap();
        assert!(
            matches!(w.fulfil(&id).await, Err(FulfilError::Busy { until }) if until == now + 120)
        );
        assert_eq!(w.enroller.calls.load(Ordering::SeqCst), 1);
        w.clock.0.fetch_add(121, Ordering::SeqCst);
        w.fulfil(&id).await.unwrap();
        assert_eq!(w.enroller.calls.load(Ordering::SeqCst), 2);
        let order = w.order(&id).await;
        assert_eq!(
            order.lines[0].seats[0].holder.as_ref().unwrap().state,
            SeatState::Delivered
        );
    }

    #[tokio::test]
    async fn a_claimer_the_lms_refuses_is_reported_to_the_seller() {
        let w = World::new();
        let id = paid(&w, &[("team", 2)]).await;
        w.fulfil(&id).await.unwrap();
        claim(&w, &link(&id, 0), "Kim", "kim@example.com")
            .await
            .unwrap();
        w.enroller
            .script
            .lock()
            .unwrap()
            .push(EnrolError::Permanent("LMS answered 400".into()));
        w.fulfil(&id).await.unwrap();
        let mails = w.send_mails(&id).await;
        let alert = mails
            .iter()
            .find(|m| m.subject.contains("a seat of order"))
            .expect("the seller is told");
        assert_eq!(alert.to[0].as_str(), "seller@example.com");
        assert!(
            alert
                .text
                .contains("seat 2 claimed by Kim <kim@example.com>: LMS answered 400"),
            "{}",
            alert.text
        );
        assert!(mails.iter().all(|m| m.to[0].as_str() != "kim@example.com"));
    }

    #[tokio::test]
    async fn a_course_sold_by_the_seat_takes_a_quantity_up_to_its_stock() {
        let w = World::new();
        assert!(matches!(
            w.checkout(&[("team", 7)], None).await,
            Err(CheckoutError::SoldOut(_))
        ));
        let r = w.checkout(&[("team", 6)], None).await.unwrap();
        assert_eq!(w.order(&r.order_id).await.lines[0].seats.len(), 5);
        let r = w.checkout(&[("team", 1)], None);
        assert!(matches!(r.await, Err(CheckoutError::SoldOut(_))));
    }
}

mod held {
    use super::*;
    use shared::app::pages::{current_buy_page, HoldWindows};

    const BANK: &str = "[payments]\ngateway = \"testpay\"\n[payments.bank_transfer]\naccount_holder = \"Test Store\"\niban = \"DE89 3704 0044 0532 0130 00\"\nreservation_days = 5";

    async fn buy_page(w: &World) -> String {
        current_buy_page(
            &w.store,
            &w.templates,
            &w.urls,
            &w.orders,
            shared::app::pages::BuyRequest {
                sku: "team",
                form: None,
                problems: &[],
            },
            HoldWindows::at(w.clock.now(), &w.store, 0),
        )
        .await
        .unwrap()
    }

    fn form(seats: u32, method: &str) -> CheckoutForm {
        CheckoutForm {
            items: vec![("team".into(), seats.to_string())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            payment_method: method.into(),
            address: Default::default(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn sold_out_says_so_only_when_nothing_is_left_and_held_units_say_when_they_may_return() {
        let w = World::with_store(&STORE.replace("[payments]\ngateway = \"testpay\"", BANK));
        assert_eq!(w.store.settings.reservation_minutes, 30);
        // 1_700_000_000 is 2023-11-14 22:13:20 UTC.
        let card = w.checkout_form(&form(4, "card")).await.unwrap();
        let page = buy_page(&w).await;
        assert!(page.contains("Only 2 left."), "{page}");

        // The last two go to a bank transfer: nothing left, all held.
        let transfer = w.checkout_form(&form(2, "bank_transfer")).await.unwrap();
        let page = buy_page(&w).await;
        assert!(
            page.contains("Sold out for now: the last 6 are reserved by buyers who have not paid yet. Any not paid for by card come back by 2023-11-14 22:43 UTC; those waiting for a bank transfer by 2023-11-19."),
            "{page}"
        );
        // A checkout refused as sold out tells the buyer the same, on the form.
        let refused = w.checkout_form(&form(1, "card")).await.unwrap_err();
        assert!(matches!(refused, CheckoutError::SoldOut(_)));
        let again = current_buy_page(
            &w.store,
            &w.templates,
            &w.urls,
            &w.orders,
            shared::app::pages::BuyRequest {
                sku: "team",
                form: Some(&form(1, "card")),
                problems: &[refused],
            },
            HoldWindows::at(w.clock.now(), &w.store, 0),
        )
        .await
        .unwrap();
        assert!(
            again.contains("<p class=\"notice\">Sold out for now: the last 6 are reserved"),
            "{again}"
        );

        // The card order is paid: its units are sold, only the transfer's are held.
        let total = w.order(&card.order_id).await.total.minor();
        apply_payment_event(
            &w.store,
            &w.orders,
            &w.queue,
            &w.gateway,
            &w.clock,
            &w.approved("evt-card", &card.order_id, total),
        )
        .await
        .unwrap();
        let page = buy_page(&w).await;
        assert!(
            page.contains("Sold out for now: the last 2 are reserved by buyers who have not paid yet. They are waiting for bank transfers; any that do not arrive come back by 2023-11-19."),
            "{page}"
        );

        // The transfer is paid too: truly sold out.
        shared::app::payment::confirm_transfer(
            &w.store,
            &w.orders,
            &w.queue,
            &w.clock,
            &transfer.order_id,
        )
        .await
        .unwrap();
        let page = buy_page(&w).await;
        assert!(page.contains("<p class=\"notice\">Sold out.</p>"), "{page}");
        let level = w.orders.stock(&sku("team")).await.unwrap();
        assert_eq!((level.taken, level.held()), (6, 0));
    }

    #[tokio::test]
    async fn an_expired_order_gives_its_units_back_and_stops_holding_them() {
        let w = World::new();
        let r = w.checkout(&[("team", 6)], None).await.unwrap();
        let page = buy_page(&w).await;
        assert!(
            page.contains("Any they do not pay for come back by 2023-11-14 22:43 UTC"),
            "{page}"
        );
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        w.expiry().expire_if_due(&r.order_id).await.unwrap();
        let level = w.orders.stock(&sku("team")).await.unwrap();
        assert_eq!((level.taken, level.held()), (0, 0));
        assert!(buy_page(&w).await.contains("Only 6 left."));
    }
}

mod schedule {
    use super::*;
    use shared::app::schedule::{run_due_work, Ran};

    #[tokio::test]
    async fn an_abandoned_order_expires_and_frees_its_stock_without_anyone_opening_its_page() {
        let w = World::new();
        let abandoned = w.checkout(&[("team", 4)], None).await.unwrap();
        let paid_for = paid(&w, &[("team", 2)]).await;
        let nothing = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!(
            nothing,
            Ran::default(),
            "nothing is due while the reservation holds"
        );

        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        // Due too: the reconciler's look at the paid order, whose delivery (never run in
        // this test) it queues again.
        assert_eq!(
            (ran.due, ran.expired, ran.repaired, ran.failed),
            (2, 1, 1, 0)
        );
        assert_eq!(w.status(&abandoned.order_id).await, OrderStatus::Expired);
        assert_eq!(w.status(&paid_for).await, OrderStatus::Paid);
        let level = w.orders.stock(&sku("team")).await.unwrap();
        assert_eq!(
            (level.taken, level.held()),
            (2, 0),
            "the abandoned units are back"
        );
        // Done: the next run finds nothing.
        let again = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!(again, Ran::default());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_runs_expire_each_order_and_give_its_stock_back_once() {
        let w = Arc::new(World::new());
        for _ in 0..3 {
            w.checkout(&[("team", 2)], None).await.unwrap();
        }
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        let runs = (0..4).map(|_| {
            let w = w.clone();
            tokio::spawn(async move { run_due_work(&w.expiry()).await })
        });
        for run in futures::future::join_all(runs).await {
            assert_eq!(run.unwrap().unwrap().failed, 0);
        }
        let level = w.orders.stock(&sku("team")).await.unwrap();
        assert_eq!((level.taken, level.held()), (0, 0));
        // Six units back, no more: all six can be sold again, and a seventh cannot.
        w.checkout(&[("team", 6)], None).await.unwrap();
        assert!(matches!(
            w.checkout(&[("team", 1)], None).await,
            Err(CheckoutError::SoldOut(_))
        ));
    }
}

mod late {
    use super::*;
    use shared::app::schedule::run_due_work;

    fn with_policy(policy: &str) -> World {
        World::with_store(&STORE.replace(
            "gateway = \"testpay\"",
            &format!("gateway = \"testpay\"\nlate_payment = \"{policy}\""),
        ))
    }

    /// Places an order for `items` and opens its payment session through the pay link, as a
    /// buyer would; gives the order and the session's id.
    async fn with_session(w: &World, items: &[(&str, u32)]) -> (OrderId, String) {
        let r = w.checkout(items, None).await.unwrap();
        shared::app::payment::open_payment(
            &w.store,
            &w.orders,
            &w.queue,
            &w.gateway,
            &w.clock,
            &r.order_id,
            &r.order_url,
        )
        .await
        .unwrap();
        let order = w.order(&r.order_id).await;
        assert_eq!(order.gateway_sessions.len(), 1, "the session is remembered");
        (r.order_id, order.gateway_sessions[0].clone())
    }

    async fn pay_late(w: &World, id: &OrderId, event_id: &str) -> Applied {
        let total = w.order(id).await.total.minor();
        let event = w.approved(event_id, id, total);
        apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &event)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_session_found_paid_at_expiry_time_is_fulfilled_not_expired() {
        let w = World::new();
        let (id, session) = with_session(&w, &[("book", 1)]).await;
        // Opening it again reuses it: no second session is remembered.
        let order = w.order(&id).await;
        shared::app::payment::open_payment_for(
            &w.orders,
            &w.gateway,
            &w.clock,
            order,
            "https://shop.example.com/orders/t",
        )
        .await
        .unwrap();
        assert_eq!(w.order(&id).await.gateway_sessions.len(), 1);
        let total = w.order(&id).await.total.minor();
        // The buyer paid at the last moment and the webhook has not come yet.
        let event = w.approved(&format!("{session}:paid"), &id, total);
        w.gateway
            .paid
            .lock()
            .unwrap()
            .insert(session.clone(), event);
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!((ran.due, ran.expired, ran.failed), (1, 0, 0));
        assert_eq!(w.status(&id).await, OrderStatus::Paid);
        assert!(w
            .drained(QueueName::Fulfillment)
            .contains(&Message::FulfilOrder {
                order_id: id.clone()
            }));
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 1);
        // The webhook that comes after is a repeat.
        assert_eq!(
            pay_late(&w, &id, &format!("{session}:paid")).await,
            Applied::Duplicate
        );
    }

    #[tokio::test]
    async fn an_open_session_is_closed_before_its_order_expires() {
        let w = World::new();
        let (id, session) = with_session(&w, &[("book", 1)]).await;
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!((ran.due, ran.expired), (1, 1));
        assert_eq!(*w.gateway.closed.lock().unwrap(), vec![session]);
        assert_eq!(w.status(&id).await, OrderStatus::Expired);
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 0);
    }

    #[tokio::test]
    async fn a_late_payment_takes_the_stock_again_when_it_is_there() {
        let w = World::new();
        let (id, _) = with_session(&w, &[("book", 1)]).await;
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        run_due_work(&w.expiry()).await.unwrap();
        assert_eq!(
            pay_late(&w, &id, "late-1").await,
            Applied::Moved(OrderStatus::Paid)
        );
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 1);
        assert!(w
            .drained(QueueName::Fulfillment)
            .contains(&Message::FulfilOrder {
                order_id: id.clone()
            }));
        assert_eq!(pay_late(&w, &id, "late-1").await, Applied::Duplicate);
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 1);
    }

    #[tokio::test]
    async fn a_late_payment_for_stock_sold_meanwhile_is_held_and_the_seller_mailed() {
        let w = World::new();
        let (id, _) = with_session(&w, &[("book", 3)]).await;
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        run_due_work(&w.expiry()).await.unwrap();
        // Someone else bought the books meanwhile.
        let _ = paid(&w, &[("book", 2)]).await;
        let held = pay_late(&w, &id, "late-2").await;
        assert!(matches!(held, Applied::Recorded(ref note) if note.contains("no longer in stock")));
        assert_eq!(w.status(&id).await, OrderStatus::Expired);
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 2);
        let mails = w.send_mails(&id).await;
        let alert: Vec<_> = mails
            .iter()
            .filter(|m| m.subject.starts_with("Action needed"))
            .collect();
        assert_eq!(alert.len(), 1);
        assert_eq!(alert[0].to[0].as_str(), "seller@example.com");
        assert!(alert[0].text.contains("arrived after order"));
    }

    #[tokio::test]
    async fn the_refund_policy_gives_the_money_back_once_and_tells_the_buyer_why() {
        let w = with_policy("refund");
        let (id, _) = with_session(&w, &[("book", 1)]).await;
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        run_due_work(&w.expiry()).await.unwrap();
        let refunded = pay_late(&w, &id, "late-3").await;
        assert!(matches!(refunded, Applied::Recorded(ref note) if note.contains("refunded")));
        assert_eq!(pay_late(&w, &id, "late-3").await, Applied::Duplicate);
        assert_eq!(
            *w.gateway.refunds.lock().unwrap(),
            vec!["nightshift-late-refund-testpay:late-3".to_owned()]
        );
        let order = w.order(&id).await;
        assert_eq!(
            (order.status, order.late_refund),
            (OrderStatus::Expired, Some(order.total))
        );
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 0);
        let mails = w.send_mails(&id).await;
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert_eq!(mails[0].to[0].as_str(), "ann@example.com");
        assert!(mails[0].subject.contains("was refunded"));
        assert!(mails[0].text.contains("after the order had expired"));
        assert!(w.send_mails(&id).await.len() == 1, "sent once");
    }

    #[tokio::test]
    async fn a_refund_the_gateway_refuses_is_held_for_the_seller() {
        let w = with_policy("refund");
        w.gateway.refuse_refunds.store(true, Ordering::SeqCst);
        let (id, _) = with_session(&w, &[("book", 1)]).await;
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        run_due_work(&w.expiry()).await.unwrap();
        let held = pay_late(&w, &id, "late-4").await;
        assert!(matches!(held, Applied::Recorded(ref note) if note.contains("refund it by hand")));
        assert_eq!(w.order(&id).await.late_refund, None);
    }

    #[tokio::test]
    async fn the_hold_policy_keeps_the_order_expired_and_asks_the_seller() {
        let w = with_policy("hold");
        let (id, _) = with_session(&w, &[("book", 1)]).await;
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        run_due_work(&w.expiry()).await.unwrap();
        let held = pay_late(&w, &id, "late-5").await;
        assert!(
            matches!(held, Applied::Recorded(ref note) if note.contains("holds late payments"))
        );
        assert_eq!(w.status(&id).await, OrderStatus::Expired);
        assert_eq!(w.orders.stock(&sku("book")).await.unwrap().taken, 0);
        assert!(w.gateway.refunds.lock().unwrap().is_empty());
    }
}

mod reminders {
    use super::*;
    use shared::app::payment::confirm_transfer;
    use shared::app::schedule::run_due_work;

    const BANK: &str = "[payments]\ngateway = \"testpay\"\n[payments.bank_transfer]\naccount_holder = \"Test Store\"\niban = \"DE89 3704 0044 0532 0130 00\"\npay_within_days = 3\n\n[reminders]\nbank_transfer = [\"24h\", \"2h\"]";

    fn bank() -> World {
        World::with_store(&STORE.replace("[payments]\ngateway = \"testpay\"", BANK))
    }

    async fn by_transfer(w: &World) -> OrderId {
        let form = CheckoutForm {
            items: vec![("book".into(), "1".into())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            payment_method: "bank_transfer".into(),
            address: address("DE"),
            ..Default::default()
        };
        let receipt = w.checkout_form(&form).await.unwrap();
        // The bank details go out at once.
        let mails = w.send_mails(&receipt.order_id).await;
        assert_eq!(mails.len(), 1);
        receipt.order_id
    }

    fn reminders(mails: &[shared::ports::OutgoingMail]) -> usize {
        mails
            .iter()
            .filter(|m| m.subject.starts_with("Reminder:"))
            .count()
    }

    #[tokio::test]
    async fn transfer_reminders_go_out_at_their_times_each_once_then_the_order_expires() {
        let w = bank();
        let id = by_transfer(&w).await;
        let placed = w.order(&id).await;
        assert_eq!(
            placed.next_reminder_at,
            Some(placed.reserved_until - 86_400)
        );

        // Nothing due for almost two days.
        w.clock.0.fetch_add(2 * 86_400 - 60, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().reminded, 0);
        // 24 hours before the deadline: the first reminder, once however many runs see it.
        w.clock.0.fetch_add(60, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().reminded, 1);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().reminded, 0);
        let mails = w.send_mails(&id).await;
        assert_eq!(reminders(&mails), 1);
        let reminder = mails
            .iter()
            .find(|m| m.subject.starts_with("Reminder:"))
            .unwrap();
        assert_eq!(reminder.to[0].as_str(), "ann@example.com");
        let order = w.order(&id).await;
        for needed in [
            "DE89 3704 0044 0532 0130 00",
            order.transfer_reference.as_deref().unwrap(),
            "Total: €",
            "/orders/",
            "reserved for you until",
        ] {
            assert!(
                reminder.text.contains(needed),
                "{needed}: {}",
                reminder.text
            );
        }
        assert_eq!(reminders(&w.send_mails(&id).await), 1, "sent once");

        // Two hours before: the second.
        w.clock.0.fetch_add(22 * 3600, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().reminded, 1);
        assert_eq!(reminders(&w.send_mails(&id).await), 2);
        assert_eq!(w.order(&id).await.next_reminder_at, None);
        // Then the deadline: expired.
        w.clock.0.fetch_add(2 * 3600, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!((ran.expired, ran.reminded), (1, 0));
    }

    #[tokio::test]
    async fn a_confirmed_transfer_stops_the_reminders_even_one_already_counted() {
        let w = bank();
        let id = by_transfer(&w).await;
        w.clock.0.fetch_add(2 * 86_400, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().reminded, 1);
        // The seller confirms the money before the mailer got to the reminder.
        confirm_transfer(&w.store, &w.orders, &w.queue, &w.clock, &id)
            .await
            .unwrap();
        assert_eq!(reminders(&w.send_mails(&id).await), 0);
        w.clock.0.fetch_add(23 * 3600, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!(ran.reminded, 0, "a paid order gets no reminder");
        assert_eq!(w.order(&id).await.next_reminder_at, None);
        assert_eq!(reminders(&w.send_mails(&id).await), 0);
    }

    #[tokio::test]
    async fn a_buyer_who_agreed_gets_each_reminder_texted_once_and_no_one_else_does() {
        use shared::app::texts::send_order_texts;
        let w = World::with_store(&format!(
            "{}\n[sms]\nvia = \"sns\"\n",
            STORE.replace("[payments]\ngateway = \"testpay\"", BANK)
        ));
        let form = |phone: &str, consent: bool| CheckoutForm {
            items: vec![("book".into(), "1".into())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            payment_method: "bank_transfer".into(),
            address: address("DE"),
            phone: phone.into(),
            sms_consent: consent,
            ..Default::default()
        };
        let agreed = w
            .checkout_form(&form("+49 170 1234567", true))
            .await
            .unwrap();
        let silent = w.checkout_form(&form("", false)).await.unwrap();
        let consent = w.order(&agreed.order_id).await.texts.unwrap();
        assert_eq!(
            (consent.phone.as_str(), consent.at),
            ("+491701234567", w.clock.now())
        );
        w.clock.0.fetch_add(2 * 86_400, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().reminded, 2);
        let outbox = w.orders.texts();
        for id in [&agreed.order_id, &silent.order_id] {
            for _ in 0..2 {
                send_order_texts(&w.mailing(), &w.orders, &outbox, &w.clock, id)
                    .await
                    .unwrap();
            }
        }
        let texts = outbox.texts().unwrap();
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert_eq!(texts[0].to.as_str(), "+491701234567");
        assert!(texts[0].text.contains("DE89 3704 0044 0532 0130 00"));
        assert!(texts[0].text.contains(agreed.order_id.as_str()));
    }

    #[test]
    fn a_phone_needs_international_form_and_the_consent_box_and_the_box_a_phone() {
        let form = |phone: &str, consent: bool| CheckoutForm {
            items: vec![("book".into(), "1".into())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            phone: phone.into(),
            sms_consent: consent,
            ..Default::default()
        };
        let field = |f: CheckoutForm| match Checkout::parse(&f) {
            Err(CheckoutError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(form("0170 1234567", true)), "phone");
        assert_eq!(field(form("+49 170 1234567", false)), "sms_consent");
        assert_eq!(field(form("", true)), "phone");
        assert!(Checkout::parse(&form("", false)).unwrap().texts.is_none());
    }

    #[tokio::test]
    async fn a_deadline_closer_than_a_reminder_skips_it_and_none_is_ever_empty() {
        let w = World::with_store(&STORE.replace(
            "[payments]\ngateway = \"testpay\"",
            &BANK.replace("pay_within_days = 3", "pay_within_days = 1"),
        ));
        let id = by_transfer(&w).await;
        let order = w.order(&id).await;
        // The 24-hour reminder would fall at checkout: only the 2-hour one is planned.
        assert_eq!(order.next_reminder_at, Some(order.reserved_until - 7200));
        let none = World::with_store(&STORE.replace(
            "[payments]\ngateway = \"testpay\"",
            &BANK.replace("[\"24h\", \"2h\"]", "[]"),
        ));
        let id = by_transfer(&none).await;
        assert_eq!(none.order(&id).await.next_reminder_at, None);
    }
}

mod reconcile {
    use super::*;
    use shared::app::schedule::run_due_work;
    use shared::ports::{Owner, WorkClaims};

    async fn pay(w: &World, id: &OrderId) {
        let total = w.order(id).await.total.minor();
        let event = w.approved(&format!("evt-{id}"), id, total);
        apply_payment_event(&w.store, &w.orders, &w.queue, &w.gateway, &w.clock, &event)
            .await
            .unwrap();
    }

    async fn fulfil(w: &World, id: &OrderId) {
        w.fulfil(id).await.unwrap();
    }

    #[tokio::test]
    async fn a_lost_fulfilment_then_a_lost_mail_are_each_queued_again_once_then_it_stops_looking() {
        let w = World::new();
        let r = w.checkout(&[("book", 1)], None).await.unwrap();
        pay(&w, &r.order_id).await;
        // The fulfilment message is lost (a crash between the write and the queue).
        assert_eq!(w.drained(QueueName::Fulfillment).len(), 1);
        assert!(w.order(&r.order_id).await.check_at.is_some());
        assert_eq!(
            run_due_work(&w.expiry()).await.unwrap().repaired,
            0,
            "not yet"
        );
        w.clock.0.fetch_add(5 * 60, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!(ran.repaired, 1);
        assert_eq!(
            w.drained(QueueName::Fulfillment),
            vec![Message::FulfilOrder {
                order_id: r.order_id.clone()
            }]
        );
        // Delivered now; its mail message is lost too.
        fulfil(&w, &r.order_id).await;
        assert_eq!(w.drained(QueueName::Mail).len(), 1);
        w.clock.0.fetch_add(10 * 60, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().repaired, 1);
        assert_eq!(
            w.drained(QueueName::Mail),
            vec![Message::SendMail {
                order_id: r.order_id.clone()
            }]
        );
        let mails = w.send_mails(&r.order_id).await;
        assert!(mails.iter().any(|m| m.to[0].as_str() == "ann@example.com"));
        // All done: the next look clears the check, and nothing more is due.
        w.clock.0.fetch_add(20 * 60, Ordering::SeqCst);
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!((ran.due, ran.repaired), (1, 0));
        assert_eq!(w.order(&r.order_id).await.check_at, None);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().due, 0);
    }

    #[tokio::test]
    async fn a_mail_claimed_by_a_worker_that_died_is_queued_again_once_its_lease_ran_out() {
        let w = World::new();
        let id = paid(&w, &[("book", 1)]).await;
        fulfil(&w, &id).await;
        w.drained(QueueName::Mail);
        // A mailer claimed the buyer's mail and died before sending it.
        let order = w.order(&id).await;
        let keys: Vec<String> = shared::app::mail::plan(&w.store, &order)
            .into_iter()
            .map(|m| m.key)
            .collect();
        let now = w.clock.now();
        w.orders
            .claim_all(&id, &keys, &Owner::new(), now, now + 60)
            .await
            .unwrap();
        assert_eq!(
            w.orders.unfinished(&id, &keys, now).await.unwrap(),
            Vec::<String>::new()
        );
        w.clock.0.fetch_add(5 * 60, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().repaired, 1);
        assert_eq!(w.drained(QueueName::Mail).len(), 1);
        let mails = w.send_mails(&id).await;
        assert_eq!(
            mails
                .iter()
                .filter(|m| m.to[0].as_str() == "ann@example.com")
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn an_enrolment_still_in_progress_is_left_to_its_worker_and_looked_at_later() {
        let w = World::new();
        let id = paid(&w, &[("course", 1)]).await;
        w.drained(QueueName::Fulfillment);
        // A worker holds the course's step (its LMS is slow).
        let order = w.order(&id).await;
        let steps = shared::app::fulfil::outside_steps(&w.store, &order);
        assert_eq!(steps.len(), 1);
        w.clock.0.fetch_add(5 * 60, Ordering::SeqCst);
        let now = w.clock.now();
        w.orders
            .claim(&id, &steps[0], &Owner::new(), now, now + 60)
            .await
            .unwrap();
        let ran = run_due_work(&w.expiry()).await.unwrap();
        assert_eq!((ran.due, ran.repaired), (1, 0));
        assert!(w.drained(QueueName::Fulfillment).is_empty());
        let later = w.order(&id).await;
        assert_eq!((later.checks, later.check_at), (1, Some(now + 600)));
    }
}

mod recovery {
    use super::*;
    use shared::app::recovery::{recovery_token, reopen, unsubscribe, unsubscribe_token, Reopened};

    #[tokio::test]
    async fn a_cart_sold_out_meanwhile_comes_back_as_the_form_saying_so_and_nothing_is_placed() {
        let w = World::new();
        let form = CheckoutForm {
            items: vec![("book".into(), "3".into())],
            email: "ann@example.com".into(),
            name: "Ann".into(),
            address: address("DE"),
            remind_me: true,
            ..Default::default()
        };
        let left = w.checkout_form(&form).await.unwrap();
        assert_eq!(
            w.order(&left.order_id).await.recovery_at,
            Some(w.clock.now() + 3600)
        );
        w.clock.0.fetch_add(31 * 60, Ordering::SeqCst);
        w.expiry().expire_if_due(&left.order_id).await.unwrap();
        let _ = paid(&w, &[("book", 2)]).await;
        let before = w.orders.orders().await.unwrap().len();
        let token = recovery_token(b"k", &left.order_id);
        match reopen(&w.ctx(), &w.orders, &w.queue, &w.gateway, &token)
            .await
            .unwrap()
        {
            Reopened::Refused { form, problems } => {
                assert_eq!(form.items, vec![("book".to_owned(), "3".to_owned())]);
                assert!(matches!(problems[0], CheckoutError::SoldOut(_)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.orders.orders().await.unwrap().len(), before);
        // Someone else's token, or a changed one, opens nothing.
        for bad in [
            recovery_token(b"other key", &left.order_id),
            format!("{token}x"),
            "nonsense".into(),
        ] {
            assert!(matches!(
                reopen(&w.ctx(), &w.orders, &w.queue, &w.gateway, &bad)
                    .await
                    .unwrap(),
                Reopened::Unknown
            ));
        }
    }

    #[tokio::test]
    async fn only_a_signed_unsubscribe_link_unsubscribes_and_only_its_address() {
        use shared::ports::Suppressions;
        let w = World::new();
        let ann = shared::domain::Email::parse("ann@example.com").unwrap();
        let bob = shared::domain::Email::parse("bob@example.com").unwrap();
        let forged = unsubscribe_token(b"other key", &ann);
        assert_eq!(
            unsubscribe(&w.orders, &w.clock, b"k", &forged)
                .await
                .unwrap(),
            None
        );
        let swapped = format!(
            "{}.{}",
            unsubscribe_token(b"k", &bob).split('.').next().unwrap(),
            unsubscribe_token(b"k", &ann).split('.').nth(1).unwrap()
        );
        assert_eq!(
            unsubscribe(&w.orders, &w.clock, b"k", &swapped)
                .await
                .unwrap(),
            None
        );
        assert!(!w.orders.is_suppressed(&ann.digest()).await.unwrap());
        let real = unsubscribe_token(b"k", &ann);
        assert_eq!(
            unsubscribe(&w.orders, &w.clock, b"k", &real).await.unwrap(),
            Some(ann.clone())
        );
        assert!(w.orders.is_suppressed(&ann.digest()).await.unwrap());
        assert!(!w.orders.is_suppressed(&bob.digest()).await.unwrap());
    }
}

mod reviews {
    use super::*;
    use shared::app::schedule::run_due_work;

    fn reviewed() -> World {
        World::with_store(&STORE.replace(
            "[products.ebook]\n",
            "[reviews]\nafter_days = 7\n\n[products.ebook]\nreview_url = \"https://reviews.example.com/e-book\"\n",
        ))
    }

    #[tokio::test]
    async fn a_fulfilled_order_is_asked_for_a_review_once_after_the_days_set() {
        let w = reviewed();
        let id = paid(&w, &[("ebook", 1)]).await;
        w.fulfil(&id).await.unwrap();
        let order = w.order(&id).await;
        assert_eq!(order.status, OrderStatus::Fulfilled);
        assert_eq!(order.review_at, Some(w.clock.now() + 7 * 86_400));
        w.send_mails(&id).await;
        w.clock.0.fetch_add(7 * 86_400 - 60, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().review_requests, 0);
        w.clock.0.fetch_add(60, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().review_requests, 1);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().review_requests, 0);
        let mails = w.send_mails(&id).await;
        let asks: Vec<_> = mails
            .iter()
            .filter(|m| m.subject.starts_with("How was your order"))
            .collect();
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].to[0].as_str(), "ann@example.com");
        assert!(asks[0]
            .text
            .contains("Review E-book: https://reviews.example.com/e-book"));
        assert!(asks[0].text.contains("/unsubscribe/"));
        assert_eq!(
            w.send_mails(&id)
                .await
                .iter()
                .filter(|m| m.subject.starts_with("How was your order"))
                .count(),
            1,
            "sent once"
        );
    }

    #[tokio::test]
    async fn a_parcel_is_reviewed_from_its_delivery_through_the_stores_own_address() {
        use shared::app::shipping::{deliver_order, ship_order};
        let w = World::with_store(&STORE.replace(
            "[products.ebook]\n",
            "[reviews]\nurl = \"https://reviews.example.com/store\"\n\n[products.ebook]\n",
        ));
        let id = paid(&w, &[("book", 1)]).await;
        w.fulfil(&id).await.unwrap();
        assert_eq!(w.order(&id).await.review_at, None, "not before it arrives");
        ship_order(&w.store, &w.orders, &w.queue, &w.clock, &id, "DHL", "123")
            .await
            .unwrap();
        deliver_order(&w.store, &w.orders, &w.queue, &w.clock, &id)
            .await
            .unwrap();
        assert_eq!(
            w.order(&id).await.review_at,
            Some(w.clock.now() + 7 * 86_400)
        );
    }

    #[tokio::test]
    async fn no_review_request_without_a_review_url_or_to_an_unsubscribed_buyer() {
        use shared::ports::Suppressions;
        let w = reviewed();
        // The book has no review address and the store none either: nothing is planned.
        let book = paid(&w, &[("course", 1)]).await;
        w.fulfil(&book).await.unwrap();
        assert_eq!(w.order(&book).await.review_at, None);
        // Ann unsubscribed from reminders: no request.
        let ann = shared::domain::Email::parse("ann@example.com").unwrap();
        w.orders
            .suppress(&ann.digest(), w.clock.now())
            .await
            .unwrap();
        let id = paid(&w, &[("ebook", 1)]).await;
        w.fulfil(&id).await.unwrap();
        w.clock.0.fetch_add(8 * 86_400, Ordering::SeqCst);
        assert_eq!(run_due_work(&w.expiry()).await.unwrap().review_requests, 0);
        let order = w.order(&id).await;
        assert_eq!((order.review_at, order.review_mailed), (None, false));
    }
}
