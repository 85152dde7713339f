//! Cold start: configuration, SDK clients and state, then the Lambda runtime.

use lambda_runtime::{run, service_fn, Error};
use scheduler::{built_in_store, handle, State};
use shared::adapters::aws::{sdk_config, store_from_env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let aws = sdk_config()?;
    let state = State {
        store: built_in_store(),
        orders: store_from_env(&aws)?,
    };
    run(service_fn(|event| handle(&state, event))).await
}
