//! Cold start: configuration, adapters and state, then the Lambda runtime.

use lambda_http::{run, service_fn, Error};
use order_page::{built_in_store, handle, State};
use shared::adapters::embedded::EmbeddedStore;
use shared::adapters::testpay::Testpay;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::environment::{self as env, Secrets};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = built_in_store();
    let secrets = Secrets::from_env(&env::secret_names(&store));
    let public = std::env::var(env::PUBLIC_URL).ok();
    let state = State {
        templates: Templates::new(&store)?,
        orders: EmbeddedStore::open_from_env()?,
        gateway: Testpay::new(
            secrets.require(env::TESTPAY_SECRET)?,
            Urls::new(public.as_deref().unwrap_or_default()),
            store.payments.testpay.deliver_twice_out_of_order,
        ),
        urls: public.map(|u| Urls::new(&u)),
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
