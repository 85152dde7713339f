//! Cold start: configuration, adapters and state, then the Lambda runtime.

use checkout::{built_in_store, handle, State};
use lambda_http::{run, service_fn, Error};
use shared::adapters::embedded::EmbeddedStore;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::environment::{self as env, Secrets};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let secrets = Secrets::from_env(&env::secret_names(&store));
    let state = State {
        templates: Templates::new(&store)?,
        orders: EmbeddedStore::open_from_env()?,
        urls: std::env::var(env::PUBLIC_URL).ok().map(|u| Urls::new(&u)),
        token_key: secrets.require(env::ORDER_TOKEN_SECRET)?,
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
