//! Adapters behind the ports: DynamoDB, SQS, SES and SSM for AWS; embedded ones for the dev
//! stack and tests; the card gateways (Stripe, and testpay for tests); course providers and licence keys; the system clock and randomness.

pub mod aws;
pub mod course;
pub mod dynamodb;
pub mod embedded;
pub mod files;
pub mod gateway;
pub mod license;
pub mod moodle;
pub mod providers;
pub mod sms;
pub mod stripe;
pub mod system;
pub mod testpay;
