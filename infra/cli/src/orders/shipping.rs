//! `nightshift orders ship` and `nightshift orders deliver`.

use super::{aws_adapters, post_to_dev_stack, stopped_dev_store, DeliverOptions, ShipOptions};
use anyhow::Context;
use shared::adapters::embedded::EmbeddedQueue;
use shared::adapters::system::SystemClock;
use shared::app::shipping::{deliver_order, ship_order, ShipError, Shipped};
use shared::config::Store;
use shared::domain::{OrderId, OrderStatus};
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

pub async fn ship(options: ShipOptions) -> anyhow::Result<ExitCode> {
    let id = parse_id(&options.order)?;
    let target = &options.target;
    let store = Store::load(&target.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (carrier, tracking) = (options.carrier.as_str(), options.tracking.as_str());
    let result = if target.aws {
        let (orders, queue) = aws_adapters(target).await?;
        ship_order(
            &store,
            &orders,
            &queue,
            &SystemClock,
            &id,
            carrier,
            tracking,
        )
        .await
        .map(Outcome::from)
        .map_err(|e| e.to_string())
    } else {
        let body = serde_json::json!({ "carrier": carrier, "tracking": tracking });
        match post_to_dev_stack(target, &format!("/dev/orders/{id}/ship"), body).await {
            Some(response) => from_dev_stack(response?).await?,
            None => {
                let orders = stopped_dev_store(target)?;
                let queue = EmbeddedQueue::default();
                ship_order(
                    &store,
                    &orders,
                    &queue,
                    &SystemClock,
                    &id,
                    carrier,
                    tracking,
                )
                .await
                .map(Outcome::from)
                .map_err(|e| e.to_string())
            }
        }
    };
    Ok(report(&id, "shipped", result))
}

pub async fn deliver(options: DeliverOptions) -> anyhow::Result<ExitCode> {
    let id = parse_id(&options.order)?;
    let target = &options.target;
    let result = if target.aws {
        let (orders, queue) = aws_adapters(target).await?;
        deliver_order(&orders, &queue, &SystemClock, &id)
            .await
            .map(Outcome::from)
            .map_err(|e| e.to_string())
    } else {
        match post_to_dev_stack(
            target,
            &format!("/dev/orders/{id}/deliver"),
            serde_json::json!({}),
        )
        .await
        {
            Some(response) => from_dev_stack(response?).await?,
            None => {
                let orders = stopped_dev_store(target)?;
                deliver_order(&orders, &EmbeddedQueue::default(), &SystemClock, &id)
                    .await
                    .map(Outcome::from)
                    .map_err(|e| e.to_string())
            }
        }
    };
    Ok(report(&id, "delivered", result))
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
