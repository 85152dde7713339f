//! Cold start: configuration, adapters and state, then the Lambda runtime.

use lambda_runtime::{run, service_fn, Error};
use mailer::{built_in_store, handle, State};
use shared::adapters::embedded::EmbeddedStore;
use shared::app::render::Templates;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = built_in_store();
    let data_dir = std::env::var(env::DATA_DIR).unwrap_or_else(|_| "/tmp/nightshift".into());
    std::fs::create_dir_all(&data_dir)?;
    let orders = EmbeddedStore::open(&std::path::Path::new(&data_dir).join("nightshift.redb"))?;
    let state = State {
        templates: Templates::new(&store)?,
        sender: orders.outbox(),
        orders,
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}
