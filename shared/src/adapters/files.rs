//! Links to download files: S3 presigned URLs (AWS), or the dev stack's own signed links to
//! files in a local folder.

use crate::ports::{BoxError, FileLinks};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// S3 `GetObject` presigned for a short while; the browser saves the file as `filename`.
#[derive(Clone)]
pub struct S3Links {
    client: aws_sdk_s3::Client,
}

impl S3Links {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Links { client }
    }

    /// An S3 client from the shared AWS configuration. With a custom endpoint (an emulator),
    /// buckets are addressed by path, as emulators on `localhost` need.
    pub fn from_config(config: &aws_types::SdkConfig) -> Self {
        let mut builder = aws_sdk_s3::config::Builder::from(config);
        if config.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        S3Links::new(aws_sdk_s3::Client::from_conf(builder.build()))
    }

    /// Creates the bucket (for emulators; on AWS the seller's bucket exists already).
    /// A bucket that exists already is fine.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), BoxError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// `attachment; filename="…"` with a UTF-8 fallback for names outside ASCII (RFC 6266).
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = form_urlencoded::byte_serialize(filename.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

impl FileLinks for S3Links {
    async fn link(
        &self,
        bucket: &str,
        key: &str,
        filename: &str,
        seconds: u64,
    ) -> Result<String, BoxError> {
        let presigning =
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(seconds))?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .response_content_disposition(content_disposition(filename))
            .presigned(presigning)
            .await?;
        Ok(request.uri().to_owned())
    }
}

/// The dev stack's stand-in for S3: files under `dir` (`<dir>/<key>`), served at
/// `<base>/dev/files?key=…&expires=…&filename=…&signature=…` with an HMAC the stack checks,
/// so a link expires like a presigned URL does.
#[derive(Clone)]
pub struct LocalFiles {
    dir: PathBuf,
    base: String,
    key: [u8; 32],
}

/// Why a local file link was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocalFileError {
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

impl LocalFiles {
    pub fn new(dir: &Path, base: &str, key: [u8; 32]) -> Self {
        LocalFiles {
            dir: dir.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn signature(&self, key: &str, filename: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("{key}\n{filename}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a link's query and says which file it opens (its path and the name to save it
    /// under). Keys are checked by the store config, so they never leave `dir`.
    pub fn open(&self, query: &str, now: i64) -> Result<(PathBuf, String), LocalFileError> {
        let pairs = crate::http::form_pairs(query.as_bytes());
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (key, filename) = (get("key"), get("filename"));
        let expires: i64 = get("expires")
            .parse()
            .map_err(|_| LocalFileError::BadSignature)?;
        let expected = self.signature(&key, &filename, expires);
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), get("signature").as_bytes()).into();
        if !matches {
            return Err(LocalFileError::BadSignature);
        }
        if now >= expires {
            return Err(LocalFileError::Expired);
        }
        Ok((self.dir.join(key), filename))
    }
}

impl FileLinks for LocalFiles {
    async fn link(
        &self,
        _bucket: &str,
        key: &str,
        filename: &str,
        seconds: u64,
    ) -> Result<String, BoxError> {
        let now = crate::ports::Clock::now(&crate::adapters::system::SystemClock);
        let expires = now + i64::try_from(seconds).unwrap_or(i64::MAX / 2);
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("key", key)
            .append_pair("expires", &expires.to_string())
            .append_pair("filename", filename)
            .append_pair("signature", &self.signature(key, filename, expires))
            .finish();
        Ok(format!("{}/dev/files?{query}", self.base))
    }
}
