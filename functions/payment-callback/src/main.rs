//! Cold start: configuration, SDK clients, secrets and state, then the Lambda runtime.

use lambda_http::{run, service_fn, Error};
use payment_callback::{built_in_store, handle, State};
use shared::adapters::aws::{queue_from_env, sdk_config, secrets_from_env, store_from_env};
use shared::adapters::testpay::Testpay;
use shared::app::Urls;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let aws = sdk_config().await;
    let secrets = secrets_from_env(&aws, &[env::TESTPAY_SECRET.to_owned()]).await?;
    let urls = Urls::new(&std::env::var(env::PUBLIC_URL).unwrap_or_default());
    let state = State {
        orders: store_from_env(&aws)?,
        queue: queue_from_env(&aws)?,
        gateway: Testpay::new(
            secrets.require(env::TESTPAY_SECRET)?,
            urls,
            store.payments.testpay.deliver_twice_out_of_order,
        ),
    };
    run(service_fn(|request| handle(&state, request))).await
}
