//! The queue and mail ports' conformance: the embedded queue and outbox, and SQS and SES on
//! moto, must deliver the same messages and mails. Each adapter comes with a reader for what
//! it actually sent.

use serde_json::Value;
use shared::adapters::aws::{create_queues, verify_sender, SesSender, SqsQueue};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::domain::{Email, OrderId};
use shared::ports::{MailSender, Message, OutgoingMail, Queue, QueueName};
use tests::moto::{moto, sdk_config, unique};

/// What a queue delivered, per queue, as message bodies.
type Delivered = (Vec<String>, Vec<String>);

async fn messages_reach_their_own_queue_intact<Q: Queue>(
    queue: Q,
    delivered: impl std::future::Future<Output = Delivered>,
) {
    let order = OrderId::from_random([5; 10]);
    queue
        .send(&Message::FulfilOrder {
            order_id: order.clone(),
        })
        .await
        .unwrap();
    queue
        .send(&Message::SendMail {
            order_id: order.clone(),
        })
        .await
        .unwrap();
    let (fulfillment, mail) = delivered.await;
    let parse = |bodies: Vec<String>| {
        bodies
            .iter()
            .map(|b| Message::from_json(b).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        parse(fulfillment),
        [Message::FulfilOrder {
            order_id: order.clone()
        }]
    );
    assert_eq!(parse(mail), [Message::SendMail { order_id: order }]);
}

fn mail(to: &str) -> OutgoingMail {
    OutgoingMail {
        from: "Test Store <orders@example.com>".into(),
        to: vec![Email::parse(to).unwrap()],
        cc: vec![],
        bcc: vec![Email::parse("seller@example.com").unwrap()],
        subject: "Your access to Ünïcode Course".into(),
        text: "Password: marker-1234".into(),
        html: "<p>Password: <code>marker-1234</code></p>".into(),
    }
}

/// `(from, to, bcc, subject, body)` of each mail sent to `to`.
type Sent = Vec<(String, Vec<String>, Vec<String>, String, String)>;

async fn a_mail_reaches_its_recipients_with_its_subject_and_body<
    M: MailSender,
    F: std::future::Future<Output = Sent>,
>(
    sender: M,
    sent: impl Fn(String) -> F,
) {
    let to = format!("{}@example.com", unique("buyer"));
    sender.send(&mail(&to)).await.unwrap();
    let mails = sent(to.clone()).await;
    assert_eq!(mails.len(), 1);
    let (from, recipients, bcc, subject, body) = &mails[0];
    assert_eq!(from, "Test Store <orders@example.com>");
    assert_eq!(recipients, &[to]);
    assert_eq!(bcc, &["seller@example.com".to_owned()]);
    assert_eq!(subject, "Your access to Ünïcode Course");
    assert!(body.contains("marker-1234"));
}

fn bodies(queue: &EmbeddedQueue, name: QueueName) -> Vec<String> {
    queue
        .try_receive(name, 10)
        .into_iter()
        .map(|d| d.body)
        .collect()
}

#[tokio::test]
async fn embedded_messages_reach_their_own_queue_intact() {
    let queue = EmbeddedQueue::default();
    let reader = queue.clone();
    messages_reach_their_own_queue_intact(queue, async move {
        (
            bodies(&reader, QueueName::Fulfillment),
            bodies(&reader, QueueName::Mail),
        )
    })
    .await;
}

#[tokio::test]
async fn sqs_messages_reach_their_own_queue_intact() {
    let config = sdk_config(&moto().url).await;
    let client = aws_sdk_sqs::Client::new(&config);
    let urls = create_queues(&client, &unique("conformance"))
        .await
        .unwrap();
    let queue = SqsQueue::new(client.clone(), urls.fulfillment.clone(), urls.mail.clone());
    let read = |url: String| {
        let client = client.clone();
        async move {
            let out = client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            out.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body)
                .collect::<Vec<_>>()
        }
    };
    messages_reach_their_own_queue_intact(queue, async {
        (
            read(urls.fulfillment.clone()).await,
            read(urls.mail.clone()).await,
        )
    })
    .await;
}

#[tokio::test]
async fn embedded_mail_reaches_its_recipients_with_its_subject_and_body() {
    let outbox = EmbeddedStore::in_memory().outbox();
    let reader = outbox.clone();
    a_mail_reaches_its_recipients_with_its_subject_and_body(outbox, |to| {
        let reader = reader.clone();
        async move {
            reader
                .mails()
                .unwrap()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t.as_str() == to))
                .map(|m| {
                    let list = |l: &[Email]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
                    (
                        m.from.clone(),
                        list(&m.to),
                        list(&m.bcc),
                        m.subject.clone(),
                        format!("{}\n{}", m.text, m.html),
                    )
                })
                .collect()
        }
    })
    .await;
}

#[tokio::test]
async fn ses_mail_reaches_its_recipients_with_its_subject_and_body() {
    let endpoint = moto().url.clone();
    let client = aws_sdk_ses::Client::new(&sdk_config(&endpoint).await);
    verify_sender(&client, "orders@example.com").await.unwrap();
    a_mail_reaches_its_recipients_with_its_subject_and_body(SesSender::new(client), |to| {
        let endpoint = endpoint.clone();
        async move {
            let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            data["ses"]["Message"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|m| strings(&m["destinations"]["ToAddresses"]).contains(&to))
                .map(|m| {
                    (
                        m["source"].as_str().unwrap_or_default().to_owned(),
                        strings(&m["destinations"]["ToAddresses"]),
                        strings(&m["destinations"]["BccAddresses"]),
                        m["subject"].as_str().unwrap_or_default().to_owned(),
                        m["body"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        }
    })
    .await;
}
