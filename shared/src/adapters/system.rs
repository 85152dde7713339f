//! The real clock and the operating system's randomness.

use crate::ports::{Clock, Entropy};
use rand::RngCore;

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Seconds this process's clock runs ahead of the real one: always 0 on AWS. The dev stack
/// started with a test clock moves it (`POST /dev/clock`), so tests see reservations run
/// out and reminders come due without waiting for them.
static AHEAD: AtomicI64 = AtomicI64::new(0);

/// Moves this process's [`SystemClock`] forward by `seconds`; gives the new time. Only the
/// dev stack's test clock calls it.
pub fn advance_clock(seconds: i64) -> i64 {
    AHEAD.fetch_add(seconds.max(0), Ordering::SeqCst);
    SystemClock.now()
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        real.saturating_add(AHEAD.load(Ordering::Relaxed))
    }
}

/// Randomness from a CSPRNG seeded by the operating system (rand's thread generator).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}
