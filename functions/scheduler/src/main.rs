//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use lambda_runtime::{run, service_fn, Error};
use scheduler::{built_in_store, handle, State};
use shared::adapters::aws::{queue_from_env, sdk_config, secrets_from_env, store_from_env};
use shared::adapters::course::http_client;
use shared::adapters::gateway::{stripe_api_base, Gateway, GatewaySetup};
use shared::app::Urls;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let store = built_in_store();
    let aws = sdk_config()?;
    let secrets = secrets_from_env(&aws, &env::gateway_secret_names(&store)).await?;
    let gateway = Gateway::from_store(
        &store,
        GatewaySetup {
            secrets: &secrets,
            urls: Urls::new(&std::env::var(env::PUBLIC_URL).unwrap_or_default()),
            http: http_client()?,
            stage: &env::required(env::STAGE)?,
            stripe_api_base: stripe_api_base(),
        },
    )?;
    let state = State {
        orders: store_from_env(&aws)?,
        queue: queue_from_env(&aws)?,
        gateway,
        stage: env::required(env::STAGE)?,
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}
