//! Cold start: configuration, adapters and state, then the Lambda runtime.

use fulfillment::{built_in_store, handle, State};
use lambda_runtime::{run, service_fn, Error};
use shared::adapters::course::CourseProviders;
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::system::SystemClock;
use shared::environment::{self as env, Secrets};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = built_in_store();
    let secrets = Secrets::from_env(&env::secret_names(&store));
    let state = State {
        orders: EmbeddedStore::open_from_env()?,
        queue: EmbeddedQueue::default(),
        enroller: CourseProviders::new(reqwest_client()?, secrets.into_map(), SystemClock),
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}

fn reqwest_client() -> Result<shared::adapters::course::HttpClient, Error> {
    Ok(shared::adapters::course::http_client()?)
}
