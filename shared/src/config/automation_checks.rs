//! Validation of the timed work's settings: `[reminders]`, `[sms]`, `[recovery]`, `[reviews]`.

use super::super::raw::{RawRecovery, RawReminders, RawReviews, RawSms};
use super::super::{parse_duration, Recovery, Reminders, Reviews, SmsService, SmsSettings};
use super::Validator;

impl Validator<'_> {
    pub(super) fn reminders(&mut self, raw: &RawReminders) -> Option<Reminders> {
        let mut before = Vec::new();
        for (i, text) in raw.bank_transfer.iter().enumerate() {
            match parse_duration(text) {
                Ok(s) if s <= 30 * 86_400 => before.push(s),
                Ok(_) => self.error(
                    &format!("reminders.bank_transfer.{i}"),
                    "must be at most 30 days before the deadline",
                ),
                Err(e) => self.error(&format!("reminders.bank_transfer.{i}"), e),
            }
        }
        before.sort_unstable_by(|a, b| b.cmp(a));
        before.dedup();
        Some(Reminders {
            bank_transfer: before,
        })
    }

    pub(super) fn sms(&mut self, raw: &RawSms) -> Option<SmsSettings> {
        let via = match raw.via.as_str() {
            "end_user_messaging" => SmsService::EndUserMessaging,
            "sns" => SmsService::Sns,
            other => {
                self.error(
                    "sms.via",
                    format!("`{other}` is not one of `end_user_messaging`, `sns`"),
                );
                return None;
            }
        };
        Some(SmsSettings {
            via,
            origination_identity: raw
                .origination_identity
                .as_ref()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        })
    }

    pub(super) fn recovery(&mut self, raw: &RawRecovery) -> Option<Recovery> {
        match parse_duration(&raw.after) {
            Ok(after) if (10 * 60..=7 * 86_400).contains(&after) => Some(Recovery {
                enabled: raw.enabled,
                after,
            }),
            Ok(_) => {
                self.error("recovery.after", "must be from 10m to 7d");
                None
            }
            Err(e) => {
                self.error("recovery.after", e);
                None
            }
        }
    }

    pub(super) fn reviews(&mut self, raw: &RawReviews) -> Option<Reviews> {
        let mut ok = true;
        if !(1..=365).contains(&raw.after_days) {
            self.error("reviews.after_days", "must be from 1 to 365 days");
            ok = false;
        }
        if let Some(url) = &raw.url {
            if !url.starts_with("https://") {
                self.error("reviews.url", "must be an https:// address");
                ok = false;
            }
        }
        ok.then(|| Reviews {
            after_days: u32::try_from(raw.after_days).unwrap_or(7),
            url: raw.url.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{SmsService, Store};
    use std::path::Path;

    const BASE: &str = "[store]\nname = \"S\"\ncurrency = \"EUR\"\nseller_email = \"s@example.com\"\nsender = \"s@example.com\"\n\n[payments]\ngateway = \"testpay\"\n\n[products.a]\nname = \"A\"\nprice = \"1.00\"\nfulfillment = { kind = \"license_key\" }\n";

    fn errors(extra: &str) -> Vec<String> {
        match Store::parse(&format!("{BASE}\n{extra}"), Path::new("store.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_defaults_remind_a_day_and_two_hours_before_and_recover_after_an_hour() {
        let store = Store::parse(BASE, Path::new("store.toml")).unwrap();
        assert_eq!(store.reminders.bank_transfer, vec![86_400, 7200]);
        assert_eq!((store.recovery.enabled, store.recovery.after), (true, 3600));
        assert_eq!(store.reviews.after_days, 7);
        assert_eq!(store.sms, None);
    }

    #[test]
    fn each_bad_setting_is_named_with_its_line() {
        assert_eq!(
            errors("[reminders]\nbank_transfer = [\"2h\", \"soon\"]"),
            ["store.toml:16: reminders.bank_transfer.1: `soon` is not a duration such as `30m`, `24h` or `2d`"]
        );
        assert_eq!(
            errors("[sms]\nvia = \"pigeon\""),
            ["store.toml:16: sms.via: `pigeon` is not one of `end_user_messaging`, `sns`"]
        );
        assert_eq!(
            errors("[recovery]\nafter = \"1m\""),
            ["store.toml:16: recovery.after: must be from 10m to 7d"]
        );
        assert_eq!(
            errors("[reviews]\nafter_days = 0\nurl = \"http://x\""),
            [
                "store.toml:16: reviews.after_days: must be from 1 to 365 days",
                "store.toml:17: reviews.url: must be an https:// address"
            ]
        );
        let sms = Store::parse(
            &format!("{BASE}\n[sms]\nvia = \"sns\""),
            Path::new("store.toml"),
        )
        .unwrap()
        .sms
        .unwrap();
        assert_eq!(sms.via, SmsService::Sns);
    }
}
