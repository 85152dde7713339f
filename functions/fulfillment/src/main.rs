//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use fulfillment::{built_in_store, handle, State};
use lambda_runtime::{run, service_fn, Error};
use shared::adapters::aws::{queue_from_env, sdk_config, secrets_from_env, store_from_env};
use shared::adapters::course::{http_client, CourseProviders};
use shared::adapters::license::LicenseKeys;
use shared::adapters::providers::Providers;
use shared::adapters::system::SystemClock;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let store = built_in_store();
    let aws = sdk_config()?;
    let secrets = secrets_from_env(&aws, &env::fulfillment_secret_names(&store)).await?;
    let licenses = LicenseKeys::from_secrets(&secrets)?;
    let state = State {
        orders: store_from_env(&aws)?,
        queue: queue_from_env(&aws)?,
        fulfillers: Providers {
            courses: CourseProviders::new(http_client()?, secrets.into_map(), SystemClock),
            licenses,
        },
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}
