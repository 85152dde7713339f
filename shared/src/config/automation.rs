//! What the store does by itself, on a timer: transfer reminders (by mail, and by SMS to
//! buyers who agreed), abandoned-checkout recovery mail, review requests after delivery.

use serde::{Deserialize, Serialize};

/// `[reminders]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminders {
    /// Seconds before a bank transfer's deadline at which the buyer is reminded, largest
    /// first (`["24h", "2h"]` is `[86400, 7200]`).
    pub bank_transfer: Vec<i64>,
}

impl Default for Reminders {
    fn default() -> Self {
        Reminders {
            bank_transfer: vec![24 * 3600, 2 * 3600],
        }
    }
}

impl Reminders {
    /// The first reminder of an order whose transfer is due at `deadline` that falls after
    /// `after` (and before the deadline), if any.
    pub fn next_transfer_reminder(&self, deadline: i64, after: i64) -> Option<i64> {
        self.bank_transfer
            .iter()
            .map(|before| deadline - before)
            .filter(|at| *at > after && *at < deadline)
            .min()
    }
}

/// `[sms]`: how text messages go out (reminders, to buyers who gave a phone number and
/// agreed to them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSettings {
    pub via: SmsService,
    /// End User Messaging's origination identity (a phone number, sender id or pool), when
    /// the account has one; SNS ignores it.
    pub origination_identity: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsService {
    /// AWS End User Messaging SMS (`pinpoint-sms-voice-v2` `SendTextMessage`).
    EndUserMessaging,
    /// Amazon SNS `Publish` to a phone number.
    Sns,
}

/// `[recovery]`: one mail to a buyer who left an order unpaid and asked to be reminded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Whether checkout offers "remind me about this order" at all.
    pub enabled: bool,
    /// Seconds after the order was placed.
    pub after: i64,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            enabled: true,
            after: 3600,
        }
    }
}

/// `[reviews]`: one mail asking for a review, some days after delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviews {
    pub after_days: u32,
    /// Where reviews go, for products without their own `review_url`.
    pub url: Option<String>,
}

impl Default for Reviews {
    fn default() -> Self {
        Reviews {
            after_days: 7,
            url: None,
        }
    }
}

/// `"30m"`, `"24h"`, `"2d"` as seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a duration such as `30m`, `24h` or `2d`");
    let text = text.trim();
    let unit = text.chars().last().ok_or_else(bad)?;
    let seconds = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let number: i64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    if !(1..=100_000).contains(&number) {
        return Err(bad());
    }
    Ok(number * seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_minutes_hours_and_days_only() {
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in ["", "h", "2", "2w", "-1h", "0h", "1.5h", "h2"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_reminder_is_the_first_after_the_given_time_and_before_the_deadline() {
        let r = Reminders::default();
        let deadline = 1_000_000;
        assert_eq!(
            r.next_transfer_reminder(deadline, 0),
            Some(deadline - 86_400)
        );
        assert_eq!(
            r.next_transfer_reminder(deadline, deadline - 86_400),
            Some(deadline - 7200)
        );
        assert_eq!(r.next_transfer_reminder(deadline, deadline - 7200), None);
        // A deadline closer than a reminder skips it.
        assert_eq!(
            r.next_transfer_reminder(deadline, deadline - 3 * 3600),
            Some(deadline - 7200)
        );
    }
}
