//! Cold start: configuration, SDK clients and state, then the Lambda runtime.

use downloads::{built_in_store, handle, State};
use lambda_http::{run, service_fn, Error};
use shared::adapters::aws::{sdk_config, store_from_env};
use shared::adapters::files::S3Links;
use shared::adapters::system::SystemClock;
use shared::environment as env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::init_logging();
    let store = built_in_store();
    // The role may read one bucket: a store whose files live elsewhere fails here, at deploy
    // time, rather than on a buyer's first download.
    let allowed = std::env::var(env::DOWNLOADS_BUCKET).unwrap_or_default();
    if let Some(bucket) = store.downloads_bucket() {
        if bucket != allowed {
            return Err(format!(
                "store.toml's downloads come from the bucket `{bucket}` but the stack's \
                 DownloadsBucket parameter is `{allowed}`: deploy with \
                 --parameter-overrides DownloadsBucket={bucket}"
            )
            .into());
        }
    }
    let aws = sdk_config()?;
    let state = State {
        templates: shared::app::render::Templates::new(&store)?,
        orders: store_from_env(&aws)?,
        links: S3Links::from_config(&aws),
        clock: SystemClock,
        store,
    };
    run(service_fn(|request| handle(&state, request))).await
}
