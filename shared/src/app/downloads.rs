//! Downloads: a buyer's link counts one download, atomically, then hands out a short-lived
//! link to the file itself.

use crate::config::{Fulfillment, Store};
use crate::domain::DownloadToken;
use crate::ports::{BoxError, Clock, DownloadTake, FileLinks, OrderStore, StoreError};

/// How long the file's own link (an S3 presigned URL) works: long enough to start the
/// download, too short to be worth passing around.
pub const FILE_LINK_SECONDS: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("there is no such download link")]
    NotFound,
    #[error("this download link has expired")]
    Expired,
    #[error("this download link has been used as many times as it allows")]
    Exhausted,
    #[error("the file of this download is no longer offered")]
    Withdrawn,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no link to the file could be made: {0}")]
    Link(BoxError),
}

/// Where a counted download goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    /// Downloads this link still allows after this one.
    pub remaining: u32,
}

pub async fn open_download<S: OrderStore, L: FileLinks, C: Clock>(
    store: &Store,
    orders: &S,
    links: &L,
    clock: &C,
    token: &str,
) -> Result<Download, DownloadError> {
    let token = DownloadToken::parse(token).map_err(|_| DownloadError::NotFound)?;
    let (grant, used) = match orders.take_download(&token.hash(), clock.now()).await? {
        DownloadTake::Counted { grant, used } => (grant, used),
        DownloadTake::Unknown => return Err(DownloadError::NotFound),
        DownloadTake::Expired => return Err(DownloadError::Expired),
        DownloadTake::Exhausted => return Err(DownloadError::Exhausted),
    };
    let Some(Fulfillment::Download {
        bucket,
        key,
        filename,
        ..
    }) = store.product(&grant.sku).map(|p| &p.fulfillment)
    else {
        return Err(DownloadError::Withdrawn);
    };
    let url = links
        .link(bucket, key, filename, FILE_LINK_SECONDS)
        .await
        .map_err(DownloadError::Link)?;
    tracing::info!(order_id = %grant.order_id, line = grant.line, used, "download");
    Ok(Download {
        url,
        remaining: grant.max_downloads.saturating_sub(used),
    })
}

/// Downloads used so far through each of the order's download links, by line index, for the
/// order page (one read per link; a link that cannot be read is left out).
pub async fn downloads_used<S: OrderStore>(
    orders: &S,
    order: &crate::domain::Order,
) -> std::collections::BTreeMap<usize, u32> {
    let mut used = std::collections::BTreeMap::new();
    for (i, line) in order.lines.iter().enumerate() {
        let Some(crate::domain::Access::Download { url, .. }) = &line.access else {
            continue;
        };
        let Some(token) = url
            .rsplit('/')
            .next()
            .and_then(|t| DownloadToken::parse(t).ok())
        else {
            continue;
        };
        match orders.downloads_used(&token.hash()).await {
            Ok(Some(n)) => {
                used.insert(i, n);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(order_id = %order.id, error = %e, "download count unread"),
        }
    }
    used
}
