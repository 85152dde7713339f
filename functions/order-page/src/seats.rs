//! Translates `GET /seats/{token}` (the claim form, or what became of the seat) and
//! `POST /seats/{token}` (claim it: `name`, `email`, form-encoded).

use lambda_http::http::{Method, StatusCode};
use shared::adapters::system::SystemClock;
use shared::app::pages::{seat_page, FieldError};
use shared::app::render::Templates;
use shared::app::seats::{claim_seat, find_seat, ClaimError, SeatForm};
use shared::app::Urls;
use shared::config::Store;
use shared::domain::SeatRefused;
use shared::http::{form_pairs, html, is_form, Problem};
use shared::ports::{OrderStore, Queue};

pub struct Seats<'a, S, Q> {
    pub store: &'a Store,
    pub templates: &'a Templates,
    pub orders: &'a S,
    pub queue: &'a Q,
}

impl<S: OrderStore, Q: Queue> Seats<'_, S, Q> {
    pub async fn answer(
        &self,
        urls: &Urls,
        request: &lambda_http::Request,
        token: &str,
    ) -> http::Response<String> {
        let claim_url = format!("{}/seats/{token}", urls.base());
        match *request.method() {
            Method::GET => {
                self.page(
                    token,
                    &claim_url,
                    &SeatForm::default(),
                    &[],
                    StatusCode::OK,
                    false,
                )
                .await
            }
            Method::POST if is_form(request.headers()) => {
                let form = SeatForm::from_pairs(&form_pairs(request.body()));
                self.claim(token, &claim_url, &form).await
            }
            Method::POST => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "form-expected",
                "Form expected",
                "Send the claim form: name and email, application/x-www-form-urlencoded.",
            )
            .into_response(),
            _ => Problem::method_not_allowed("GET, POST").into_response(),
        }
    }

    async fn claim(&self, token: &str, claim_url: &str, form: &SeatForm) -> http::Response<String> {
        let outcome = claim_seat(self.orders, self.queue, &SystemClock, token, form).await;
        let (status, errors) = match outcome {
            Ok(found) => return self.render(&found, claim_url, form, &[], StatusCode::OK, true),
            Err(ClaimError::Invalid(fields)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                fields
                    .into_iter()
                    .map(|(field, message)| FieldError { field, message })
                    .collect(),
            ),
            Err(ClaimError::Refused(SeatRefused::AlreadySeated(email))) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![FieldError {
                    field: "email",
                    message: format!("{email} already has a seat in this course from this order: enter the address of the person this seat is for."),
                }],
            ),
            // The page says why: taken, or not open yet.
            Err(ClaimError::Refused(_)) => (StatusCode::CONFLICT, vec![]),
            Err(ClaimError::NotFound) => return not_found(),
            Err(ClaimError::Contended) => {
                return Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "Busy",
                    "Many people are claiming seats of this order at once. Please send the form again.",
                )
                .into_response()
            }
            Err(e @ (ClaimError::Store(_) | ClaimError::Queue(_))) => {
                tracing::error!(error = %e, "seat claim failed");
                return Problem::internal().into_response();
            }
        };
        self.page(token, claim_url, form, &errors, status, false)
            .await
    }

    async fn page(
        &self,
        token: &str,
        claim_url: &str,
        form: &SeatForm,
        errors: &[FieldError],
        status: StatusCode,
        claimed_now: bool,
    ) -> http::Response<String> {
        match find_seat(self.orders, token).await {
            Ok(Some(found)) => self.render(&found, claim_url, form, errors, status, claimed_now),
            Ok(None) => not_found(),
            Err(e) => {
                tracing::error!(error = %e, "seat lookup failed");
                Problem::internal().into_response()
            }
        }
    }

    fn render(
        &self,
        found: &shared::app::seats::FoundSeat,
        claim_url: &str,
        form: &SeatForm,
        errors: &[FieldError],
        status: StatusCode,
        claimed_now: bool,
    ) -> http::Response<String> {
        match seat_page(
            self.store,
            self.templates,
            found,
            claim_url,
            form,
            errors,
            claimed_now,
        ) {
            Ok(page) => html(status, page),
            Err(e) => {
                tracing::error!(error = %e, "seat page failed to render");
                Problem::internal().into_response()
            }
        }
    }
}

fn not_found() -> http::Response<String> {
    Problem::not_found("There is no seat at this address. Check that the link is complete.")
        .into_response()
}
