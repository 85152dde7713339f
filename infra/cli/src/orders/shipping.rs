//! `nightshift orders ship` and `nightshift orders deliver`.

use super::{
    aws_adapters, post_to_dev_stack, stopped_dev_store, DeliverOptions, ShipOptions, Target,
};
use anyhow::Context;
use shared::adapters::embedded::EmbeddedQueue;
use shared::adapters::system::SystemClock;
use shared::app::shipping::{deliver_order, ship_order, ShipError, Shipped};
use shared::config::Store;
use shared::domain::{OrderId, OrderStatus};
use shared::ports::{OrderStore, Queue};
use std::process::ExitCode;

/// What a ship or deliver command came to, wherever it ran.
struct Outcome {
    moved: bool,
    status: OrderStatus,
    tracking_url: Option<String>,
}

impl From<Shipped> for Outcome {
    fn from(shipped: Shipped) -> Self {
        let moved = matches!(shipped, Shipped::Moved(_));
        let order = shipped.order();
        Outcome {
            moved,
            status: order.status,
            tracking_url: order
                .shipping
                .as_ref()
                .and_then(|s| s.parcel.as_ref())
                .and_then(|p| p.tracking_url.clone()),
        }
    }
}

fn parse_id(given: &str) -> anyhow::Result<OrderId> {
    OrderId::parse(given.trim()).with_context(|| format!("`{given}` is not an order id (ord_…)"))
}

/// One move of a physical order, wherever the order lives.
enum Step<'a> {
    Ship {
        store: &'a Store,
        carrier: &'a str,
        tracking: &'a str,
    },
    Deliver {
        store: &'a Store,
    },
}

impl Step<'_> {
    fn done(&self) -> &'static str {
        match self {
            Step::Ship { .. } => "shipped",
            Step::Deliver { .. } => "delivered",
        }
    }

    /// The running dev stack's route and body for this step.
    fn dev_request(&self, id: &OrderId) -> (String, serde_json::Value) {
        match self {
            Step::Ship {
                carrier, tracking, ..
            } => (
                format!("/dev/orders/{id}/ship"),
                serde_json::json!({ "carrier": carrier, "tracking": tracking }),
            ),
            Step::Deliver { .. } => (format!("/dev/orders/{id}/deliver"), serde_json::json!({})),
        }
    }

    async fn apply<S: OrderStore, Q: Queue>(
        &self,
        orders: &S,
        queue: &Q,
        id: &OrderId,
    ) -> Result<Outcome, String> {
        let result = match self {
            Step::Ship {
                store,
                carrier,
                tracking,
            } => ship_order(store, orders, queue, &SystemClock, id, carrier, tracking).await,
            Step::Deliver { store } => deliver_order(store, orders, queue, &SystemClock, id).await,
        };
        result.map(Outcome::from).map_err(|e| e.to_string())
    }
}

pub async fn ship(options: ShipOptions) -> anyhow::Result<ExitCode> {
    let store = Store::load(&options.target.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let step = Step::Ship {
        store: &store,
        carrier: &options.carrier,
        tracking: &options.tracking,
    };
    run(step, &options.order, &options.target).await
}

pub async fn deliver(options: DeliverOptions) -> anyhow::Result<ExitCode> {
    let store = Store::load(&options.target.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    run(
        Step::Deliver { store: &store },
        &options.order,
        &options.target,
    )
    .await
}

/// Applies the step to the deployed store (`--aws`), the running dev stack, or the stopped
/// dev stack's data folder.
async fn run(step: Step<'_>, order: &str, target: &Target) -> anyhow::Result<ExitCode> {
    let id = parse_id(order)?;
    let result = if target.aws {
        let (orders, queue) = aws_adapters(target).await?;
        step.apply(&orders, &queue, &id).await
    } else {
        let (path, body) = step.dev_request(&id);
        match post_to_dev_stack(target, &path, body).await {
            Some(response) => from_dev_stack(response?).await?,
            None => {
                let orders = stopped_dev_store(target)?;
                step.apply(&orders, &EmbeddedQueue::default(), &id).await
            }
        }
    };
    Ok(report(&id, step.done(), result))
}

async fn from_dev_stack(response: reqwest::Response) -> anyhow::Result<Result<Outcome, String>> {
    let ok = response.status().is_success();
    let body: serde_json::Value = response.json().await?;
    if !ok {
        return Ok(Err(body["detail"].as_str().unwrap_or_default().to_owned()));
    }
    Ok(Ok(Outcome {
        moved: body["moved"] == true,
        status: serde_json::from_value(body["status"].clone())?,
        tracking_url: body["tracking_url"].as_str().map(str::to_owned),
    }))
}

fn report(id: &OrderId, step: &str, result: Result<Outcome, String>) -> ExitCode {
    match result {
        Ok(outcome) => {
            let link = outcome
                .tracking_url
                .map(|u| format!(" (tracking: {u})"))
                .unwrap_or_default();
            if outcome.moved {
                println!("{id}: {step}; the buyer is being mailed{link}");
            } else {
                println!("{id}: already {}{link}", outcome.status);
            }
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("{id}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The dev stack's answer to a ship or deliver request (see its `/dev/orders/…` routes).
pub fn answer(result: Result<Shipped, ShipError>) -> http::Response<String> {
    use http::StatusCode;
    use shared::http::{json, Problem};
    match result {
        Ok(shipped) => {
            let outcome = Outcome::from(shipped);
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "status": outcome.status,
                    "moved": outcome.moved,
                    "tracking_url": outcome.tracking_url,
                }),
            )
        }
        Err(e @ ShipError::UnknownOrder(_)) => Problem::not_found(e.to_string()).into_response(),
        Err(e @ (ShipError::Store(_) | ShipError::Queue(_) | ShipError::Contended)) => {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "Try again",
                e.to_string(),
            )
            .into_response()
        }
        Err(e) => Problem::new(
            StatusCode::CONFLICT,
            "cannot-ship",
            "Cannot do that",
            e.to_string(),
        )
        .into_response(),
    }
}
