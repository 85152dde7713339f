//! Cold start: configuration, adapters and state, then the Lambda runtime.

use lambda_runtime::{run, service_fn, Error};
use mailer::{built_in_store, handle, State};
use shared::adapters::embedded::EmbeddedStore;
use shared::app::render::Templates;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = built_in_store();
    let orders = EmbeddedStore::open_from_env()?;
    let state = State {
        templates: Templates::new(&store)?,
        sender: orders.outbox(),
        orders,
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}
