//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use checkout::{built_in_store, handle, State};
use lambda_http::{run, service_fn, Error};
use shared::adapters::aws::{queue_from_env, sdk_config, secrets_from_env, store_from_env};
use shared::adapters::course::http_client;
use shared::adapters::gateway::{stripe_api_base, Gateway, GatewaySetup};
use shared::app::render::Templates;
use shared::app::Urls;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let store = built_in_store();
    let aws = sdk_config()?;
    let mut names = env::gateway_secret_names(&store);
    names.push(env::ORDER_TOKEN_SECRET.to_owned());
    let secrets = secrets_from_env(&aws, &names).await?;
    let public = std::env::var(env::PUBLIC_URL).ok();
    let gateway = Gateway::from_store(
        &store,
        GatewaySetup {
            secrets: &secrets,
            urls: Urls::new(public.as_deref().unwrap_or_default()),
            http: http_client()?,
            stage: &env::required(env::STAGE)?,
            stripe_api_base: stripe_api_base(),
        },
    )?;
    let state = State {
        templates: Templates::new(&store)?,
        orders: store_from_env(&aws)?,
        queue: queue_from_env(&aws)?,
        gateway,
        urls: public.map(|u| Urls::new(&u)),
        token_key: secrets.require(env::ORDER_TOKEN_SECRET)?,
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
