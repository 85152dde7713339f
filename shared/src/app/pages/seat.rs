//! The page a seat's claim link opens: a form for the person given the seat, or what became
//! of the seat.

use crate::app::render::{utc_date_time, RenderError, StoreView, Templates};
use crate::app::seats::{FoundSeat, SeatForm};
use crate::config::Store;
use crate::domain::{seat_number, LineState};
use serde::Serialize;
use std::collections::BTreeMap;

use super::FieldError;

#[derive(Serialize)]
struct SeatContext<'a> {
    store: StoreView<'a>,
    title: &'static str,
    /// `open` (the form), `yours` (just claimed by this visitor), `claimed`, `not_open`.
    state: &'static str,
    course: &'a str,
    seat_number: usize,
    claimed_on: String,
    reason: &'static str,
    name: &'a str,
    email: &'a str,
    claim_url: &'a str,
    values: &'a BTreeMap<&'static str, &'a str>,
    errors: BTreeMap<&'static str, &'a str>,
    error_list: &'a [FieldError],
}

/// The seat's page. `claimed_now` when this visitor's claim was just recorded; `errors` for a
/// form to correct (shown with what was typed).
pub fn seat_page(
    store: &Store,
    templates: &Templates,
    found: &FoundSeat,
    claim_url: &str,
    form: &SeatForm,
    errors: &[FieldError],
    claimed_now: bool,
) -> Result<String, RenderError> {
    let line = &found.order.lines[found.line];
    let holder = line.seats[found.seat].holder.as_ref();
    let (state, title, reason) = match holder {
        Some(_) if claimed_now => ("yours", "Your seat is claimed", ""),
        Some(_) => ("claimed", "This seat is taken", ""),
        None if !found.order.status.is_paid() => (
            "not_open",
            "This seat is not open yet",
            "The seats open once the order is paid. Try this link again then.",
        ),
        None if line.state == LineState::Failed => (
            "not_open",
            "This seat cannot be claimed yet",
            "The course could not be set up automatically. The seller has been told and will be in touch with the person who bought the seats.",
        ),
        None if line.state != LineState::Delivered => (
            "not_open",
            "This seat is not open yet",
            "The course is being set up. Try this link again in a minute.",
        ),
        None => ("open", "Claim your seat", ""),
    };
    let values: BTreeMap<&'static str, &str> =
        BTreeMap::from([("name", form.name.as_str()), ("email", form.email.as_str())]);
    let context = SeatContext {
        store: StoreView::new(store),
        title,
        state,
        course: &line.name,
        seat_number: seat_number(found.seat),
        claimed_on: holder.map_or(String::new(), |h| {
            format!("{} UTC", utc_date_time(h.claimed_at))
        }),
        reason,
        // Only what this visitor typed: a page never shows who else holds a seat.
        name: form.name.trim(),
        email: form.email.trim(),
        claim_url,
        values: &values,
        errors: errors
            .iter()
            .map(|e| (e.field, e.message.as_str()))
            .collect(),
        error_list: errors,
    };
    templates.render("seat.html", context)
}
