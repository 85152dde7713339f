//! Cold start: configuration, SDK clients and state, then the Lambda runtime.

use lambda_runtime::{run, service_fn, Error};
use mailer::{built_in_store, handle, State};
use shared::adapters::aws::{
    queue_from_env, sdk_config, secrets_from_env, store_from_env, SesClient, SesSender,
};
use shared::adapters::sms::AwsTexts;
use shared::app::render::Templates;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let store = built_in_store();
    let aws = sdk_config()?;
    let secrets = secrets_from_env(&aws, &[env::ORDER_TOKEN_SECRET.to_owned()]).await?;
    let state = State {
        token_key: secrets.require(env::ORDER_TOKEN_SECRET)?,
        templates: Templates::new(&store)?,
        orders: store_from_env(&aws)?,
        sender: SesSender::new(SesClient::new(&aws)),
        texts: AwsTexts::from_store(&store, &aws),
        queue: queue_from_env(&aws)?,
        store,
    };
    run(service_fn(|event| handle(&state, event))).await
}
