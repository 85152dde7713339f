//! The scheduler: every minute (EventBridge Scheduler), the store's timed work, done once.

mod handler;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
