//! Place an order: price from the catalogue, reserve stock atomically with the order, and
//! answer a repeated `Idempotency-Key` with the first answer.

use crate::config::Fulfillment;
use crate::config::Store;
use crate::domain::{
    AddressForm, BuyerName, Email, Line, LineState, Money, Order, OrderId, OrderStatus, OrderToken,
    ParseError, PaymentMethod, Phone, Quantity, Seat, SeatToken, Shipping, ShippingAddress, Sku,
    TextConsent,
};
use crate::ports::{
    Clock, Entropy, IdempotencyRecord, Message, NewOrder, OrderStore, PaymentGateway, PlaceError,
    Queue, QueueError, Reservation, StoreError,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Urls;

/// A checkout as the buyer sent it, before parsing (`Debug` leaves out the personal fields).
#[derive(Clone, Default)]
pub struct CheckoutForm {
    pub items: Vec<(String, String)>,
    pub email: String,
    pub name: String,
    /// `card` (the default when empty) or `bank_transfer`.
    pub payment_method: String,
    /// The shipping address, for orders holding physical items.
    pub address: AddressForm,
    /// A mobile number for texts about the order (empty: none), in international form.
    pub phone: String,
    /// The box "text me about this order" was ticked.
    pub sms_consent: bool,
    /// The box "remind me about this order" was ticked (recovery mail if it is left unpaid).
    pub remind_me: bool,
}

impl std::fmt::Debug for CheckoutForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutForm")
            .field("items", &self.items)
            .field("payment_method", &self.payment_method)
            .field("address", &self.address)
            .field("sms_consent", &self.sms_consent)
            .field("remind_me", &self.remind_me)
            .finish_non_exhaustive()
    }
}

/// A parsed checkout: skus merged, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub items: Vec<(Sku, Quantity)>,
    pub email: Email,
    pub name: BuyerName,
    pub payment_method: PaymentMethod,
    pub address: Option<ShippingAddress>,
    /// The number to text, given with the buyer's consent.
    pub texts: Option<Phone>,
    pub remind_me: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("there is no product `{0}`")]
    UnknownProduct(String),
    #[error("{0} is sold out")]
    SoldOut(Sku),
    /// More than one unit of a product that gives one person access.
    #[error("quantity: {0} gives one person access and is bought once per order")]
    OncePerOrder(Sku),
    #[error(transparent)]
    CannotShip(#[from] crate::config::ShippingRefused),
    #[error("this Idempotency-Key was already used for a different checkout")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What the buyer gets back: where to pay and where to follow the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub order_id: OrderId,
    pub order_url: String,
    pub payment_url: String,
    pub status: OrderStatus,
}

impl Checkout {
    /// Parses the form; the first problem found is the error.
    pub fn parse(form: &CheckoutForm) -> Result<Checkout, CheckoutError> {
        Checkout::parse_all(form).map_err(|mut problems| problems.swap_remove(0))
    }

    /// Parses the form, giving every problem at once (never an empty list), so that a person
    /// fixes the form in one go.
    pub fn parse_all(form: &CheckoutForm) -> Result<Checkout, Vec<CheckoutError>> {
        let mut problems = Vec::new();
        let invalid = |field: &'static str| {
            move |e: ParseError| CheckoutError::Invalid {
                field,
                problem: e.to_string(),
            }
        };
        let items = Checkout::items(form).map_err(|e| problems.push(e)).ok();
        let payment_method = match form.payment_method.trim() {
            "" | "card" => Some(PaymentMethod::Card),
            "bank_transfer" => Some(PaymentMethod::BankTransfer),
            other => {
                problems.push(CheckoutError::Invalid {
                    field: "payment_method",
                    problem: format!(
                        "`{}` is not `card` or `bank_transfer`",
                        other.chars().take(32).collect::<String>()
                    ),
                });
                None
            }
        };
        let address = if form.address.is_empty() {
            Some(None)
        } else {
            match ShippingAddress::parse_all(&form.address) {
                Ok(address) => Some(Some(address)),
                Err(errors) => {
                    problems.extend(errors.into_iter().map(|e| CheckoutError::Invalid {
                        field: e.field,
                        problem: e.problem,
                    }));
                    None
                }
            }
        };
        let email = Email::parse(&form.email)
            .map_err(invalid("email"))
            .map_err(|e| problems.push(e))
            .ok();
        let name = BuyerName::parse(&form.name)
            .map_err(invalid("name"))
            .map_err(|e| problems.push(e))
            .ok();
        let texts = Checkout::texts(form).map_err(|e| problems.push(e)).ok();
        match (items, email, name, payment_method, address, texts) {
            (
                Some(items),
                Some(email),
                Some(name),
                Some(payment_method),
                Some(address),
                Some(texts),
            ) if problems.is_empty() => Ok(Checkout {
                items,
                email,
                name,
                payment_method,
                address,
                texts,
                remind_me: form.remind_me,
            }),
            _ => Err(problems),
        }
    }

    /// The items with their skus merged.
    /// The number to text: given only with the box ticked, and the box only with a number.
    fn texts(form: &CheckoutForm) -> Result<Option<Phone>, CheckoutError> {
        let typed = form.phone.trim();
        match (typed.is_empty(), form.sms_consent) {
            (true, false) => Ok(None),
            (true, true) => Err(CheckoutError::Invalid {
                field: "phone",
                problem: "enter the number to text, or untick the box".into(),
            }),
            (false, consent) => {
                let phone = Phone::parse(typed).map_err(|e| CheckoutError::Invalid {
                    field: "phone",
                    problem: e.to_string(),
                })?;
                if !consent {
                    return Err(CheckoutError::Invalid {
                        field: "sms_consent",
                        problem: "tick the box to agree to texts about this order, or leave the number empty".into(),
                    });
                }
                Ok(Some(phone))
            }
        }
    }

    fn items(form: &CheckoutForm) -> Result<Vec<(Sku, Quantity)>, CheckoutError> {
        let invalid = |e: ParseError| CheckoutError::Invalid {
            field: "quantity",
            problem: e.to_string(),
        };
        if form.items.is_empty() {
            return Err(CheckoutError::Invalid {
                field: "items",
                problem: "choose at least one product".into(),
            });
        }
        let mut items: Vec<(Sku, Quantity)> = Vec::new();
        for (sku, quantity) in &form.items {
            let sku = Sku::parse(sku.trim())
                .map_err(|_| CheckoutError::UnknownProduct(sku.chars().take(64).collect()))?;
            let quantity = Quantity::parse(quantity).map_err(invalid)?;
            match items.iter_mut().find(|(s, _)| *s == sku) {
                Some((_, q)) => *q = Quantity::new(q.get() + quantity.get()).map_err(invalid)?,
                None => items.push((sku, quantity)),
            }
        }
        Ok(items)
    }

    /// SHA-256 of the request, to tell a replay from a different request under the same key.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (sku, q) in &self.items {
            h.update(format!("{sku}\0{}\0", q.get()));
        }
        h.update(format!("{}\0{}", self.email, self.name));
        if self.payment_method == PaymentMethod::BankTransfer {
            h.update(b"\0bank_transfer");
        }
        if let Some(a) = &self.address {
            for part in [
                &a.name,
                &a.line1,
                &a.line2,
                &a.postal_code,
                &a.city,
                &a.region,
                &a.country,
            ] {
                h.update(b"\0");
                h.update(part.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

/// What checkout needs besides the store.
pub struct CheckoutContext<'a, C: Clock, E: Entropy> {
    pub store: &'a Store,
    pub urls: &'a Urls,
    pub clock: &'a C,
    pub entropy: &'a E,
    /// Secret that derives order page tokens ([`super::order_token`]): a replay answers with
    /// the same order URL and mail links to the page, while only the token's digest is stored.
    pub token_key: &'a [u8],
    /// The shortest time the gateway keeps a payment session open
    /// ([`PaymentGateway::minimum_session_seconds`]): a card order holds its stock at least
    /// that long, so its session can be opened at once without extending it.
    pub session_seconds: i64,
}

/// Places the order; an order paid by bank transfer also gets its mail with the bank details
/// queued.
pub async fn place_order<S: OrderStore, Q: Queue, C: Clock, E: Entropy>(
    ctx: &CheckoutContext<'_, C, E>,
    orders: &S,
    queue: &Q,
    checkout: &Checkout,
    idempotency_key: Option<&str>,
) -> Result<Receipt, CheckoutError> {
    Ok(
        place_and_queue(ctx, orders, queue, checkout, idempotency_key)
            .await?
            .0,
    )
}

/// Places the order as [`place_order`] does, then opens its payment session, so that a buyer
/// who checked out with a form goes straight to the gateway's page. Gives the receipt and
/// where to send the buyer: the gateway's page, or the pay link (which opens a session
/// itself) for a replayed checkout or when the gateway fails here.
pub async fn place_order_and_pay<
    S: OrderStore,
    Q: Queue,
    G: PaymentGateway,
    C: Clock,
    E: Entropy,
>(
    ctx: &CheckoutContext<'_, C, E>,
    orders: &S,
    queue: &Q,
    gateway: &G,
    checkout: &Checkout,
    idempotency_key: Option<&str>,
) -> Result<(Receipt, String), CheckoutError> {
    let (receipt, placed) = place_and_queue(ctx, orders, queue, checkout, idempotency_key).await?;
    let destination = match placed {
        Some(order) if order.status.takes_card_payment() => {
            match gateway.open_session(&order, &receipt.order_url).await {
                Ok(session) => {
                    if let Err(e) =
                        super::payment::remember_session(orders, gateway, order, &session.id).await
                    {
                        // The session still works: its webhook pays the order, and only the
                        // check before expiry misses it (the late-payment policy then applies).
                        tracing::warn!(error = %e, "the payment session was not remembered");
                    }
                    session.url
                }
                Err(e) => {
                    tracing::warn!(order_id = %order.id, error = %e, "no payment session at checkout; the pay link opens one");
                    receipt.payment_url.clone()
                }
            }
        }
        _ => receipt.payment_url.clone(),
    };
    Ok((receipt, destination))
}

/// Places the order and queues its bank details mail; gives the order too when it was placed
/// now (not for a replay).
async fn place_and_queue<S: OrderStore, Q: Queue, C: Clock, E: Entropy>(
    ctx: &CheckoutContext<'_, C, E>,
    orders: &S,
    queue: &Q,
    checkout: &Checkout,
    idempotency_key: Option<&str>,
) -> Result<(Receipt, Option<Order>), CheckoutError> {
    let (receipt, placed) = place(ctx, orders, checkout, idempotency_key).await?;
    if receipt.status == OrderStatus::AwaitingTransfer {
        // Also on a replay: the mail goes out once whatever happens, so a lost send is redone.
        // A queue that refuses it now does not undo the order the buyer has: the reconciler
        // finds the mail unsent and queues it again.
        let message = Message::SendMail {
            order_id: receipt.order_id.clone(),
        };
        if let Err(e) = queue.send(&message).await {
            tracing::warn!(order_id = %receipt.order_id, error = %e, "bank details mail not queued; the reconciler will send it");
        }
    }
    Ok((receipt, placed))
}

async fn place<S: OrderStore, C: Clock, E: Entropy>(
    ctx: &CheckoutContext<'_, C, E>,
    orders: &S,
    checkout: &Checkout,
    idempotency_key: Option<&str>,
) -> Result<(Receipt, Option<Order>), CheckoutError> {
    let transfer = match checkout.payment_method {
        PaymentMethod::Card => None,
        PaymentMethod::BankTransfer => Some(ctx.store.payments.bank_transfer.as_ref().ok_or(
            CheckoutError::Invalid {
                field: "payment_method",
                problem: "this store does not take bank transfers".into(),
            },
        )?),
    };
    if checkout.texts.is_some() && ctx.store.sms.is_none() {
        return Err(CheckoutError::Invalid {
            field: "phone",
            problem: "this store does not send text messages".into(),
        });
    }
    let currency = ctx.store.settings.currency;
    let mut lines = Vec::with_capacity(checkout.items.len());
    let mut reservations = Vec::new();
    let mut total = Money::zero(currency);
    let mut weight: Option<u32> = None;
    for (sku, quantity) in &checkout.items {
        let product = ctx
            .store
            .product(sku)
            .ok_or_else(|| CheckoutError::UnknownProduct(sku.to_string()))?;
        if quantity.get() > product.units_per_order() {
            return Err(CheckoutError::OncePerOrder(sku.clone()));
        }
        if let Some(limit) = product.stock {
            if quantity.get() > limit {
                return Err(CheckoutError::SoldOut(sku.clone()));
            }
            reservations.push(Reservation {
                sku: sku.clone(),
                quantity: quantity.get(),
                limit,
                method: checkout.payment_method,
            });
        }
        let subtotal = product
            .price
            .times(quantity.get())
            .map_err(|e| CheckoutError::Invalid {
                field: "quantity",
                problem: e.to_string(),
            })?;
        total = total
            .checked_add(subtotal)
            .map_err(|e| CheckoutError::Invalid {
                field: "items",
                problem: e.to_string(),
            })?;
        if let Fulfillment::Shipment { weight_grams } = product.fulfillment {
            let grams = weight_grams.saturating_mul(quantity.get());
            weight = Some(weight.unwrap_or(0).saturating_add(grams));
        }
        lines.push(Line {
            sku: sku.clone(),
            name: product.name.clone(),
            kind: product.fulfillment.kind(),
            quantity: *quantity,
            unit_price: product.price,
            state: LineState::Pending,
            access: None,
            failure: None,
            seats: Vec::new(),
        });
    }

    // Physical items: an address, and shipping priced from the store's rates.
    let shipping = match (weight, &checkout.address, &ctx.store.shipping) {
        (None, _, _) => None,
        (Some(_), None, _) => {
            return Err(CheckoutError::Invalid {
                field: "address",
                problem: "this order holds physical items: give a shipping address".into(),
            })
        }
        (Some(_), Some(_), None) => {
            return Err(CheckoutError::Invalid {
                field: "address",
                problem: "this store has no shipping rates".into(),
            })
        }
        (Some(grams), Some(address), Some(settings)) => {
            let price = settings.quote(&address.country, grams)?;
            total = total
                .checked_add(price)
                .map_err(|e| CheckoutError::Invalid {
                    field: "items",
                    problem: e.to_string(),
                })?;
            Some(Shipping {
                address: address.clone(),
                price,
                weight_grams: grams,
                parcel: None,
                delivered_at: None,
            })
        }
    };

    let fingerprint = checkout.fingerprint();
    let idempotency = idempotency_key.map(|key| hex::encode(Sha256::digest(key.as_bytes())));
    if let Some(key_hash) = &idempotency {
        if let Some(record) = orders.idempotency_record(key_hash).await? {
            return replay(ctx, &record, &fingerprint, checkout.payment_method).map(|r| (r, None));
        }
    }
    let mut id = [0u8; 10];
    ctx.entropy.fill(&mut id);
    let id = OrderId::from_random(id);
    let token = super::order_token(ctx.token_key, &id);
    // A course sold by the seat: the buyer's seat, and a claim link for each of the others.
    for (index, line) in lines.iter_mut().enumerate() {
        if ctx
            .store
            .product(&line.sku)
            .is_some_and(|p| p.sells_seats())
        {
            line.seats = (0..line.quantity.get() as usize - 1)
                .map(|seat| Seat {
                    check: SeatToken::derive(&token, index, seat).check(),
                    holder: None,
                })
                .collect();
        }
    }
    let now = ctx.clock.now();
    let (status, reserved_until, transfer_reference) = match transfer {
        None => (
            OrderStatus::PendingPayment,
            (now + i64::from(ctx.store.settings.reservation_minutes) * 60)
                .max(super::payment::session_hold_until(now, ctx.session_seconds)),
            None,
        ),
        Some(bank) => (
            OrderStatus::AwaitingTransfer,
            now + i64::from(bank.pay_within_days) * 86_400,
            Some(id.transfer_reference(&bank.reference_prefix)),
        ),
    };
    let order = Order {
        id,
        version: 1,
        status,
        email: checkout.email.clone(),
        name: checkout.name.clone(),
        lines,
        total,
        created_at: now,
        reserved_until,
        payment_method: checkout.payment_method,
        transfer_reference,
        refunded: None,
        decline_notice: false,
        payment_issues: Vec::new(),
        store_url: Some(ctx.urls.base().to_owned()),
        shipping,
        webhook_failures: Vec::new(),
        late_refund: None,
        texts: checkout
            .texts
            .clone()
            .map(|phone| TextConsent { phone, at: now }),
        // The bank details mail is queued next: the reconciler sees that it went out.
        recovery_at: (checkout.remind_me
            && ctx.store.recovery.enabled
            && status == OrderStatus::PendingPayment)
            .then_some(now + ctx.store.recovery.after),
        recovery_mailed: false,
        review_at: None,
        review_mailed: false,
        check_at: (status == OrderStatus::AwaitingTransfer)
            .then_some(now + crate::domain::CHECK_AFTER_SECONDS),
        checks: 0,
        reminders_sent: 0,
        next_reminder_at: (status == OrderStatus::AwaitingTransfer)
            .then(|| {
                ctx.store
                    .reminders
                    .next_transfer_reminder(reserved_until, now)
            })
            .flatten(),
        gateway_sessions: Vec::new(),
        token: Some(token.check()),
        events: Vec::new(),
    };
    let new = NewOrder {
        reservations,
        idempotency: idempotency.as_ref().map(|key_hash| IdempotencyRecord {
            key_hash: key_hash.clone(),
            fingerprint: fingerprint.clone(),
            order_id: order.id.clone(),
        }),
        order,
    };
    match orders.place_order(&new).await {
        Ok(()) => Ok((
            receipt(
                ctx.urls,
                new.order.id.clone(),
                &token,
                checkout.payment_method,
            ),
            Some(new.order),
        )),
        Err(PlaceError::SoldOut(sku)) => Err(CheckoutError::SoldOut(sku)),
        // A concurrent request with the same key won the race: answer as it did.
        Err(PlaceError::KeyUsed(record)) => {
            replay(ctx, &record, &fingerprint, checkout.payment_method).map(|r| (r, None))
        }
        Err(PlaceError::Store(e)) => Err(e.into()),
    }
}

fn replay<C: Clock, E: Entropy>(
    ctx: &CheckoutContext<'_, C, E>,
    record: &IdempotencyRecord,
    fingerprint: &str,
    method: PaymentMethod,
) -> Result<Receipt, CheckoutError> {
    if record.fingerprint != fingerprint {
        return Err(CheckoutError::KeyReused);
    }
    let token = super::order_token(ctx.token_key, &record.order_id);
    Ok(receipt(ctx.urls, record.order_id.clone(), &token, method))
}

/// The first answer to a checkout (a replay gives the same: the status it was placed with).
fn receipt(urls: &Urls, order_id: OrderId, token: &OrderToken, method: PaymentMethod) -> Receipt {
    match method {
        PaymentMethod::Card => Receipt {
            order_id,
            order_url: urls.order(token),
            payment_url: urls.pay(token),
            status: OrderStatus::PendingPayment,
        },
        // The bank details are on the order page.
        PaymentMethod::BankTransfer => Receipt {
            order_id,
            order_url: urls.order(token),
            payment_url: urls.order(token),
            status: OrderStatus::AwaitingTransfer,
        },
    }
}
