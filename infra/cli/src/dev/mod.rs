//! `nightshift dev`: one process that serves every function's handler on the routes of the
//! SAM template, runs the fulfilment and mail consumers in process, hosts testpay's card page
//! and the mail outbox. State is embedded in the data folder, or with `--aws` lives in
//! DynamoDB, SQS and SES (usually an emulator).

mod adapters;
mod consumers;
mod outbox;
pub mod secrets;
mod server;

use adapters::{Adapters, Aws, Embedded, SqsInbox};
use anyhow::Context;
use shared::adapters::aws::{create_queues, verify_sender, SesSender, SqsQueue};
use shared::adapters::course::{http_client, CourseProviders};
use shared::adapters::dynamodb::{create_table, DynamoStore};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore, Outbox, TextOutbox};
use shared::adapters::files::{LocalFiles, S3Links};
use shared::adapters::gateway::{stripe_api_base, Gateway, GatewaySetup};
use shared::adapters::license::LicenseKeys;
use shared::adapters::providers::Providers;
use shared::adapters::sms::AwsTexts;
use shared::adapters::system::SystemClock;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::environment::{self as env, Secrets};
use shared::ports::LicenseSigner;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// What `nightshift dev` was asked to run.
#[derive(clap::Args)]
pub struct Options {
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: String,
    #[arg(long, default_value = ".nightshift")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "store.toml")]
    pub config: PathBuf,
    /// Run on DynamoDB, SQS and SES instead of the embedded adapters.
    #[arg(long)]
    pub aws: bool,
    /// The AWS endpoint (an emulator such as moto); default: AWS_ENDPOINT_URL or AWS itself.
    #[arg(long, requires = "aws")]
    pub aws_endpoint: Option<String>,
    /// Create the table, the queues with their DLQs, and the SES sender identity first.
    #[arg(long, requires = "aws")]
    pub bootstrap: bool,
    /// Name of the table, and prefix of the queue names.
    #[arg(long, default_value = "nightshift-dev", requires = "aws")]
    pub prefix: String,
    /// The folder download files are served from (a product's `key` is a path in it);
    /// default: `downloads` beside the store's config. With `--aws` they come from S3.
    #[arg(long)]
    pub downloads: Option<PathBuf>,
    /// Let tests move the clock forward (`POST /dev/clock` with `{"advance_seconds": N}`),
    /// which also runs the timed work at once.
    #[arg(long)]
    pub test_clock: bool,
}

/// The embedded queue (for its dead letters) and the outbox (for the dev pages).
pub struct Local {
    pub queue: EmbeddedQueue,
    pub outbox: Outbox,
    pub texts: TextOutbox,
}

/// Every function's state, wired to one set of adapters.
pub struct Stack<A: Adapters> {
    pub store: Store,
    pub urls: Urls,
    pub inbox: A::Inbox,
    /// The embedded queue and outbox, when the stack runs on the embedded adapters.
    pub local: Option<Local>,
    pub checkout: checkout::State<A::Store, A::Queue, Arc<Gateway>>,
    pub payment_callback: payment_callback::State<A::Store, A::Queue, Arc<Gateway>>,
    pub order_page: order_page::State<A::Store, A::Queue, Arc<Gateway>>,
    pub fulfillment: fulfillment::State<A::Store, A::Queue, Providers<SystemClock>>,
    pub mailer: mailer::State<A::Store, A::Mail, A::Queue, A::Texts>,
    pub downloads: downloads::State<A::Store, A::Files>,
    /// The local download folder's links, when files come from a folder rather than S3.
    pub files: Option<LocalFiles>,
    /// `POST /dev/clock` moves the clock (`--test-clock`).
    pub test_clock: bool,
}

pub fn run(options: Options) -> ExitCode {
    let store = match Store::load(&options.config) {
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
    match runtime.block_on(serve(store, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightshift dev: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What every stack shares, whatever its adapters.
struct Common {
    store: Store,
    urls: Urls,
    secrets: Secrets,
    licenses: LicenseKeys,
    gateway: Arc<Gateway>,
    http: reqwest::Client,
    test_clock: bool,
}

async fn serve(store: Store, options: Options) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,nightshift=info".into()),
        )
        .with_target(false)
        .init();
    let data_dir = &options.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut secrets = secrets::load(data_dir, &env::secret_names(&store))?;
    secrets::stripe_from_env(&store, &mut secrets)?;
    let licenses = LicenseKeys::from_secrets(&secrets)?;
    if let Some(public) = licenses.public_key() {
        // The public half, for `nightshift license verify` and the seller's own software.
        let file = data_dir.join(crate::keys::PUBLIC_FILE);
        std::fs::write(
            &file,
            format!("{}\n", shared::license::to_hex(public.as_bytes())),
        )
        .with_context(|| format!("cannot write {}", file.display()))?;
        println!("licence keys: public key in {}", file.display());
    }
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let urls = Urls::new(&format!("http://{}", listener.local_addr()?));
    let http = http_client()?;
    let gateway = Gateway::from_store(
        &store,
        GatewaySetup {
            secrets: &secrets,
            urls: urls.clone(),
            http: http.clone(),
            stage: "dev",
            stripe_api_base: stripe_api_base(),
        },
    )?;
    let common = Common {
        store,
        urls,
        secrets,
        licenses,
        gateway: Arc::new(gateway),
        http,
        test_clock: options.test_clock,
    };
    if options.aws {
        let stack = aws_stack(common, &options).await?;
        announce(
            &stack,
            &format!(
                "AWS ({})",
                options
                    .aws_endpoint
                    .as_deref()
                    .unwrap_or("endpoint from the environment")
            ),
        );
        let stack = Arc::new(stack);
        consumers::start_schedule(stack.clone());
        consumers::start(stack.clone());
        server::serve(listener, stack).await
    } else {
        let orders = EmbeddedStore::open(&data_dir.join("nightshift.redb")).with_context(|| {
            format!(
                "cannot open the store in {} (is another dev stack running?)",
                data_dir.display()
            )
        })?;
        let queue = EmbeddedQueue::default();
        let local = Local {
            queue: queue.clone(),
            outbox: orders.outbox(),
            texts: orders.texts(),
        };
        let folder = options.downloads.clone().unwrap_or_else(|| {
            options
                .config
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("downloads")
        });
        let mut link_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut link_key);
        let files = LocalFiles::new(&folder, common.urls.base(), link_key);
        let stack = stack::<Embedded>(
            common,
            orders.clone(),
            queue.clone(),
            queue.clone(),
            (orders.outbox(), orders.texts()),
            Some(local),
            Storage {
                links: files.clone(),
                local: Some(files),
            },
        )?;
        consumers::recover(&stack.store, &orders, &queue).await?;
        let stack = Arc::new(stack);
        consumers::start_schedule(stack.clone());
        announce(&stack, &data_dir.display().to_string());
        consumers::start(stack.clone());
        server::serve(listener, stack).await
    }
}

async fn aws_stack(common: Common, options: &Options) -> anyhow::Result<Stack<Aws>> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &options.aws_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ses = aws_sdk_ses::Client::new(&config);
    let table = options.prefix.clone();
    let (fulfillment_url, mail_url) = if options.bootstrap {
        create_table(&dynamodb, &table)
            .await
            .context("cannot create the table")?;
        let urls = create_queues(&sqs, &options.prefix)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the queues: {e}"))?;
        verify_sender(&ses, common.store.settings.sender_email.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot verify the sender with SES: {e}"))?;
        (urls.fulfillment, urls.mail)
    } else {
        let mut urls = Vec::new();
        for name in ["fulfillment", "mail"] {
            let queue = format!("{}-{name}", options.prefix);
            let out = sqs.get_queue_url().queue_name(&queue).send().await;
            urls.push(
                out.map(|o| o.queue_url.unwrap_or_default())
                    .with_context(|| format!("no queue {queue} (use --bootstrap to create it)"))?,
            );
        }
        let mail = urls.pop().unwrap_or_default();
        (urls.pop().unwrap_or_default(), mail)
    };
    let orders = DynamoStore::new(dynamodb, table);
    let queue = SqsQueue::new(sqs.clone(), fulfillment_url.clone(), mail_url.clone());
    let inbox = SqsInbox {
        client: sqs,
        fulfillment_url,
        mail_url,
    };
    let links = S3Links::from_config(&config);
    if let (true, Some(bucket)) = (options.bootstrap, common.store.downloads_bucket()) {
        links
            .create_bucket(bucket)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the downloads bucket {bucket}: {e}"))?;
    }
    let texts = AwsTexts::from_store(&common.store, &config);
    stack::<Aws>(
        common,
        orders,
        queue,
        inbox,
        (SesSender::new(ses), texts),
        None,
        Storage { links, local: None },
    )
}

/// Where each set of adapters finds download files.
struct Storage<F> {
    links: F,
    local: Option<LocalFiles>,
}

#[allow(clippy::too_many_arguments)]
fn stack<A: Adapters>(
    common: Common,
    orders: A::Store,
    queue: A::Queue,
    inbox: A::Inbox,
    (sender, texts): (A::Mail, A::Texts),
    local: Option<Local>,
    files: Storage<A::Files>,
) -> anyhow::Result<Stack<A>> {
    let Common {
        store,
        urls,
        secrets,
        licenses,
        gateway,
        http,
        test_clock,
    } = common;
    let templates = || Templates::new(&store);
    let token_key = secrets
        .require(env::ORDER_TOKEN_SECRET)
        .map_err(anyhow::Error::msg)?;
    Ok(Stack {
        checkout: checkout::State {
            store: store.clone(),
            templates: templates()?,
            orders: orders.clone(),
            queue: queue.clone(),
            gateway: gateway.clone(),
            urls: Some(urls.clone()),
            token_key: token_key.clone(),
        },
        payment_callback: payment_callback::State {
            store: store.clone(),
            orders: orders.clone(),
            queue: queue.clone(),
            gateway: gateway.clone(),
        },
        order_page: order_page::State {
            store: store.clone(),
            templates: templates()?,
            orders: orders.clone(),
            queue: queue.clone(),
            testpay: gateway.testpay().map(|gateway| order_page::TestpayPage {
                gateway,
                http: http.clone(),
            }),
            gateway,
            urls: Some(urls.clone()),
            licenses: licenses.clone(),
        },
        fulfillment: fulfillment::State {
            store: store.clone(),
            orders: orders.clone(),
            queue: queue.clone(),
            fulfillers: Providers {
                licenses,
                courses: CourseProviders::new(http.clone(), secrets.into_map(), SystemClock),
            },
        },
        mailer: mailer::State {
            store: store.clone(),
            templates: templates()?,
            orders: orders.clone(),
            sender,
            texts,
            queue,
            token_key,
        },
        downloads: downloads::State {
            templates: templates()?,
            store: store.clone(),
            orders,
            links: files.links,
            clock: SystemClock,
        },
        files: files.local,
        local,
        inbox,
        store,
        urls,
        test_clock,
    })
}

fn announce<A: Adapters>(stack: &Stack<A>, state: &str) {
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
        stack.urls.webhook(stack.store.payments.gateway.as_str())
    );
    println!("  orders:    {base}/orders/{{token}} and {base}/orders/{{token}}.json");
    println!("  outbox:    {base}/dev/outbox and {base}/dev/outbox.json");
    if let (Some(files), Some(_)) = (&stack.files, stack.store.downloads_bucket()) {
        println!("  downloads: files from {}", files.dir().display());
    }
    println!("  state:     {state}");
}
