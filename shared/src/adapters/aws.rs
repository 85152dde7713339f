//! SQS, SES and SSM adapters, and the SDK configuration they share. The configuration and
//! the clients are built once per cold start; `AWS_ENDPOINT_URL` (read by aws-config)
//! points them at an emulator.

use crate::environment::Secrets;
use crate::ports::{MailError, MailSender, Message, OutgoingMail, Queue, QueueError, QueueName};
use aws_sdk_ses::types::{Body, Content, Destination, Message as SesMessage};
use secrecy::SecretString;

pub use aws_sdk_ses::Client as SesClient;
pub use aws_types::SdkConfig;

/// Structured JSON logs on stdout, at the level Lambda's logging controls set
/// (`AWS_LAMBDA_LOG_LEVEL`), else `RUST_LOG` when it names a level, else INFO. Lambda stamps
/// each line with its time and request.
pub fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
}

/// The SDK's configuration from the variables Lambda sets in every function: `AWS_REGION` and
/// the execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` for an emulator. A function needs no other
/// source, so the SDK's general loader (profiles, SSO, STS, instance metadata) is not linked
/// into the bootstraps.
pub fn sdk_config() -> Result<SdkConfig, MissingVariable> {
    sdk_config_from(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// [`sdk_config`] from the variables `var` gives.
pub fn sdk_config_from(
    var: impl Fn(&'static str) -> Option<String>,
) -> Result<SdkConfig, MissingVariable> {
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_credential_types::Credentials;
    let required = |name| var(name).ok_or(MissingVariable(name));
    let credentials = Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN"),
        None,
        "lambda-environment",
    );
    let region = required("AWS_REGION").or_else(|e| var("AWS_DEFAULT_REGION").ok_or(e))?;
    let mut config = SdkConfig::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    Ok(config.build())
}

use crate::adapters::dynamodb::DynamoStore;
use crate::environment::{self as env, MissingVariable};

/// The state store named by `NIGHTSHIFT_TABLE`.
pub fn store_from_env(config: &SdkConfig) -> Result<DynamoStore, MissingVariable> {
    Ok(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(config),
        env::required(env::TABLE_NAME)?,
    ))
}

/// The queues named by `NIGHTSHIFT_FULFILLMENT_QUEUE_URL` and `NIGHTSHIFT_MAIL_QUEUE_URL`.
pub fn queue_from_env(config: &SdkConfig) -> Result<SqsQueue, MissingVariable> {
    Ok(SqsQueue::new(
        aws_sdk_sqs::Client::new(config),
        env::required(env::FULFILLMENT_QUEUE_URL)?,
        env::required(env::MAIL_QUEUE_URL)?,
    ))
}

/// The named secrets from SSM under `NIGHTSHIFT_SECRETS_PREFIX` (one call at cold start).
pub async fn secrets_from_env(
    config: &SdkConfig,
    names: &[String],
) -> Result<Secrets, Box<dyn std::error::Error + Send + Sync>> {
    // Secrets set in the environment (tests, emulators) need no SSM path.
    if names
        .iter()
        .all(|n| std::env::var(env::secret_variable(n)).is_ok())
    {
        return Ok(Secrets::from_env(names));
    }
    let prefix = env::required(env::SECRETS_PREFIX)?;
    Ok(ssm_secrets(&aws_sdk_ssm::Client::new(config), &prefix, names).await?)
}

/// SQS queues, by URL.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    fulfillment_url: String,
    mail_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, fulfillment_url: String, mail_url: String) -> Self {
        SqsQueue {
            client,
            fulfillment_url,
            mail_url,
        }
    }
}

impl Queue for SqsQueue {
    async fn send(&self, message: &Message) -> Result<(), QueueError> {
        self.send_after(message, 0).await
    }

    async fn send_after(&self, message: &Message, delay_seconds: u32) -> Result<(), QueueError> {
        let queue = message.queue();
        let url = match queue {
            QueueName::Fulfillment => &self.fulfillment_url,
            QueueName::Mail => &self.mail_url,
        };
        self.client
            .send_message()
            .queue_url(url)
            .message_body(message.to_json())
            .set_delay_seconds((delay_seconds > 0).then(|| delay_seconds.min(900) as i32))
            .send()
            .await
            .map_err(|e| QueueError {
                queue,
                source: Box::new(e),
            })?;
        Ok(())
    }
}

/// Mail through SES (v1 `SendEmail`): HTML and text parts, UTF-8.
#[derive(Clone)]
pub struct SesSender {
    client: aws_sdk_ses::Client,
}

impl SesSender {
    pub fn new(client: aws_sdk_ses::Client) -> Self {
        SesSender { client }
    }
}

fn utf8(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError(Box::new(e)))
}

impl MailSender for SesSender {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let addresses = |list: &[crate::domain::Email]| {
            Some(list.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        let destination = Destination::builder()
            .set_to_addresses(addresses(&mail.to))
            .set_cc_addresses(addresses(&mail.cc))
            .set_bcc_addresses(addresses(&mail.bcc))
            .build();
        let message = SesMessage::builder()
            .subject(utf8(&mail.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&mail.text)?)
                    .html(utf8(&mail.html)?)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .source(&mail.from)
            .destination(destination)
            .message(message)
            .send()
            .await
            .map_err(|e| MailError(Box::new(e)))?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("SSM could not be read")]
    Ssm(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the SSM parameter {0} does not exist")]
    Missing(String),
}

/// Reads each named secret from the SecureString parameter `<prefix><name>`, decrypted, in
/// one call per ten names. A secret set as `NIGHTSHIFT_SECRET_<NAME>` (tests, emulators)
/// takes precedence.
pub async fn ssm_secrets(
    client: &aws_sdk_ssm::Client,
    prefix: &str,
    names: &[String],
) -> Result<Secrets, SecretsError> {
    let mut secrets = Secrets::from_env(names);
    let wanted: Vec<&String> = names.iter().filter(|n| secrets.get(n).is_none()).collect();
    for chunk in wanted.chunks(10) {
        let paths: Vec<String> = chunk.iter().map(|n| format!("{prefix}{n}")).collect();
        let out = client
            .get_parameters()
            .set_names(Some(paths.clone()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| SecretsError::Ssm(Box::new(e)))?;
        if let Some(missing) = out.invalid_parameters().first() {
            return Err(SecretsError::Missing(missing.clone()));
        }
        for parameter in out.parameters() {
            let (Some(path), Some(value)) = (parameter.name(), parameter.value()) else {
                continue;
            };
            let name = path.strip_prefix(prefix).unwrap_or(path);
            secrets.insert(name, SecretString::from(value.to_owned()));
        }
    }
    Ok(secrets)
}

/// The queues' URLs, as `create_queues` made them.
pub struct QueueUrls {
    pub fulfillment: String,
    pub mail: String,
}

/// Creates the fulfillment and mail queues, each with a DLQ after five receives (for
/// emulators; on AWS the template does it).
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Result<QueueUrls, Box<dyn std::error::Error + Send + Sync>> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut urls = Vec::new();
    for name in ["fulfillment", "mail"] {
        let dlq = client
            .create_queue()
            .queue_name(format!("{prefix}-{name}-dlq"))
            .send()
            .await?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
        let arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        let redrive =
            serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": "5" }).to_string();
        let queue = client
            .create_queue()
            .queue_name(format!("{prefix}-{name}"))
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .attributes(QueueAttributeName::VisibilityTimeout, "180")
            .send()
            .await?;
        urls.push(queue.queue_url().unwrap_or_default().to_owned());
    }
    let mail = urls.pop().unwrap_or_default();
    let fulfillment = urls.pop().unwrap_or_default();
    Ok(QueueUrls { fulfillment, mail })
}

/// Verifies the sender address with SES (an emulator accepts it at once).
pub async fn verify_sender(
    client: &aws_sdk_ses::Client,
    address: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    client
        .verify_email_identity()
        .email_address(address)
        .send()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::ProvideCredentials;

    fn vars(pairs: &[(&'static str, &str)]) -> impl Fn(&'static str) -> Option<String> {
        let map: std::collections::HashMap<&'static str, String> =
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[tokio::test]
    async fn the_sdk_config_comes_from_the_variables_lambda_sets() {
        let config = sdk_config_from(vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]))
        .unwrap();
        assert_eq!(config.region().unwrap().as_ref(), "eu-west-1");
        assert_eq!(config.endpoint_url(), None);
        let credentials = config
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.session_token(), Some("token"));

        let local = sdk_config_from(vars(&[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(local.region().unwrap().as_ref(), "us-east-1");
        assert_eq!(local.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn missing_credentials_or_region_are_named() {
        let error = sdk_config_from(vars(&[("AWS_REGION", "eu-west-1")])).unwrap_err();
        assert_eq!(error.0, "AWS_ACCESS_KEY_ID");
        let error = sdk_config_from(vars(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]))
        .unwrap_err();
        assert_eq!(error.0, "AWS_REGION");
    }
}
