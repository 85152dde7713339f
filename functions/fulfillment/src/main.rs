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
    let data_dir = std::env::var(env::DATA_DIR).unwrap_or_else(|_| "/tmp/nightshift".into());
    std::fs::create_dir_all(&data_dir)?;
    let state = State {
        orders: EmbeddedStore::open(&std::path::Path::new(&data_dir).join("nightshift.redb"))?,
        queue: EmbeddedQueue::default(),
        enroller: CourseProviders::new(reqwest_client()?, secrets.into_map(), SystemClock),
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}

fn reqwest_client() -> Result<shared::adapters::course::HttpClient, Error> {
    Ok(shared::adapters::course::http_client()?)
}
