//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use checkout::{built_in_store, handle, State};
use lambda_http::{run, service_fn, Error};
use shared::adapters::aws::{queue_from_env, sdk_config, secrets_from_env, store_from_env};
use shared::app::render::Templates;
use shared::app::Urls;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let aws = sdk_config().await;
    let secrets = secrets_from_env(&aws, &[env::ORDER_TOKEN_SECRET.to_owned()]).await?;
    let state = State {
        templates: Templates::new(&store)?,
        orders: store_from_env(&aws)?,
        queue: queue_from_env(&aws)?,
        urls: std::env::var(env::PUBLIC_URL).ok().map(|u| Urls::new(&u)),
        token_key: secrets.require(env::ORDER_TOKEN_SECRET)?,
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
