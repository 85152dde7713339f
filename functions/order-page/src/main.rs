//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use lambda_http::{run, service_fn, Error};
use order_page::{built_in_store, handle, State, TestpayPage};
use shared::adapters::aws::{queue_from_env, sdk_config, secrets_from_env, store_from_env};
use shared::adapters::course::http_client;
use shared::adapters::gateway::{stripe_api_base, Gateway, GatewaySetup};
use shared::adapters::license::LicenseKeys;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let store = built_in_store();
    let aws = sdk_config()?;
    let secrets = secrets_from_env(&aws, &env::order_page_secret_names(&store)).await?;
    let public = std::env::var(env::PUBLIC_URL).ok();
    let http = http_client()?;
    let gateway = Gateway::from_store(
        &store,
        GatewaySetup {
            secrets: &secrets,
            urls: Urls::new(public.as_deref().unwrap_or_default()),
            http: http.clone(),
            stage: &env::required(env::STAGE)?,
            stripe_api_base: stripe_api_base(),
        },
    )?;
    let state = State {
        templates: Templates::new(&store)?,
        orders: store_from_env(&aws)?,
        queue: queue_from_env(&aws)?,
        testpay: gateway
            .testpay()
            .map(|gateway| TestpayPage { gateway, http }),
        gateway,
        urls: public.map(|u| Urls::new(&u)),
        licenses: LicenseKeys::from_secrets(&secrets)?,
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
