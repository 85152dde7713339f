//! Nightshift's library: the domain, the store configuration, ports, use cases, adapters and
//! templates. Functions and the CLI are thin layers over it.

pub mod build;
pub mod config;
pub mod domain;

#[cfg(feature = "runtime")]
pub mod adapters;
#[cfg(feature = "runtime")]
pub mod app;
#[cfg(feature = "runtime")]
pub mod environment;
#[cfg(feature = "runtime")]
pub mod http;
#[cfg(feature = "runtime")]
pub mod ports;
#[cfg(feature = "runtime")]
pub mod signature;

/// The licence key format, for callers that check keys.
#[cfg(feature = "runtime")]
pub use nightshift_license as license;
