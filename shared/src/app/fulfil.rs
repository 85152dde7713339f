//! Fulfil a paid order: run each line's action once, keep its result on the order, and queue
//! the mail once every line has settled.

use super::{update_order_from, Updated};
use crate::config::{Fulfillment, Store};
use crate::domain::{
    seat_number, Access, DownloadToken, FulfillmentKind, LineResult, LineState, Order, OrderId,
    SeatHolder,
};
use crate::ports::{
    Claim, Clock, DownloadGrant, EnrolError, Enrolment, Fulfillers, Message, OrderStore, Owner,
    Queue, QueueError, SignError, StoreError, WorkClaims,
};
use nightshift_license::License;

/// How long a worker may hold a step before another may take it over: longer than the
/// slowest enrolment (Moodle's three calls of at most 15 seconds each).
const STEP_LEASE_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum FulfilError {
    /// Not worth retrying: the message names no order we have.
    #[error("there is no order {0}")]
    UnknownOrder(OrderId),
    /// Some step must be tried again later (a provider was down).
    #[error("{0} line(s) must be retried later")]
    Retry(usize),
    /// Another worker holds a step until `until` (Unix seconds): look again then.
    #[error("another worker holds a step of this order until {until}")]
    Busy { until: i64 },
    #[error("the order kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Notify(#[from] crate::app::notify::NotifyFailure),
}

impl FulfilError {
    /// Whether a redelivery of the message could succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, FulfilError::UnknownOrder(_))
    }
}

/// The state of an order after fulfilment ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fulfilled {
    /// Every line has settled; the mail is queued.
    Settled(Box<Order>),
    /// The order is not paid (or already past fulfilment); nothing to do.
    NotPayable,
}

pub async fn fulfil_order<S: OrderStore + WorkClaims, Q: Queue, C: Clock, F: Fulfillers>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    fulfillers: &F,
    order_id: &OrderId,
) -> Result<Fulfilled, FulfilError> {
    let order = orders
        .order(order_id)
        .await?
        .ok_or_else(|| FulfilError::UnknownOrder(order_id.clone()))?;
    if !order.status.is_paid() {
        return Ok(Fulfilled::NotPayable);
    }
    // The seller's systems hear of the paid order whatever its lines do.
    crate::app::notify::queue_seller_webhooks(store, orders, queue, clock, &order).await?;

    let mut results = Vec::new();
    let (mut retry, mut busy) = (0, None);
    let owner = Owner::new();
    let mut tally = |step: Step, outcome: Outcome| match outcome {
        Outcome::Ran(result) => results.push((step, result)),
        Outcome::Retry => retry += 1,
        Outcome::Busy(until) => busy = busy.max(Some(until)),
    };
    for (index, line) in order.lines.iter().enumerate() {
        if line.state.is_settled() {
            continue;
        }
        let work = Work {
            key: &step_key(index, line.kind),
            owner: &owner,
            outside: reaches_outside(store, line),
            now: clock.now(),
        };
        let step = || run_step(store, orders, fulfillers, &order, index, clock.now());
        tally(Step::Line(index), once(orders, order_id, work, step).await?);
    }
    // Seats claimed since: each claimer is enrolled once, as the buyer was.
    for (index, line) in order.lines.iter().enumerate() {
        for (seat, holder) in line.pending_seats() {
            let work = Work {
                key: &format!("SEAT#{index}#{seat}"),
                owner: &owner,
                outside: reaches_outside(store, line),
                now: clock.now(),
            };
            let step = || enrol_seat(store, fulfillers, &order, index, seat, holder);
            tally(
                Step::Seat(index, seat),
                once(orders, order_id, work, step).await?,
            );
        }
    }

    let review_at = store.review_at(&order, clock.now());
    let order = save_results(orders, order, &results, review_at).await?;
    if retry > 0 {
        return Err(FulfilError::Retry(retry));
    }
    if let Some(until) = busy {
        return Err(FulfilError::Busy { until });
    }
    if order.lines.iter().all(|l| l.state.is_settled()) {
        queue
            .send(&Message::SendMail {
                order_id: order_id.clone(),
            })
            .await?;
    }
    Ok(Fulfilled::Settled(Box::new(order)))
}

/// Whether a line's step acts outside Nightshift (a seller's LMS or Moodle enrols the
/// buyer), so that running it twice would be seen, and it must claim its step first. A built-in
/// login, a licence key, a download link and a parcel to ship only exist once saved on the order.
fn reaches_outside(store: &Store, line: &crate::domain::Line) -> bool {
    match store.product(&line.sku).map(|p| &p.fulfillment) {
        Some(Fulfillment::Course { provider, .. }) => {
            !matches!(provider, crate::config::CourseProvider::Builtin { .. })
        }
        _ => false,
    }
}

/// The claim keys of the order's unsettled steps that act outside Nightshift: a worker doing
/// one holds its claim, so the reconciler can tell work in progress from work left undone.
pub fn outside_steps(store: &Store, order: &crate::domain::Order) -> Vec<String> {
    order
        .lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.state.is_settled() && reaches_outside(store, line))
        .map(|(index, line)| step_key(index, line.kind))
        .collect()
}

fn step_key(index: usize, kind: FulfillmentKind) -> String {
    format!("STEP#{index}#{}", kind.as_str())
}

/// What a step's result belongs to: a line, or a claimed seat of a line.
#[derive(Debug, Clone, Copy)]
enum Step {
    Line(usize),
    Seat(usize, usize),
}

/// What running a step once came to.
enum Outcome {
    Ran(LineResult),
    /// It failed for now; retry later.
    Retry,
    /// Another worker holds it until then.
    Busy(i64),
}

/// A step's once-only work: its claim key, this run's owner token, whether it acts outside
/// Nightshift, and the time.
#[derive(Clone, Copy)]
struct Work<'a> {
    key: &'a str,
    owner: &'a Owner,
    outside: bool,
    now: i64,
}

/// Runs a step once: one that acts outside Nightshift claims its key first and stores its
/// result with the claim (a worker that finds it done takes that result); one that does not
/// is only ever kept through the order's versioned write, so it needs no claim.
async fn once<S: WorkClaims, Fut: std::future::Future<Output = Result<LineResult, String>>>(
    orders: &S,
    order_id: &OrderId,
    work: Work<'_>,
    step: impl FnOnce() -> Fut,
) -> Result<Outcome, FulfilError> {
    let Work {
        key,
        owner,
        outside,
        now,
    } = work;
    let retried = |reason: String| {
        tracing::warn!(order_id = %order_id, step = key, %reason, "fulfillment step will be retried");
        Outcome::Retry
    };
    if !outside {
        return Ok(step().await.map_or_else(retried, Outcome::Ran));
    }
    match orders
        .claim(order_id, key, owner, now, now + STEP_LEASE_SECONDS)
        .await?
    {
        Claim::Done(stored) => match serde_json::from_value::<LineResult>(stored) {
            Ok(result) => Ok(Outcome::Ran(result)),
            Err(e) => Err(StoreError::Corrupt(Box::new(e)).into()),
        },
        Claim::Busy { until } => Ok(Outcome::Busy(until)),
        Claim::Acquired => match step().await {
            Ok(result) => {
                let value = serde_json::to_value(&result).expect("line results serialise");
                // A lease lost meanwhile stops here: the worker that took it over records
                // its own result.
                orders.complete(order_id, key, owner, &value).await?;
                Ok(Outcome::Ran(result))
            }
            Err(reason) => {
                match orders.release(order_id, key, owner).await {
                    // No longer ours to give back: whoever took it over carries on.
                    Ok(()) | Err(StoreError::LeaseLost) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(retried(reason))
            }
        },
    }
}

/// Enrols the person who claimed seat `seat` of line `index`.
async fn enrol_seat<F: Fulfillers>(
    store: &Store,
    fulfillers: &F,
    order: &Order,
    index: usize,
    seat: usize,
    holder: &SeatHolder,
) -> Result<LineResult, String> {
    let line = &order.lines[index];
    let Some(Fulfillment::Course {
        course_id,
        provider,
        ..
    }) = store.product(&line.sku).map(|p| &p.fulfillment)
    else {
        return Ok(LineResult::Failed {
            reason: format!("{} is no longer a course in the catalogue", line.sku),
        });
    };
    let enrolment = Enrolment {
        order_id: order.id.clone(),
        line: index,
        email: holder.email.clone(),
        name: holder.name.to_string(),
        course_id: course_id.clone(),
        seat: Some(seat_number(seat)),
    };
    match fulfillers.enrol(provider, &enrolment).await {
        Ok(access) => Ok(LineResult::Delivered { access }),
        Err(EnrolError::Permanent(reason)) => Ok(LineResult::Failed { reason }),
        Err(EnrolError::Transient(reason)) => Err(reason),
    }
}

/// Runs one line's action. `Err` is a transient failure worth retrying.
async fn run_step<S: OrderStore, F: Fulfillers>(
    store: &Store,
    orders: &S,
    fulfillers: &F,
    order: &Order,
    index: usize,
    now: i64,
) -> Result<LineResult, String> {
    let line = &order.lines[index];
    let Some(product) = store.product(&line.sku) else {
        return Ok(LineResult::Failed {
            reason: format!("{} is no longer in the catalogue", line.sku),
        });
    };
    match &product.fulfillment {
        Fulfillment::Shipment { .. } => Ok(LineResult::AwaitingShipment),
        Fulfillment::Course {
            course_id,
            provider,
            ..
        } => {
            let enrolment = Enrolment {
                order_id: order.id.clone(),
                line: index,
                email: order.email.clone(),
                name: order.name.to_string(),
                course_id: course_id.clone(),
                seat: None,
            };
            match fulfillers.enrol(provider, &enrolment).await {
                Ok(access) => Ok(LineResult::Delivered { access }),
                Err(EnrolError::Permanent(reason)) => Ok(LineResult::Failed { reason }),
                Err(EnrolError::Transient(reason)) => Err(reason),
            }
        }
        Fulfillment::Download {
            filename,
            valid_days,
            max_downloads,
            ..
        } => {
            let Some(base) = &order.store_url else {
                return Ok(LineResult::Failed {
                    reason: "the order does not know the store's address to link to".into(),
                });
            };
            let mut bytes = [0u8; 16];
            fulfillers.fill(&mut bytes);
            let token = DownloadToken::from_bytes(bytes);
            let grant = DownloadGrant {
                order_id: order.id.clone(),
                line: u32::try_from(index).unwrap_or(u32::MAX),
                sku: line.sku.clone(),
                expires_at: now + i64::from(*valid_days) * 86_400,
                max_downloads: *max_downloads,
            };
            // Should this step be retried after the grant was kept, the retry makes a new
            // link; only the one stored with the step's result is ever shown.
            orders
                .grant_download(&token.hash(), &grant)
                .await
                .map_err(|e| e.to_string())?;
            Ok(LineResult::Delivered {
                access: Access::Download {
                    url: crate::app::Urls::new(base).download(&token),
                    filename: filename.clone(),
                    expires_at: grant.expires_at,
                    max_downloads: grant.max_downloads,
                },
            })
        }
        Fulfillment::LicenseKey { seats, valid_days } => {
            let seats = u32::from(*seats).saturating_mul(line.quantity.get());
            let license = License {
                product: line.sku.to_string(),
                order_id: order.id.to_string(),
                line: u16::try_from(index).unwrap_or(u16::MAX),
                issued_at: unix_u32(now),
                expires_at: valid_days.map(|days| unix_u32(now + i64::from(days) * 86_400)),
                seats,
                email_hash: License::email_hash(order.email.as_str()),
            };
            match fulfillers.sign(&license) {
                Ok(key) => Ok(LineResult::Delivered {
                    access: Access::LicenseKey {
                        key,
                        seats,
                        expires_at: license.expires_at.map(i64::from),
                    },
                }),
                // A missing key is fixed by configuring it: retry until then, then the DLQ.
                Err(SignError::NoKey) => Err(SignError::NoKey.to_string()),
                Err(e @ SignError::Format(_)) => Ok(LineResult::Failed {
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// Licence keys hold 32-bit Unix seconds (enough until 2106).
fn unix_u32(seconds: i64) -> u32 {
    u32::try_from(seconds.max(0)).unwrap_or(u32::MAX)
}

/// Writes step results onto the order and moves its status once every line has settled.
/// Puts the steps' results on the order, starting from the copy fulfilment read.
/// Saves the steps' results; an order that they settle as fulfilled gets its review request
/// planned for `review_at`.
async fn save_results<S: OrderStore>(
    orders: &S,
    order: Order,
    results: &[(Step, LineResult)],
    review_at: Option<i64>,
) -> Result<Order, FulfilError> {
    let order_id = order.id.clone();
    let saved = update_order_from(orders, &order_id, Some(order), |current| {
        let mut next = current.clone();
        for (step, result) in results {
            match *step {
                Step::Line(index) if next.lines[index].state == LineState::Pending => {
                    next.lines[index].apply(result);
                }
                Step::Line(_) => {}
                Step::Seat(index, seat) => {
                    let holder = next.lines[index]
                        .seats
                        .get_mut(seat)
                        .and_then(|s| s.holder.as_mut());
                    if let Some(holder) = holder {
                        holder.settle(match result {
                            LineResult::Delivered { access } => Ok(access.clone()),
                            LineResult::Failed { reason } => Err(reason.clone()),
                            LineResult::AwaitingShipment => Err("a seat cannot be shipped".into()),
                        });
                    }
                }
            }
        }
        if let Some(status) = next.settled_status() {
            if next.status.can_move_to(status) {
                next.status = status;
                if status == crate::domain::OrderStatus::Fulfilled && !next.review_mailed {
                    next.review_at = review_at;
                }
            }
        }
        Ok::<_, FulfilError>((next != *current).then_some(next))
    })
    .await?;
    match saved {
        Updated::Saved(order) | Updated::Unchanged(order) => Ok(order),
        Updated::Missing => Err(FulfilError::UnknownOrder(order_id)),
        Updated::Contended => Err(FulfilError::Contended),
    }
}
