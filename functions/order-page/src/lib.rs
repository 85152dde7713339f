//! The order page: `GET /orders/{token}` (HTML, refreshes while processing),
//! `GET /orders/{token}.json`, `GET /orders/{token}/pay` (to the gateway, or retry), and
//! testpay's hosted card page `GET|POST /testpay/sessions/{id}` when the store uses testpay,
//! the licence endpoints `GET /licenses/revoked.json` and `GET /licenses/{key}/status`, and
//! the claim links of courses sold by the seat, `GET|POST /seats/{token}`.

mod handler;
mod licenses;
mod seats;

pub use handler::{handle, State, TestpayPage};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
