//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use lambda_http::{run, service_fn, Error};
use order_page::{built_in_store, handle, State, TestpayPage};
use shared::adapters::aws::{sdk_config, secrets_from_env, store_from_env};
use shared::adapters::course::http_client;
use shared::adapters::testpay::Testpay;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::environment as env;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let aws = sdk_config().await;
    let secrets = secrets_from_env(&aws, &[env::TESTPAY_SECRET.to_owned()]).await?;
    let public = std::env::var(env::PUBLIC_URL).ok();
    let testpay = Arc::new(Testpay::new(
        secrets.require(env::TESTPAY_SECRET)?,
        Urls::new(public.as_deref().unwrap_or_default()),
        store.payments.testpay.deliver_twice_out_of_order,
    ));
    let state = State {
        templates: Templates::new(&store)?,
        orders: store_from_env(&aws)?,
        gateway: testpay.clone(),
        urls: public.map(|u| Urls::new(&u)),
        testpay: Some(TestpayPage {
            gateway: testpay,
            http: http_client()?,
        }),
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
