//! The payment callback: `POST /payments/{gateway}/webhook` verifies, records once, moves the
//! order forward and queues fulfilment.

mod handler;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
