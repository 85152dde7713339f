//! Cold start: configuration, adapters and state, then the Lambda runtime.

use lambda_http::{run, service_fn, Error};
use payment_callback::{built_in_store, handle, State};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::testpay::Testpay;
use shared::app::Urls;
use shared::environment::{self as env, Secrets};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let secrets = Secrets::from_env(&env::secret_names(&store));
    let urls = Urls::new(&std::env::var(env::PUBLIC_URL).unwrap_or_default());
    let state = State {
        orders: EmbeddedStore::open_from_env()?,
        queue: EmbeddedQueue::default(),
        gateway: Testpay::new(
            secrets.require(env::TESTPAY_SECRET)?,
            urls,
            store.payments.testpay.deliver_twice_out_of_order,
        ),
    };
    run(service_fn(|request| handle(&state, request))).await
}
