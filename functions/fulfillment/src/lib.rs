//! The fulfilment consumer: for each queued order, run every line's action once and queue
//! its mail.

mod handler;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
