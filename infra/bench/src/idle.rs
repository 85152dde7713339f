//! The store's fixed monthly cost with no orders: alarms, the scheduler's runs, and the
//! queue polling of the event source mappings, from `[idle]` in `prices.toml` and the
//! template's own alarms.

use crate::cost::Prices;
use serde::Deserialize;

/// `[idle]` of `prices.toml`: prices and the assumptions behind the idle cost.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdlePrices {
    pub alarm_per_month: f64,
    pub logs_per_gb: f64,
    pub scheduler_runs_per_month: f64,
    pub scheduler_read_units_per_run: f64,
    pub scheduler_ms_per_run: f64,
    pub scheduler_log_bytes_per_run: f64,
    pub queues_polled: f64,
    pub pollers_per_queue: f64,
    pub polls_per_poller_per_minute: f64,
    pub sqs_free_requests_per_month: f64,
}

/// A month of a store with no orders, in USD.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IdleBill {
    pub alarms: usize,
    pub alarms_usd: f64,
    pub scheduler_usd: f64,
    pub sqs_polls_per_month: f64,
    /// Polling beyond SQS's always-free million requests.
    pub sqs_polling_usd: f64,
    /// The same polling if the account's free tier is used up by something else.
    pub sqs_polling_without_free_tier_usd: f64,
}

impl IdleBill {
    pub fn total(&self) -> f64 {
        self.alarms_usd + self.scheduler_usd + self.sqs_polling_usd
    }

    pub fn total_without_free_tier(&self) -> f64 {
        self.alarms_usd + self.scheduler_usd + self.sqs_polling_without_free_tier_usd
    }
}

/// The alarms a template defines.
pub fn count_alarms(template: &str) -> usize {
    template
        .lines()
        .filter(|l| l.trim() == "Type: AWS::CloudWatch::Alarm")
        .count()
}

pub fn idle_bill(prices: &Prices, alarms: usize) -> IdleBill {
    let idle = &prices.idle;
    let runs = idle.scheduler_runs_per_month;
    let gb = prices.lambda.memory_mb / 1024.0;
    let scheduler = runs * prices.lambda.requests_per_million / 1e6
        + runs * idle.scheduler_ms_per_run / 1000.0 * gb * prices.lambda.gb_second
        + runs * idle.scheduler_read_units_per_run * prices.dynamodb.read_units_per_million / 1e6
        + runs * idle.scheduler_log_bytes_per_run / 1e9 * idle.logs_per_gb;
    let polls = idle.queues_polled
        * idle.pollers_per_queue
        * idle.polls_per_poller_per_minute
        * 60.0
        * 24.0
        * 30.0;
    let sqs = |requests: f64| requests.max(0.0) * prices.sqs.requests_per_million / 1e6;
    IdleBill {
        alarms,
        alarms_usd: alarms as f64 * idle.alarm_per_month,
        scheduler_usd: scheduler,
        sqs_polls_per_month: polls,
        sqs_polling_usd: sqs(polls - idle.sqs_free_requests_per_month),
        sqs_polling_without_free_tier_usd: sqs(polls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_idle_month_adds_alarms_scheduler_runs_and_polling_beyond_the_free_tier() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let prices = Prices::load(&root.join("prices.toml")).unwrap();
        let template = std::fs::read_to_string(root.join("../../template.yaml")).unwrap();
        let alarms = count_alarms(&template);
        assert!(alarms >= 1);
        let bill = idle_bill(&prices, alarms);
        assert!((bill.alarms_usd - alarms as f64 * 0.10).abs() < 1e-9);
        // 2 queues × 5 pollers × 3 a minute, over 30 days.
        assert!((bill.sqs_polls_per_month - 1_296_000.0).abs() < 1e-6);
        assert!((bill.sqs_polling_without_free_tier_usd - 1.296 * 0.40).abs() < 1e-9);
        assert!((bill.sqs_polling_usd - 0.296 * 0.40).abs() < 1e-9);
        // The scheduler is cents: 43,200 requests, reads, milliseconds and log lines.
        assert!(
            bill.scheduler_usd > 0.0 && bill.scheduler_usd < 0.05,
            "{bill:?}"
        );
        assert!(
            (bill.total() - (bill.alarms_usd + bill.scheduler_usd + bill.sqs_polling_usd)).abs()
                < 1e-12
        );
    }
}
