//! The order's mails: which ones it gets (grouping and seller copy from the store), rendered
//! from templates, each sent once.

use super::render::{
    line_views, rendered_lines, with_seat_links, LineView, MoneyView, RenderError, ShippingView,
    StoreView, Templates, TransferView,
};
use crate::config::{Grouping, SellerCopy, Store};
use crate::domain::{seat_number, LineState, Order, OrderId, OrderStatus, SeatHolder, SeatState};
use crate::ports::{
    Claim, Clock, MailError, MailSender, OrderStore, OutgoingMail, Owner, StoreError, WorkClaims,
};
use serde::Serialize;

const MAIL_LEASE_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum SendMailError {
    #[error("there is no order {0}")]
    UnknownOrder(OrderId),
    /// Another worker holds mail `key` until `until` (Unix seconds): look again then.
    #[error("another worker is sending mail {key} until {until}")]
    Busy { key: String, until: i64 },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl SendMailError {
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            SendMailError::UnknownOrder(_) | SendMailError::Render(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// The buyer's mail with their access details.
    Buyer,
    /// The same mail, sent to the seller.
    SellerCopy,
    /// Tells the seller what to pack and ship.
    Shipping,
    /// Tells the seller a line could not be delivered.
    Failure,
    /// Tells the buyer their payment was declined.
    Declined,
    /// Gives the buyer the bank details for their transfer.
    Transfer,
    /// Tells the buyer their payment came after the order expired and was refunded.
    LateRefund,
    /// Reminds the buyer their transfer has not arrived (the order's n-th reminder).
    TransferReminder(usize),
    /// Brings a buyer back to the order they left unpaid (they asked for it).
    Recovery,
    /// Asks the buyer for a review of what they received.
    Review,
    /// Tells the seller about a payment problem (the order's n-th).
    PaymentIssue(usize),
    /// Tells the buyer their parcel is on its way, with the tracking link.
    Shipped,
    /// Tells the buyer their parcel arrived.
    Delivered,
    /// Tells the seller one of their webhooks gave up on the order (the order's n-th).
    WebhookFailure(usize),
    /// Gives the person who claimed a seat (line, seat index) their own login.
    Seat(usize, usize),
    /// Tells the seller a claimed seat (line, seat index) could not be set up.
    SeatFailure(usize, usize),
}

/// One mail an order gets, with the key that makes it go out once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMail {
    pub key: String,
    pub kind: MailKind,
    /// Indexes of the lines it covers.
    pub lines: Vec<usize>,
}

/// The mails an order is due now: its payment alerts for the seller; the bank details while
/// it awaits a transfer; the declined notice; and once paid and settled, the delivery mails.
pub fn plan(store: &Store, order: &Order) -> Vec<PlannedMail> {
    let all: Vec<usize> = (0..order.lines.len()).collect();
    let mut mails: Vec<PlannedMail> = (0..order.payment_issues.len())
        .map(|n| PlannedMail {
            key: format!("MAIL#seller-payment#{n}"),
            kind: MailKind::PaymentIssue(n),
            lines: all.clone(),
        })
        .collect();
    mails.extend((0..order.webhook_failures.len()).map(|n| PlannedMail {
        key: format!("MAIL#seller-webhook#{n}"),
        kind: MailKind::WebhookFailure(n),
        lines: (0..order.lines.len()).collect(),
    }));
    if order.recovery_mailed && super::recovery::wants_recovery(order) {
        mails.push(PlannedMail {
            key: "MAIL#buyer-recovery#order".into(),
            kind: MailKind::Recovery,
            lines: all.clone(),
        });
    }
    if order.review_mailed && order.status.is_paid() {
        mails.push(PlannedMail {
            key: "MAIL#buyer-review#order".into(),
            kind: MailKind::Review,
            lines: all.clone(),
        });
    }
    if order.late_refund.is_some() {
        mails.push(PlannedMail {
            key: "MAIL#buyer-late-refund#order".into(),
            kind: MailKind::LateRefund,
            lines: all.clone(),
        });
    }
    match order.status {
        OrderStatus::AwaitingTransfer => {
            mails.push(PlannedMail {
                key: "MAIL#buyer-transfer#order".into(),
                kind: MailKind::Transfer,
                lines: all.clone(),
            });
            // Only while the transfer is awaited: once paid, a reminder not yet sent never is.
            mails.extend((0..order.reminders_sent as usize).map(|n| PlannedMail {
                key: format!("MAIL#buyer-transfer-reminder#{n}"),
                kind: MailKind::TransferReminder(n),
                lines: all.clone(),
            }));
        }
        OrderStatus::Declined if order.decline_notice => mails.push(PlannedMail {
            key: "MAIL#buyer-declined#order".into(),
            kind: MailKind::Declined,
            lines: all,
        }),
        _ => {}
    }
    if !order.status.is_paid() || order.lines.iter().any(|l| !l.state.is_settled()) {
        return mails;
    }
    let groups: Vec<(String, Vec<usize>)> = match store.mail.grouping {
        Grouping::Order => vec![("order".into(), (0..order.lines.len()).collect())],
        Grouping::Item => (0..order.lines.len())
            .map(|i| (format!("line-{i}"), vec![i]))
            .collect(),
    };
    for (suffix, lines) in groups {
        if store.mail.seller_copy == SellerCopy::Separate {
            mails.push(PlannedMail {
                key: format!("MAIL#seller-copy#{suffix}"),
                kind: MailKind::SellerCopy,
                lines: lines.clone(),
            });
        }
        mails.push(PlannedMail {
            key: format!("MAIL#buyer#{suffix}"),
            kind: MailKind::Buyer,
            lines,
        });
    }
    let with = |state: LineState| -> Vec<usize> {
        order
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.state == state)
            .map(|(i, _)| i)
            .collect()
    };
    let shipping = with(LineState::AwaitingShipment);
    if !shipping.is_empty() {
        mails.push(PlannedMail {
            key: "MAIL#seller-shipping#order".into(),
            kind: MailKind::Shipping,
            lines: shipping,
        });
    }
    if let Some(shipping) = &order.shipping {
        if shipping.parcel.is_some() {
            mails.push(PlannedMail {
                key: "MAIL#buyer-shipped#order".into(),
                kind: MailKind::Shipped,
                lines: shipped_lines(order),
            });
        }
        if shipping.delivered_at.is_some() {
            mails.push(PlannedMail {
                key: "MAIL#buyer-delivered#order".into(),
                kind: MailKind::Delivered,
                lines: shipped_lines(order),
            });
        }
    }
    let failed = with(LineState::Failed);
    if !failed.is_empty() {
        mails.push(PlannedMail {
            key: "MAIL#seller-failure#order".into(),
            kind: MailKind::Failure,
            lines: failed,
        });
    }
    for (index, line) in order.lines.iter().enumerate() {
        for (seat, holder) in line
            .seats
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.holder.as_ref().map(|h| (i, h)))
        {
            let (key, kind) = match holder.state {
                SeatState::Pending => continue,
                SeatState::Delivered => ("seat", MailKind::Seat(index, seat)),
                SeatState::Failed => ("seller-seat-failure", MailKind::SeatFailure(index, seat)),
            };
            mails.push(PlannedMail {
                key: format!("MAIL#{key}#{index}#{seat}"),
                kind,
                lines: vec![index],
            });
        }
    }
    mails
}

/// The physical lines of an order, whatever step they are at.
fn shipped_lines(order: &Order) -> Vec<usize> {
    order
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind == crate::domain::FulfillmentKind::Shipment)
        .map(|(i, _)| i)
        .collect()
}

#[derive(Serialize)]
struct MailContext<'a> {
    store: StoreView<'a>,
    buyer_name: &'a str,
    buyer_email: &'a str,
    order_id: &'a str,
    total: MoneyView,
    lines: Vec<super::render::RenderedLine<'a>>,
    /// For subjects: the product's name when the mail covers one line.
    product: &'a str,
    kind: &'static str,
    status: &'static str,
    /// The payment problem a seller's alert is about.
    issue: &'a str,
    transfer: Option<TransferView>,
    shipping: Option<ShippingView>,
    /// The buyer's order page, which every buyer mail links to.
    order_url: Option<String>,
    /// The store's address (`https://shop.example.com`), when the order knows it.
    store_url: Option<&'a str>,
    /// A recovery mail's links: back to payment for the same cart, and out of reminders.
    recover_url: Option<String>,
    unsubscribe_url: Option<String>,
    /// A review request's products and where to review each.
    reviews: Vec<ReviewLink>,
    /// The seller's copy of the buyer's mail.
    for_seller: bool,
    /// A mail only for the seller (packing, alerts): no buyer's links.
    for_seller_only: bool,
    /// What only the buyer should hold (a password, a download link) is left out.
    hide_secrets: bool,
}

/// What the mailer needs besides the order: the store, its templates, and the key that
/// rebuilds the order page's address.
pub struct Mailing<'a> {
    pub store: &'a Store,
    pub templates: &'a Templates,
    pub token_key: &'a [u8],
}

pub fn render(
    mailing: &Mailing<'_>,
    order: &Order,
    mail: &PlannedMail,
) -> Result<OutgoingMail, RenderError> {
    let (store, templates) = (mailing.store, mailing.templates);
    let mut all = line_views(order, templates);
    let token = super::order_token(mailing.token_key, &order.id);
    if let (true, Some(base)) = (order.opened_by(&token), order.store_url.as_deref()) {
        with_seat_links(&mut all, &token, &super::Urls::new(base));
    }
    if let MailKind::Seat(index, seat) | MailKind::SeatFailure(index, seat) = mail.kind {
        if let Some(holder) = seat_holder(order, index, seat) {
            return render_seat(mailing, order, &all[index], seat, holder, mail.kind);
        }
    }
    let lines: Vec<LineView> = mail.lines.iter().map(|i| all[*i].clone()).collect();
    let single = (lines.len() == 1).then(|| &store.products[&order.lines[mail.lines[0]].sku]);
    let kind = match mail.kind {
        MailKind::Buyer | MailKind::SellerCopy => "buyer",
        MailKind::Shipping => "shipping",
        MailKind::Failure => "failure",
        MailKind::Declined => "declined",
        MailKind::Transfer => "transfer",
        MailKind::LateRefund => "late_refund",
        MailKind::TransferReminder(_) => "transfer_reminder",
        MailKind::Recovery => "recovery",
        MailKind::Review => "review",
        MailKind::PaymentIssue(_) => "payment",
        MailKind::Shipped => "shipped",
        MailKind::Delivered => "delivered",
        MailKind::WebhookFailure(_) => "webhook",
        MailKind::Seat(..) => "seat",
        MailKind::SeatFailure(..) => "failure",
    };
    let issue = match mail.kind {
        MailKind::PaymentIssue(n) => order.payment_issues.get(n).map_or("", String::as_str),
        MailKind::WebhookFailure(n) => order.webhook_failures.get(n).map_or("", String::as_str),
        _ => "",
    };
    let recovery = (mail.kind == MailKind::Recovery)
        .then(|| super::recovery::recovery_links(mailing.token_key, order))
        .flatten();
    let context = MailContext {
        store: StoreView::new(store),
        buyer_name: order.name.as_str(),
        buyer_email: order.email.as_str(),
        order_id: order.id.as_str(),
        total: order.total.into(),
        lines: rendered_lines(&lines),
        product: single.map_or("", |p| p.name.as_str()),
        kind,
        status: order.status.as_str(),
        issue,
        transfer: TransferView::of(store, order),
        shipping: ShippingView::of(order),
        order_url: super::order_page_url(mailing.token_key, order),
        store_url: order.store_url.as_deref(),
        recover_url: recovery.as_ref().map(|(r, _)| r.clone()),
        unsubscribe_url: match mail.kind {
            MailKind::Review => order.store_url.as_ref().map(|base| {
                format!(
                    "{base}/unsubscribe/{}",
                    super::recovery::unsubscribe_token(mailing.token_key, &order.email)
                )
            }),
            _ => recovery.map(|(_, u)| u),
        },
        reviews: if mail.kind == MailKind::Review {
            review_links(store, order)
        } else {
            Vec::new()
        },
        for_seller: mail.kind == MailKind::SellerCopy,
        for_seller_only: matches!(
            mail.kind,
            MailKind::Shipping
                | MailKind::Failure
                | MailKind::PaymentIssue(_)
                | MailKind::WebhookFailure(_)
        ),
        hide_secrets: mail.kind == MailKind::SellerCopy && !store.mail.seller_copy_includes_secrets,
    };
    let (template, subject) = match mail.kind {
        MailKind::Buyer | MailKind::SellerCopy => {
            let subject = single
                .and_then(|p| p.mail.subject.as_deref())
                .unwrap_or(&store.mail.subject);
            ("mail_buyer", templates.render_line(subject, &context)?)
        }
        MailKind::Shipping => ("mail_seller", format!("Ship order {}", order.id)),
        MailKind::Failure => (
            "mail_seller",
            format!("Action needed: order {} could not be delivered", order.id),
        ),
        MailKind::PaymentIssue(_) => (
            "mail_seller",
            format!(
                "Action needed: a payment for order {} needs checking",
                order.id
            ),
        ),
        MailKind::Declined => (
            "mail_payment",
            format!("Your payment to {} did not go through", store.settings.name),
        ),
        MailKind::Transfer => (
            "mail_payment",
            format!("Bank details for your order from {}", store.settings.name),
        ),
        MailKind::LateRefund => (
            "mail_payment",
            format!("Your payment to {} was refunded", store.settings.name),
        ),
        MailKind::Recovery => (
            "mail_payment",
            format!("Your order from {} is waiting for you", store.settings.name),
        ),
        MailKind::Review => (
            "mail_payment",
            format!("How was your order from {}?", store.settings.name),
        ),
        MailKind::TransferReminder(_) => (
            "mail_payment",
            format!(
                "Reminder: your order from {} is waiting for your transfer",
                store.settings.name
            ),
        ),
        MailKind::WebhookFailure(_) => (
            "mail_seller",
            format!(
                "Action needed: your webhook did not take order {}",
                order.id
            ),
        ),
        MailKind::Shipped => (
            "mail_shipping",
            format!("Your order from {} is on its way", store.settings.name),
        ),
        MailKind::Delivered => (
            "mail_shipping",
            format!("Your order from {} was delivered", store.settings.name),
        ),
        MailKind::Seat(..) | MailKind::SeatFailure(..) => {
            unreachable!("seat mails are rendered by render_seat")
        }
    };
    let html = templates.render(&format!("{template}.html"), &context)?;
    let text = templates.render(&format!("{template}.txt"), &context)?;
    let seller = store.settings.seller_email.clone();
    let (to, bcc, subject) = match mail.kind {
        MailKind::Buyer => {
            let bcc = if store.mail.seller_copy == SellerCopy::Bcc {
                vec![seller]
            } else {
                vec![]
            };
            (vec![order.email.clone()], bcc, subject)
        }
        MailKind::SellerCopy => (vec![seller], vec![], seller_copy_subject(order, &lines)),
        MailKind::Declined
        | MailKind::Transfer
        | MailKind::LateRefund
        | MailKind::TransferReminder(_)
        | MailKind::Recovery
        | MailKind::Review
        | MailKind::Shipped
        | MailKind::Delivered => (vec![order.email.clone()], vec![], subject),
        MailKind::Shipping
        | MailKind::Failure
        | MailKind::PaymentIssue(_)
        | MailKind::WebhookFailure(_)
        | MailKind::SeatFailure(..) => (vec![seller], vec![], subject),
        MailKind::Seat(..) => unreachable!("seat mails are rendered by render_seat"),
    };
    let from = sender(store);
    Ok(OutgoingMail {
        from,
        to,
        cc: vec![],
        bcc,
        subject,
        text,
        html,
    })
}

#[derive(Serialize)]
struct ReviewLink {
    name: String,
    url: String,
}

/// Each reviewed product of the order once, with where to review it.
fn review_links(store: &Store, order: &Order) -> Vec<ReviewLink> {
    let mut links: Vec<ReviewLink> = Vec::new();
    for line in &order.lines {
        if let Some(url) = store.review_url(&line.sku) {
            if !links.iter().any(|l| l.url == url && l.name == line.name) {
                links.push(ReviewLink {
                    name: line.name.clone(),
                    url: url.to_owned(),
                });
            }
        }
    }
    links
}

/// `Name <address>` of the store's sender, or the bare address.
fn sender(store: &Store) -> String {
    match store.settings.sender_name.as_str() {
        "" => store.settings.sender_email.to_string(),
        name => format!("{name} <{}>", store.settings.sender_email),
    }
}

fn seat_holder(order: &Order, line: usize, seat: usize) -> Option<&SeatHolder> {
    order.lines.get(line)?.seats.get(seat)?.holder.as_ref()
}

#[derive(Serialize)]
struct SeatMailContext<'a> {
    store: StoreView<'a>,
    name: &'a str,
    buyer_name: &'a str,
    seat_number: usize,
    course: &'a str,
    lines: Vec<super::render::RenderedLine<'a>>,
    kind: &'static str,
    order_id: &'a str,
    buyer_email: &'a str,
    hide_secrets: bool,
    for_seller_only: bool,
}

/// The claimer's own mail (their login, and nothing of the buyer's order: no prices, no
/// other seats, no link to the buyer's page), or the seller's alert that a seat failed.
fn render_seat(
    mailing: &Mailing<'_>,
    order: &Order,
    line: &LineView,
    seat: usize,
    holder: &SeatHolder,
    kind: MailKind,
) -> Result<OutgoingMail, RenderError> {
    let store = mailing.store;
    let mut view = line.clone();
    view.quantity = 1;
    view.seats.clear();
    view.access = holder.access.clone();
    view.state = if holder.access.is_some() {
        "delivered"
    } else {
        "failed"
    };
    view.failure = holder.failure.as_ref().map(|reason| {
        format!(
            "seat {} claimed by {} <{}>: {reason}",
            seat_number(seat),
            holder.name,
            holder.email
        )
    });
    let views = [view];
    let for_seller = matches!(kind, MailKind::SeatFailure(..));
    let context = SeatMailContext {
        store: StoreView::new(store),
        name: holder.name.as_str(),
        buyer_name: order.name.as_str(),
        seat_number: seat_number(seat),
        course: &line.name,
        lines: rendered_lines(&views),
        kind: if for_seller { "failure" } else { "seat" },
        order_id: order.id.as_str(),
        buyer_email: order.email.as_str(),
        hide_secrets: false,
        for_seller_only: for_seller,
    };
    let (template, to, subject) = if for_seller {
        (
            "mail_seller",
            store.settings.seller_email.clone(),
            format!(
                "Action needed: a seat of order {} could not be set up",
                order.id
            ),
        )
    } else {
        (
            "mail_seat",
            holder.email.clone(),
            format!("Your seat in {} from {}", line.name, store.settings.name),
        )
    };
    let from = sender(store);
    Ok(OutgoingMail {
        from,
        to: vec![to],
        cc: vec![],
        bcc: vec![],
        subject: subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        text: mailing
            .templates
            .render(&format!("{template}.txt"), &context)?,
        html: mailing
            .templates
            .render(&format!("{template}.html"), &context)?,
    })
}

/// The seller's copy names the order, what was bought and by whom, so that each is told
/// apart in an inbox: `[Copy] Order ord_… · Rust from Zero · Ann Lee`.
fn seller_copy_subject(order: &Order, lines: &[LineView]) -> String {
    let bought = match lines {
        [] => String::new(),
        [one] if one.quantity > 1 => format!("{} × {}", one.quantity, one.name),
        [one] => one.name.clone(),
        [first, rest @ ..] => format!("{} and {} more", first.name, rest.len()),
    };
    let subject = format!(
        "[Copy] Order {} · {} · {}",
        order.id,
        bought,
        order.name.as_str()
    );
    subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Notes a release's failure, if it matters: a claim no longer ours (its lease ran out and
/// another worker took it) needs no giving back.
fn released(first: &mut Option<StoreError>, result: Result<(), StoreError>) {
    match result {
        Ok(()) | Err(StoreError::LeaseLost) => {}
        Err(e) => {
            first.get_or_insert(e);
        }
    }
}

/// Sends every mail the order is due that has not gone out yet. Returns how many were sent.
pub async fn send_order_mails<S: OrderStore + WorkClaims, M: MailSender, C: Clock>(
    mailing: &Mailing<'_>,
    orders: &S,
    sender: &M,
    clock: &C,
    order_id: &OrderId,
) -> Result<usize, SendMailError> {
    let order = orders
        .order(order_id)
        .await?
        .ok_or_else(|| SendMailError::UnknownOrder(order_id.clone()))?;
    let plan = plan(mailing.store, &order);
    if plan.is_empty() {
        return Ok(0);
    }
    // Every mail due is claimed at once, and every one sent is marked done at once: two
    // writes for an order's mails however many there are.
    let keys: Vec<String> = plan.iter().map(|m| m.key.clone()).collect();
    let now = clock.now();
    let owner = Owner::new();
    let claims = orders
        .claim_all(order_id, &keys, &owner, now, now + MAIL_LEASE_SECONDS)
        .await?;
    let mut sent = Vec::new();
    let mut busy = None;
    let mut failed: Option<SendMailError> = None;
    let mut release_error = None;
    for (mail, claim) in plan.iter().zip(claims) {
        match claim {
            Claim::Done(_) => continue,
            // Another worker has it; this message comes back for it later.
            Claim::Busy { until } => {
                busy.get_or_insert_with(|| (mail.key.clone(), until));
                continue;
            }
            Claim::Acquired => {}
        }
        // After a failure to send, the rest wait for the retry.
        let outcome = if failed.is_some() {
            None
        } else {
            Some(match render(mailing, &order, mail) {
                Ok(outgoing) => sender.send(&outgoing).await.map_err(SendMailError::from),
                Err(e) => Err(e.into()),
            })
        };
        match outcome {
            Some(Ok(())) => {
                tracing::info!(order_id = %order_id, mail = %mail.key, "mail sent");
                sent.push((
                    mail.key.clone(),
                    serde_json::json!({ "sent_at": clock.now() }),
                ));
            }
            Some(Err(error)) => {
                released(
                    &mut release_error,
                    orders.release(order_id, &mail.key, &owner).await,
                );
                failed = Some(error);
            }
            None => released(
                &mut release_error,
                orders.release(order_id, &mail.key, &owner).await,
            ),
        }
    }
    // The mails that went out are marked sent before anything else can stop this run.
    orders.complete_all(order_id, &owner, &sent).await?;
    if let Some(e) = release_error {
        return Err(e.into());
    }
    match (failed, busy) {
        (Some(error), _) => Err(error),
        (None, Some((key, until))) => Err(SendMailError::Busy { key, until }),
        (None, None) => Ok(sent.len()),
    }
}
