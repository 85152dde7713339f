//! The order page: `GET /orders/{token}` (HTML, refreshes while processing),
//! `GET /orders/{token}.json`, and `GET /orders/{token}/pay` (to the gateway, or retry).

mod handler;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
