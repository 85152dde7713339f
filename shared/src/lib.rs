//! Nightshift's library: the domain, the store configuration, ports, use cases, adapters and
//! templates. Functions and the CLI are thin layers over it.

pub mod config;
pub mod domain;
