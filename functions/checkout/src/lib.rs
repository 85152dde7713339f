//! The checkout function: `POST /checkout` places an order, `GET /buy/{sku}` shows a product,
//! and a recovery mail's links reopen a cart (`GET /recover/{token}`) or stop reminders
//! (`/unsubscribe/{token}`).

mod handler;
mod recovery;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
