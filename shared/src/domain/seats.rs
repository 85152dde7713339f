//! Seats: a course sold to a team. A line of N seats enrols the buyer on the first and
//! gives N−1 claim links; each link enrols the one person who claims it.

use super::ids::{base64url, random_part_ok};
use super::{Access, BuyerName, Email, Line, LineState, OrderId, OrderToken, TokenCheck};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// One claimable seat of a line (the buyer's own seat is the line itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Recognises the seat's claim link ([`SeatToken`]).
    pub check: TokenCheck,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<SeatHolder>,
}

/// Who claimed a seat, and what their enrolment came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatHolder {
    pub email: Email,
    pub name: BuyerName,
    pub claimed_at: i64,
    pub state: SeatState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A claimed seat's enrolment: waiting for the fulfilment worker, done, or refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Pending,
    Delivered,
    Failed,
}

/// Why a seat cannot be claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatRefused {
    #[error("there is no such seat")]
    NoSuchSeat,
    /// The order is not paid, or the buyer's own enrolment is not done.
    #[error("the seats open once the order is paid and the course is set up")]
    NotOpen,
    #[error("this seat was claimed already")]
    Taken,
    /// The address already holds a seat of this line (the buyer's own included).
    #[error("{0} already has a seat in this course from this order")]
    AlreadySeated(String),
}

/// The number people see for a claimable seat: the buyer's is seat 1, so seat index 0 is 2.
pub fn seat_number(index: usize) -> usize {
    index + 2
}

impl Line {
    /// Whether the line sells seats to a team rather than one person's access.
    pub fn sells_seats(&self) -> bool {
        !self.seats.is_empty()
    }

    /// Records `holder` on the seat at `index`, pending enrolment. The buyer's enrolment must
    /// be done, the seat free, and the address not seated on this line already.
    pub fn claim_seat(
        &mut self,
        index: usize,
        email: Email,
        name: BuyerName,
        now: i64,
        buyer: &Email,
    ) -> Result<(), SeatRefused> {
        if index >= self.seats.len() {
            return Err(SeatRefused::NoSuchSeat);
        }
        if self.state != LineState::Delivered {
            return Err(SeatRefused::NotOpen);
        }
        if self.seats[index].holder.is_some() {
            return Err(SeatRefused::Taken);
        }
        let same = |other: &Email| other.as_str().eq_ignore_ascii_case(email.as_str());
        if same(buyer)
            || self
                .seats
                .iter()
                .filter_map(|s| s.holder.as_ref())
                .any(|h| same(&h.email))
        {
            return Err(SeatRefused::AlreadySeated(email.to_string()));
        }
        self.seats[index].holder = Some(SeatHolder {
            email,
            name,
            claimed_at: now,
            state: SeatState::Pending,
            access: None,
            failure: None,
        });
        Ok(())
    }

    /// Seats claimed and waiting for their enrolment.
    pub fn pending_seats(&self) -> impl Iterator<Item = (usize, &SeatHolder)> {
        self.seats.iter().enumerate().filter_map(|(i, s)| {
            s.holder
                .as_ref()
                .filter(|h| h.state == SeatState::Pending)
                .map(|h| (i, h))
        })
    }
}

impl SeatHolder {
    /// Settles a pending enrolment (a settled one stays as it is).
    pub fn settle(&mut self, outcome: Result<Access, String>) {
        if self.state != SeatState::Pending {
            return;
        }
        match outcome {
            Ok(access) => {
                self.state = SeatState::Delivered;
                self.access = Some(access);
            }
            Err(reason) => {
                self.state = SeatState::Failed;
                self.failure = Some(reason);
            }
        }
    }
}

/// A seat's claim link secret: `{order's 20 hex digits}-{line}-{seat index}-{22 characters}`.
/// It is derived from the order page's token, so whoever opens the order page (the buyer,
/// the mailer) can rebuild it; the order keeps only its [`TokenCheck`].
#[derive(Clone, PartialEq, Eq)]
pub struct SeatToken(String);

impl SeatToken {
    pub fn derive(order: &OrderToken, line: usize, seat: usize) -> SeatToken {
        let mut hash = Sha256::new();
        hash.update(b"nightshift seat\0");
        hash.update(order.as_str().as_bytes());
        hash.update(format!("\0{line}\0{seat}").as_bytes());
        let secret = base64url(&hash.finalize()[..16]);
        let id = &order.order_id().as_str()["ord_".len()..].to_owned();
        SeatToken(format!("{id}-{line}-{seat}-{secret}"))
    }

    pub fn parse(s: &str) -> Option<SeatToken> {
        let mut parts = s.splitn(4, '-');
        let (id, line, seat, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let number =
            |p: &str| p.len() <= 4 && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let ok = id.len() == 20
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && number(line)
            && number(seat)
            && random_part_ok(secret);
        ok.then(|| SeatToken(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The order, line and seat index the token claims to open.
    pub fn target(&self) -> (OrderId, usize, usize) {
        let mut parts = self.0.splitn(4, '-');
        let id = parts.next().unwrap_or_default();
        let mut number = || {
            parts
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(usize::MAX)
        };
        let (line, seat) = (number(), number());
        // `parse` and `derive` only make tokens whose first part is an order id's hex digits.
        let order = OrderId::parse(&format!("ord_{id}")).expect("seat tokens hold an order id");
        (order, line, seat)
    }

    pub fn check(&self) -> TokenCheck {
        TokenCheck::of(&self.0)
    }

    /// Whether this token opens `seat`.
    pub fn opens(&self, seat: &Seat) -> bool {
        seat.check.matches_str(&self.0)
    }
}

impl fmt::Debug for SeatToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeatToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FulfillmentKind, Money, Quantity, Sku};

    fn line(seats: usize) -> Line {
        let token = OrderToken::new(&OrderId::from_random([7; 10]), [1; 16]);
        Line {
            sku: Sku::parse("team").unwrap(),
            name: "Team course".into(),
            kind: FulfillmentKind::Course,
            quantity: Quantity::new(u32::try_from(seats).unwrap() + 1).unwrap(),
            unit_price: Money::parse("10.00", crate::domain::Currency::parse("EUR").unwrap())
                .unwrap(),
            state: LineState::Delivered,
            access: None,
            failure: None,
            seats: (0..seats)
                .map(|i| Seat {
                    check: SeatToken::derive(&token, 0, i).check(),
                    holder: None,
                })
                .collect(),
        }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn name() -> BuyerName {
        BuyerName::parse("Kim Lee").unwrap()
    }

    #[test]
    fn a_seat_token_names_its_seat_and_opens_only_it() {
        let order = OrderId::from_random([7; 10]);
        let token = OrderToken::new(&order, [1; 16]);
        let t = SeatToken::derive(&token, 3, 12);
        assert_eq!(SeatToken::parse(t.as_str()), Some(t.clone()));
        assert_eq!(t.target(), (order.clone(), 3, 12));
        let seat = Seat {
            check: t.check(),
            holder: None,
        };
        assert!(t.opens(&seat));
        assert!(!SeatToken::derive(&token, 3, 11).opens(&seat));
        let other = OrderToken::new(&order, [2; 16]);
        assert!(!SeatToken::derive(&other, 3, 12).opens(&seat));
        assert!(!format!("{t:?}").contains(t.as_str()));
        for bad in ["", "x", "0123-1-1-abc", &t.as_str().replace('-', "+")] {
            assert_eq!(SeatToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_person_gets_one_seat_and_each_seat_one_person() {
        let mut l = line(2);
        let buyer = email("buyer@example.com");
        assert_eq!(
            l.claim_seat(0, email("Buyer@Example.com"), name(), 1, &buyer),
            Err(SeatRefused::AlreadySeated("Buyer@example.com".into()))
        );
        l.claim_seat(0, email("kim@example.com"), name(), 1, &buyer)
            .unwrap();
        assert_eq!(
            l.claim_seat(0, email("lee@example.com"), name(), 2, &buyer),
            Err(SeatRefused::Taken)
        );
        assert!(matches!(
            l.claim_seat(1, email("KIM@example.com"), name(), 2, &buyer),
            Err(SeatRefused::AlreadySeated(_))
        ));
        assert_eq!(
            l.claim_seat(2, email("lee@example.com"), name(), 2, &buyer),
            Err(SeatRefused::NoSuchSeat)
        );
        assert_eq!(l.pending_seats().count(), 1);
    }

    #[test]
    fn seats_open_once_the_buyer_is_enrolled() {
        let mut l = line(1);
        l.state = LineState::Pending;
        let buyer = email("buyer@example.com");
        assert_eq!(
            l.claim_seat(0, email("kim@example.com"), name(), 1, &buyer),
            Err(SeatRefused::NotOpen)
        );
    }

    #[test]
    fn a_settled_seat_stays_settled() {
        let mut l = line(1);
        let buyer = email("buyer@example.com");
        l.claim_seat(0, email("kim@example.com"), name(), 1, &buyer)
            .unwrap();
        let holder = l.seats[0].holder.as_mut().unwrap();
        holder.settle(Err("refused".into()));
        holder.settle(Ok(Access::Course {
            login_url: "https://x".into(),
            username: "kim".into(),
            password: None,
        }));
        assert_eq!(holder.state, SeatState::Failed);
        assert_eq!(holder.access, None);
    }
}
