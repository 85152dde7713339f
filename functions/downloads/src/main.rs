//! Cold start: configuration, SDK clients and state, then the Lambda runtime.

use downloads::{built_in_store, handle, State};
use lambda_http::{run, service_fn, Error};
use shared::adapters::aws::{sdk_config, store_from_env};
use shared::adapters::files::S3Links;
use shared::adapters::system::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let aws = sdk_config().await;
    let state = State {
        orders: store_from_env(&aws)?,
        links: S3Links::from_config(&aws),
        clock: SystemClock,
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
