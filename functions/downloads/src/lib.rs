//! Downloads: `GET /downloads/{token}` counts one download of a buyer's link and redirects to
//! a presigned URL of the file, valid for five minutes.

mod handler;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::built_in_store!()
}
