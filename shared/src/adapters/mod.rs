//! Adapters behind the ports: embedded ones for the dev stack and tests, the test gateway,
//! course providers, and the system clock and randomness.

pub mod course;
pub mod embedded;
pub mod system;
pub mod testpay;
