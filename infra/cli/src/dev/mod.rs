//! `nightshift dev`: one process that serves every function's handler on the routes of the
//! SAM template, runs the fulfilment and mail consumers on an in-process queue, keeps state
//! in the data folder, and hosts testpay's card page and the mail outbox.

mod consumers;
mod outbox;
mod secrets;
mod server;
mod testpay;

use anyhow::Context;
use shared::adapters::course::{http_client, CourseProviders};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::system::SystemClock;
use shared::adapters::testpay::Testpay;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::environment as env;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Every function's state, wired to the embedded adapters.
pub struct Stack {
    pub store: Store,
    pub urls: Urls,
    pub orders: EmbeddedStore,
    pub queue: EmbeddedQueue,
    pub testpay: Arc<Testpay>,
    pub templates: Templates,
    pub http: reqwest::Client,
    pub checkout: checkout::State<EmbeddedStore>,
    pub payment_callback: payment_callback::State<EmbeddedStore, EmbeddedQueue, Arc<Testpay>>,
    pub order_page: order_page::State<EmbeddedStore, Arc<Testpay>>,
    pub fulfillment: fulfillment::State<EmbeddedStore, EmbeddedQueue, CourseProviders<SystemClock>>,
    pub mailer: mailer::State<EmbeddedStore, shared::adapters::embedded::Outbox>,
}

pub fn run(listen: &str, data_dir: &Path, config: &Path) -> ExitCode {
    let store = match Store::load(config) {
        Ok(store) => store,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(serve(store, listen, data_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightshift dev: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(store: Store, listen: &str, data_dir: &Path) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,nightshift=info".into()),
        )
        .with_target(false)
        .init();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let secrets = secrets::load(data_dir, &env::secret_names(&store))?;
    let orders = EmbeddedStore::open(&data_dir.join("nightshift.redb")).with_context(|| {
        format!(
            "cannot open the store in {} (is another dev stack running?)",
            data_dir.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let urls = Urls::new(&format!("http://{address}"));
    let queue = EmbeddedQueue::default();
    let testpay = Arc::new(Testpay::new(
        secrets
            .require(env::TESTPAY_SECRET)
            .map_err(anyhow::Error::msg)?,
        urls.clone(),
        store.payments.testpay.deliver_twice_out_of_order,
    ));
    let http = http_client()?;
    let templates = || Templates::new(&store);
    let stack = Arc::new(Stack {
        checkout: checkout::State {
            store: store.clone(),
            templates: templates()?,
            orders: orders.clone(),
            urls: Some(urls.clone()),
            token_key: secrets
                .require(env::ORDER_TOKEN_SECRET)
                .map_err(anyhow::Error::msg)?,
        },
        payment_callback: payment_callback::State {
            orders: orders.clone(),
            queue: queue.clone(),
            gateway: testpay.clone(),
        },
        order_page: order_page::State {
            store: store.clone(),
            templates: templates()?,
            orders: orders.clone(),
            gateway: testpay.clone(),
            urls: Some(urls.clone()),
        },
        fulfillment: fulfillment::State {
            store: store.clone(),
            orders: orders.clone(),
            queue: queue.clone(),
            enroller: CourseProviders::new(http.clone(), secrets.clone().into_map(), SystemClock),
        },
        mailer: mailer::State {
            store: store.clone(),
            templates: templates()?,
            orders: orders.clone(),
            sender: orders.outbox(),
        },
        templates: templates()?,
        store,
        urls,
        orders,
        queue,
        testpay,
        http,
    });
    consumers::recover(&stack).await?;
    consumers::start(stack.clone());
    consumers::start_expiry_sweep(stack.clone());

    let base = stack.urls.base();
    println!(
        "Nightshift dev stack for {} on {base}",
        stack.store.settings.name
    );
    println!("  store:     {base}/");
    for sku in stack.store.products.keys() {
        println!("  buy:       {}", stack.urls.buy(sku));
    }
    println!("  checkout:  POST {}", stack.urls.checkout());
    println!(
        "  webhook:   POST {}",
        stack.urls.webhook(stack.testpay.as_ref().name_str())
    );
    println!("  orders:    {base}/orders/{{token}} and {base}/orders/{{token}}.json");
    println!("  outbox:    {base}/dev/outbox and {base}/dev/outbox.json");
    println!("  data:      {}", data_dir.display());
    server::serve(listener, stack).await
}

trait GatewayName {
    fn name_str(&self) -> &'static str;
}

impl GatewayName for Testpay {
    fn name_str(&self) -> &'static str {
        shared::adapters::testpay::NAME
    }
}
