//! The checkout function: `POST /checkout` places an order, `GET /buy/{sku}` shows a product.

mod handler;

pub use handler::{handle, State};

/// The store this function was built with (validated by the build script).
pub fn built_in_store() -> shared::config::Store {
    shared::config::Store::from_embedded(include_str!(env!("NIGHTSHIFT_EMBEDDED_STORE")))
        .expect("the build script embeds a valid store")
}
