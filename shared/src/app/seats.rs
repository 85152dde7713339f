//! Seats of a course sold to a team: finding a seat by its claim link, and claiming it. A
//! claim is recorded on the order (one versioned write, so two people racing for one seat
//! cannot both win); the fulfilment worker then enrols the claimer once and the mailer sends
//! them their login.

use super::{update_order, Updated};
use crate::domain::{BuyerName, Email, Order, SeatRefused, SeatToken};
use crate::ports::{Clock, Message, OrderStore, Queue, QueueError, StoreError};

/// A seat a claim link opens.
#[derive(Debug, Clone)]
pub struct FoundSeat {
    pub order: Order,
    pub line: usize,
    /// Index into the line's seats (seat number `index + 2`).
    pub seat: usize,
}

/// The seat `token` opens, if it opens one.
pub async fn find_seat<S: OrderStore>(
    orders: &S,
    token: &str,
) -> Result<Option<FoundSeat>, StoreError> {
    let Some(token) = SeatToken::parse(token) else {
        return Ok(None);
    };
    let (order_id, line, seat) = token.target();
    let Some(order) = orders.order(&order_id).await? else {
        return Ok(None);
    };
    let opens = order
        .lines
        .get(line)
        .and_then(|l| l.seats.get(seat))
        .is_some_and(|s| token.opens(s));
    Ok(opens.then_some(FoundSeat { order, line, seat }))
}

/// What a person typed to claim a seat (`Debug` hides it).
#[derive(Clone, Default)]
pub struct SeatForm {
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for SeatForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeatForm(***)")
    }
}

impl SeatForm {
    pub fn from_pairs(pairs: &[(String, String)]) -> SeatForm {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        SeatForm {
            name: get("name"),
            email: get("email"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no seat at this address")]
    NotFound,
    /// Fields to correct: (field, message).
    #[error("the form has mistakes")]
    Invalid(Vec<(&'static str, String)>),
    #[error(transparent)]
    Refused(SeatRefused),
    #[error("the order kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Claims the seat `token` opens for the person in `form`, then asks the fulfilment worker to
/// enrol them. Sending the same claim again (a reload) changes nothing and answers as the
/// first did; it asks the worker again, in case the first message was lost.
pub async fn claim_seat<S: OrderStore, Q: Queue, C: Clock>(
    orders: &S,
    queue: &Q,
    clock: &C,
    token: &str,
    form: &SeatForm,
) -> Result<FoundSeat, ClaimError> {
    let found = find_seat(orders, token)
        .await?
        .ok_or(ClaimError::NotFound)?;
    let (line, seat) = (found.line, found.seat);
    let name = BuyerName::parse(&form.name);
    let email = Email::parse(&form.email);
    let mut invalid = Vec::new();
    if name.is_err() {
        invalid.push((
            "name",
            "Enter your name as it should appear in the course (up to 100 characters).".into(),
        ));
    }
    if email.is_err() {
        invalid.push((
            "email",
            "Enter an email address such as name@example.com: your login is sent there.".into(),
        ));
    }
    let (Ok(name), Ok(email)) = (name, email) else {
        return Err(ClaimError::Invalid(invalid));
    };
    let now = clock.now();
    let saved = update_order(orders, &found.order.id, |current| {
        let mut next = current.clone();
        let buyer = current.email.clone();
        match next.lines[line].claim_seat(seat, email.clone(), name.clone(), now, &buyer) {
            Ok(()) => Ok(Some(next)),
            // The same person again: their claim stands.
            Err(SeatRefused::Taken)
                if current.lines[line].seats[seat]
                    .holder
                    .as_ref()
                    .is_some_and(|h| h.email.as_str().eq_ignore_ascii_case(email.as_str())) =>
            {
                Ok(None)
            }
            Err(refused) => Err(ClaimError::Refused(refused)),
        }
    })
    .await?;
    let order = match saved {
        Updated::Saved(order) | Updated::Unchanged(order) => order,
        Updated::Missing => return Err(ClaimError::NotFound),
        Updated::Contended => return Err(ClaimError::Contended),
    };
    tracing::info!(order_id = %order.id, line, seat, "seat claimed");
    queue
        .send(&Message::FulfilOrder {
            order_id: order.id.clone(),
        })
        .await?;
    Ok(FoundSeat { order, line, seat })
}
