//! `nightshift orders`: the seller's hand on an order. `confirm-payment` marks a bank transfer
//! as arrived and runs the same path as a gateway's paid event; `ship` and `deliver` move a
//! physical order along and mail the buyer. Each works against the running dev stack, the dev
//! stack's data folder when it is stopped, or the AWS table and queues.

use anyhow::Context;
use shared::adapters::aws::SqsQueue;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::system::SystemClock;
use shared::app::payment::{confirm_transfer, Applied, ConfirmError};
use shared::config::Store;
use shared::domain::{Order, OrderId, OrderStatus};
use shared::environment as env;
use std::path::PathBuf;
use std::process::ExitCode;

pub mod shipping;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The buyer's bank transfer arrived: mark the order paid and deliver it.
    ConfirmPayment(ConfirmOptions),
    /// The parcel is sent: mark the physical items shipped and mail the buyer the tracking link.
    Ship(ShipOptions),
    /// The parcel arrived: mark the order delivered and tell the buyer.
    Deliver(DeliverOptions),
}

#[derive(clap::Args)]
pub struct ConfirmOptions {
    /// The order id (`ord_…`) or the payment reference the transfer carried (`NS-…`).
    pub order: String,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct ShipOptions {
    /// The order id (`ord_…`).
    pub order: String,
    /// The carrier, one of the store's `[shipping] carriers` (its tracking link template).
    #[arg(long)]
    pub carrier: String,
    /// The parcel's tracking number.
    #[arg(long)]
    pub tracking: String,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct DeliverOptions {
    /// The order id (`ord_…`).
    pub order: String,
    #[command(flatten)]
    pub target: Target,
}

/// Which store a command acts on: the dev stack (running or stopped) or the deployed one.
#[derive(clap::Args)]
pub struct Target {
    #[arg(long, default_value = "store.toml")]
    pub config: PathBuf,
    /// The running dev stack.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub dev_url: String,
    /// The dev stack's data folder, used directly when the stack is not running.
    #[arg(long, default_value = ".nightshift")]
    pub data_dir: PathBuf,
    /// Confirm in the deployed store: its DynamoDB table and SQS queues.
    #[arg(long)]
    pub aws: bool,
    /// The table (default: NIGHTSHIFT_TABLE; the stack's `TableName` output).
    #[arg(long, requires = "aws")]
    pub table: Option<String>,
    /// The fulfilment queue (default: NIGHTSHIFT_FULFILLMENT_QUEUE_URL; output `FulfillmentQueueUrl`).
    #[arg(long, requires = "aws")]
    pub fulfillment_queue_url: Option<String>,
    /// The mail queue (default: NIGHTSHIFT_MAIL_QUEUE_URL; output `MailQueueUrl`).
    #[arg(long, requires = "aws")]
    pub mail_queue_url: Option<String>,
    /// An AWS endpoint such as an emulator's; default: AWS_ENDPOINT_URL or AWS itself.
    #[arg(long, requires = "aws")]
    pub aws_endpoint: Option<String>,
}

pub fn run(command: Command) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let (name, result) = match command {
        Command::ConfirmPayment(options) => ("confirm-payment", runtime.block_on(confirm(options))),
        Command::Ship(options) => ("ship", runtime.block_on(shipping::ship(options))),
        Command::Deliver(options) => ("deliver", runtime.block_on(shipping::deliver(options))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nightshift orders {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The deployed store's table and queues, from the flags or the environment.
async fn aws_adapters(target: &Target) -> anyhow::Result<(DynamoStore, SqsQueue)> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &target.aws_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    let pick = |given: &Option<String>, variable: &'static str| {
        given
            .clone()
            .or_else(|| std::env::var(variable).ok())
            .with_context(|| format!("give --{} or set {variable}", flag(variable)))
    };
    let orders = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        pick(&target.table, env::TABLE_NAME)?,
    );
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        pick(&target.fulfillment_queue_url, env::FULFILLMENT_QUEUE_URL)?,
        pick(&target.mail_queue_url, env::MAIL_QUEUE_URL)?,
    );
    Ok((orders, queue))
}

/// The stopped dev stack's store (it queues due work again when it starts).
fn stopped_dev_store(target: &Target) -> anyhow::Result<EmbeddedStore> {
    EmbeddedStore::open(&target.data_dir.join("nightshift.redb")).with_context(|| {
        format!(
            "no dev stack at {} and cannot open the store in {}",
            target.dev_url,
            target.data_dir.display()
        )
    })
}

/// Posts to the running dev stack; `None` when nothing listens there.
async fn post_to_dev_stack(
    target: &Target,
    path: &str,
    body: serde_json::Value,
) -> Option<anyhow::Result<reqwest::Response>> {
    let url = format!("{}{path}", target.dev_url.trim_end_matches('/'));
    let client = shared::adapters::course::http_client().ok()?;
    match client.post(&url).json(&body).send().await {
        Ok(r) => Some(Ok(r)),
        Err(e) if e.is_connect() => None,
        Err(e) => Some(Err(e.into())),
    }
}

/// An order id as given, or read back from a transfer reference.
pub fn order_id(given: &str) -> anyhow::Result<OrderId> {
    let given = given.trim();
    OrderId::parse(given)
        .ok()
        .or_else(|| OrderId::from_transfer_reference(given))
        .with_context(|| {
            format!("`{given}` is neither an order id (ord_…) nor a payment reference")
        })
}

async fn confirm(options: ConfirmOptions) -> anyhow::Result<ExitCode> {
    let order_id = order_id(&options.order)?;
    let target = &options.target;
    let store = Store::load(&target.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let outcome: Outcome = if target.aws {
        let (orders, queue) = aws_adapters(target).await?;
        confirm_transfer(&store, &orders, &queue, &SystemClock, &order_id)
            .await
            .into()
    } else {
        let path = format!("/dev/orders/{order_id}/confirm-payment");
        match post_to_dev_stack(target, &path, serde_json::json!({})).await {
            Some(response) => answer(response?).await?,
            None => {
                // The stack is not running: write to its store; it queues the fulfilment of
                // paid orders when it starts.
                let orders = stopped_dev_store(target)?;
                confirm_transfer(
                    &store,
                    &orders,
                    &EmbeddedQueue::default(),
                    &SystemClock,
                    &order_id,
                )
                .await
                .into()
            }
        }
    };
    Ok(report(&order_id, outcome))
}

fn flag(variable: &str) -> &'static str {
    match variable {
        env::TABLE_NAME => "table",
        env::FULFILLMENT_QUEUE_URL => "fulfillment-queue-url",
        _ => "mail-queue-url",
    }
}

/// What a confirmation came to, wherever it ran.
enum Outcome {
    Done(Applied, OrderStatus),
    Refused(String),
}

impl From<Result<(Applied, Order), ConfirmError>> for Outcome {
    fn from(result: Result<(Applied, Order), ConfirmError>) -> Self {
        match result {
            Ok((applied, order)) => Outcome::Done(applied, order.status),
            Err(ConfirmError::UnknownOrder(_)) => Outcome::Refused("there is no such order".into()),
            Err(e) => Outcome::Refused(e.to_string()),
        }
    }
}

fn report(order_id: &OrderId, outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Done(Applied::Moved(status), _) => {
            println!("{order_id}: payment confirmed; the order is {status} and is being delivered");
            ExitCode::SUCCESS
        }
        Outcome::Done(Applied::Duplicate, status) => {
            println!("{order_id}: the payment was confirmed before; the order is {status}");
            ExitCode::SUCCESS
        }
        Outcome::Done(Applied::Recorded(note), status) => {
            eprintln!("{order_id}: recorded, but the order stays {status}: {note}");
            ExitCode::FAILURE
        }
        Outcome::Done(Applied::UnknownOrder, _) => {
            report(order_id, Outcome::Refused("there is no such order".into()))
        }
        Outcome::Refused(why) => {
            eprintln!("{order_id}: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn answer(response: reqwest::Response) -> anyhow::Result<Outcome> {
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(Outcome::Refused("there is no such order".into()));
    }
    if !status.is_success() {
        return Ok(Outcome::Refused(text("detail")));
    }
    let order_status: OrderStatus = serde_json::from_value(body["status"].clone())?;
    let applied = if body["applied"] == true {
        Applied::Moved(order_status)
    } else if body["duplicate"] == true {
        Applied::Duplicate
    } else {
        Applied::Recorded(text("note"))
    };
    Ok(Outcome::Done(applied, order_status))
}
