//! Per order on the AWS adapters, through moto: the DynamoDB, SQS and SES requests each
//! function makes (counted by an SDK interceptor), the capacity units, and the cost per
//! 1,000 orders at the list prices in `infra/bench/prices.toml`.

use crate::flow::{Functions, Placed, Record};
use crate::meter::{Counts, Meter};
use anyhow::{anyhow, Context as _};
use serde::Deserialize;
use shared::adapters::aws::{create_queues, verify_sender, QueueUrls, SesSender, SqsQueue};
use shared::adapters::dynamodb::{create_table, DynamoStore};
use shared::config::Store;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// AWS list prices (USD), as `infra/bench/prices.toml` gives them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub lambda: LambdaPrices,
    pub http_api: PerMillion,
    pub dynamodb: DynamoPrices,
    pub sqs: PerMillion,
    pub ses: SesPrices,
    pub idle: crate::idle::IdlePrices,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaPrices {
    pub requests_per_million: f64,
    pub gb_second: f64,
    pub memory_mb: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerMillion {
    pub requests_per_million: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoPrices {
    pub write_units_per_million: f64,
    pub read_units_per_million: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesPrices {
    pub mails_per_thousand: f64,
}

impl Prices {
    pub fn load(path: &Path) -> anyhow::Result<Prices> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }
}

/// A moto server on loopback, one request at a time (`infra/moto_server.py`); it exits when
/// this process closes its standard input.
struct Moto {
    url: String,
    child: Child,
}

impl Moto {
    fn start(python: &Path, script: &Path) -> anyhow::Result<Moto> {
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start moto with {}", python.display()))?;
        let stdout = child.stdout.take().context("moto's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .ok_or_else(|| anyhow!("moto did not start: {line:?}"))?
            .to_owned();
        Ok(Moto { url, child })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The steps of one order, each a Lambda invocation except the event source mappings'
/// polling, which Lambda does on the function's behalf (and SQS bills).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Checkout,
    PayLink,
    Callback,
    Fulfilment,
    Mail,
    Polling,
    View,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Checkout,
        Step::PayLink,
        Step::Callback,
        Step::Fulfilment,
        Step::Mail,
        Step::Polling,
        Step::View,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Step::Checkout => "checkout (`POST /checkout`)",
            Step::PayLink => "order page: the pay link, to pay again (counted apart, billed apart)",
            Step::Callback => "payment callback (webhook)",
            Step::Fulfilment => "fulfilment",
            Step::Mail => "mail",
            Step::Polling => "SQS event source mappings (receive + delete)",
            Step::View => "order page: one view (counted apart, billed apart)",
        }
    }

    /// An HTTP API request that invokes a function.
    pub fn http(self) -> bool {
        matches!(
            self,
            Step::Checkout | Step::PayLink | Step::Callback | Step::View
        )
    }

    pub fn invocation(self) -> bool {
        self != Step::Polling
    }

    /// The order-page function's own requests (views, and the pay link a buyer follows to pay
    /// again), which the request targets count and the bill prices apart.
    pub fn order_page(self) -> bool {
        matches!(self, Step::PayLink | Step::View)
    }
}

/// Per order, averaged: what each step asked of AWS and how long it ran.
pub struct PerOrder {
    pub steps: Vec<(Step, Counts, Duration)>,
}

impl PerOrder {
    pub fn total(&self, include: impl Fn(Step) -> bool) -> Counts {
        self.steps
            .iter()
            .filter(|(s, _, _)| include(*s))
            .fold(Counts::default(), |sum, (_, c, _)| sum.plus(c))
    }
}

/// Lambda's event source mapping for one queue: receive a batch, delete what succeeded.
struct Poller {
    sqs: aws_sdk_sqs::Client,
    urls: QueueUrls,
}

impl Poller {
    async fn receive(&self, url: &str) -> anyhow::Result<(Vec<Record>, Vec<String>)> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await?;
        let mut records = Vec::new();
        let mut handles = Vec::new();
        for m in out.messages() {
            records.push(Record {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: 1,
            });
            handles.push(m.receipt_handle().unwrap_or_default().to_owned());
        }
        Ok((records, handles))
    }

    async fn delete(&self, url: &str, handles: Vec<String>) -> anyhow::Result<()> {
        if handles.is_empty() {
            return Ok(());
        }
        let entries = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await?;
        Ok(())
    }
}

/// Measures `orders` orders after `warmup` unmeasured ones.
pub async fn run(
    store_toml: &Path,
    python: &Path,
    moto_script: &Path,
    orders: usize,
    warmup: usize,
) -> anyhow::Result<PerOrder> {
    let store = Store::load(store_toml).map_err(|e| anyhow!("{e}"))?;
    let moto = Moto::start(python, moto_script)?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await;
    let meter = Meter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let ses = aws_sdk_ses::Client::from_conf(
        aws_sdk_ses::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    create_table(&dynamodb, "bench")
        .await
        .map_err(|e| anyhow!("cannot create the table on moto: {e}"))?;
    let urls = create_queues(&sqs, "bench")
        .await
        .map_err(|e| anyhow!("cannot create the queues on moto: {e}"))?;
    verify_sender(&ses, store.settings.sender_email.as_str())
        .await
        .map_err(|e| anyhow!("cannot verify the sender on moto: {e}"))?;
    let functions = Functions::new(
        &store,
        DynamoStore::new(dynamodb, "bench"),
        SqsQueue::new(sqs.clone(), urls.fulfillment.clone(), urls.mail.clone()),
        SesSender::new(ses),
    )?;
    let poller = Poller { sqs, urls };

    let mut sums: Vec<(Step, Counts, Duration)> = Step::ALL
        .iter()
        .map(|s| (*s, Counts::default(), Duration::ZERO))
        .collect();
    for i in 0..warmup + orders {
        let measured = i >= warmup;
        let mut account = |step: Step, used: Counts, took: Duration| {
            if measured {
                let slot = sums
                    .iter_mut()
                    .find(|(s, _, _)| *s == step)
                    .expect("a step");
                slot.1 = slot.1.plus(&used);
                slot.2 += took;
            }
        };
        let used = |before: &Counts| meter.counts().minus(before);

        let (before, started) = (meter.counts(), Instant::now());
        let placed: Placed = functions.checkout(i).await?;
        account(Step::Checkout, used(&before), started.elapsed());

        let (before, started) = (meter.counts(), Instant::now());
        functions.pay_link(&placed).await?;
        account(Step::PayLink, used(&before), started.elapsed());

        let (before, started) = (meter.counts(), Instant::now());
        functions.webhook(&placed, &format!("evt_{i}")).await?;
        account(Step::Callback, used(&before), started.elapsed());

        let before = meter.counts();
        let (records, handles) = poller.receive(&poller.urls.fulfillment).await?;
        anyhow::ensure!(!records.is_empty(), "nothing on the fulfilment queue");
        account(Step::Polling, used(&before), Duration::ZERO);
        let (before, started) = (meter.counts(), Instant::now());
        functions.fulfil(&records).await?;
        account(Step::Fulfilment, used(&before), started.elapsed());

        let before = meter.counts();
        poller.delete(&poller.urls.fulfillment, handles).await?;
        let (records, handles) = poller.receive(&poller.urls.mail).await?;
        anyhow::ensure!(!records.is_empty(), "nothing on the mail queue");
        account(Step::Polling, used(&before), Duration::ZERO);
        let (before, started) = (meter.counts(), Instant::now());
        functions.send_mail(&records).await?;
        account(Step::Mail, used(&before), started.elapsed());

        let before = meter.counts();
        poller.delete(&poller.urls.mail, handles).await?;
        account(Step::Polling, used(&before), Duration::ZERO);

        let (before, started) = (meter.counts(), Instant::now());
        let page = functions.view(&placed, false).await?;
        account(Step::View, used(&before), started.elapsed());
        anyhow::ensure!(
            page.replace("&#x2f;", "/")
                .contains("https://learn.example.com/login"),
            "the order page shows no login after fulfilment: {page}"
        );
    }
    let n = orders.max(1) as f64;
    let steps = sums
        .into_iter()
        .map(|(s, c, d)| (s, c.scaled(1.0 / n), d.div_f64(n)))
        .collect();
    Ok(PerOrder { steps })
}

/// The cost of 1,000 orders, per item of the bill.
pub struct Bill {
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub http_api: f64,
    pub dynamodb: f64,
    pub sqs: f64,
    pub ses: f64,
}

impl Bill {
    pub fn infrastructure(&self) -> f64 {
        self.lambda_requests + self.lambda_duration + self.http_api + self.dynamodb + self.sqs
    }
}

/// What 1,000 times the steps in `include` cost.
pub fn bill(per_order: &PerOrder, prices: &Prices, include: impl Fn(Step) -> bool) -> Bill {
    let thousand = 1000.0;
    let per_million = |count: f64, price: f64| count * thousand * price / 1e6;
    let steps: Vec<_> = per_order
        .steps
        .iter()
        .filter(|(s, _, _)| include(*s))
        .collect();
    let invocations = steps.iter().filter(|(s, _, _)| s.invocation()).count() as f64;
    let http = steps.iter().filter(|(s, _, _)| s.http()).count() as f64;
    // Lambda bills each invocation's duration rounded up to the millisecond.
    let gb_seconds: f64 = steps
        .iter()
        .filter(|(s, _, _)| s.invocation())
        .map(|(_, _, d)| {
            (d.as_secs_f64() * 1000.0).ceil() / 1000.0 * prices.lambda.memory_mb / 1024.0
        })
        .sum();
    let all = per_order.total(include);
    Bill {
        lambda_requests: per_million(invocations, prices.lambda.requests_per_million),
        lambda_duration: gb_seconds * thousand * prices.lambda.gb_second,
        http_api: per_million(http, prices.http_api.requests_per_million),
        dynamodb: per_million(all.write_units, prices.dynamodb.write_units_per_million)
            + per_million(all.read_units, prices.dynamodb.read_units_per_million),
        sqs: per_million(all.sqs, prices.sqs.requests_per_million),
        ses: all.mails * prices.ses.mails_per_thousand,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bill_multiplies_counts_by_list_prices() {
        let prices: Prices = toml::from_str(
            "[lambda]\nrequests_per_million = 0.2\ngb_second = 0.0000166667\nmemory_mb = 128\n\
             [http_api]\nrequests_per_million = 1.0\n\
             [dynamodb]\nwrite_units_per_million = 0.625\nread_units_per_million = 0.125\n\
             [sqs]\nrequests_per_million = 0.4\n[ses]\nmails_per_thousand = 0.1\n\
             [idle]\nalarm_per_month = 0.1\nlogs_per_gb = 0.5\nscheduler_runs_per_month = 43200\n\
             scheduler_read_units_per_run = 0.5\nscheduler_ms_per_run = 15\nscheduler_log_bytes_per_run = 400\n\
             queues_polled = 2\npollers_per_queue = 5\npolls_per_poller_per_minute = 3\n\
             sqs_free_requests_per_month = 1000000\n",
        )
        .unwrap();
        let checkout = Counts {
            dynamodb: 1.0,
            write_units: 4.0,
            read_units: 2.0,
            ..Counts::default()
        };
        let polling = Counts {
            sqs: 4.0,
            ..Counts::default()
        };
        let mail = Counts {
            mails: 2.0,
            ..Counts::default()
        };
        let per_order = PerOrder {
            steps: vec![
                (Step::Checkout, checkout, Duration::from_micros(9_200)),
                (Step::Polling, polling, Duration::ZERO),
                (Step::Mail, mail, Duration::from_millis(20)),
                (Step::View, checkout, Duration::from_millis(5)),
            ],
        };
        let bill = bill(&per_order, &prices, |s| s != Step::View);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Two invocations and one HTTP request per order, 1,000 orders.
        assert!(close(bill.lambda_requests, 2.0 * 1000.0 * 0.2 / 1e6));
        assert!(close(bill.http_api, 1000.0 * 1.0 / 1e6));
        // 10 ms (rounded up) + 20 ms at 128 MB.
        assert!(close(
            bill.lambda_duration,
            0.030 * 0.125 * 1000.0 * 0.0000166667
        ));
        assert!(close(
            bill.dynamodb,
            1000.0 * (4.0 * 0.625 + 2.0 * 0.125) / 1e6
        ));
        assert!(close(bill.sqs, 4.0 * 1000.0 * 0.4 / 1e6));
        assert!(close(bill.ses, 2.0 * 0.1));
        assert!(close(
            bill.infrastructure(),
            bill.lambda_requests + bill.lambda_duration + bill.http_api + bill.dynamodb + bill.sqs
        ));
    }

    #[test]
    fn the_price_table_in_the_repository_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prices.toml");
        let prices = Prices::load(&path).unwrap();
        assert!(prices.lambda.memory_mb >= 128.0);
    }
}
