//! Countries as buyers read them: ISO 3166-1 alpha-2 codes and their English names.

use isocountry::CountryCode;

/// Names a buyer looks for, where the ISO short name reads like a form (`Korea (Republic of)`).
const COMMON_NAMES: &[(&str, &str)] = &[
    ("BO", "Bolivia"),
    ("BN", "Brunei"),
    ("CZ", "Czechia"),
    ("FM", "Micronesia"),
    ("GB", "United Kingdom"),
    ("IR", "Iran"),
    ("KP", "North Korea"),
    ("KR", "South Korea"),
    // Not in ISO 3166-1, but carriers and shops use it.
    ("XK", "Kosovo"),
    ("LA", "Laos"),
    ("MD", "Moldova"),
    ("PS", "Palestine"),
    ("RU", "Russia"),
    ("SY", "Syria"),
    ("TW", "Taiwan"),
    ("TZ", "Tanzania"),
    ("US", "United States"),
    ("VE", "Venezuela"),
    ("VN", "Vietnam"),
];

/// The English name of a country code (`DE` → `Germany`), or `None` for a code that is not
/// a country.
pub fn country_name(code: &str) -> Option<&'static str> {
    if let Some((_, name)) = COMMON_NAMES.iter().find(|(c, _)| *c == code) {
        return Some(name);
    }
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    CountryCode::for_alpha2(code).ok().map(|c| c.name())
}

/// Every ISO country code, ordered by the name a buyer reads (sorted once per process).
pub fn all_countries() -> &'static [&'static str] {
    static ALL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut codes: Vec<&'static str> = CountryCode::iter().map(|c| c.alpha2()).collect();
        codes.sort_by_key(|code| country_name(code).unwrap_or(code));
        codes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_the_names_buyers_use() {
        assert_eq!(country_name("DE"), Some("Germany"));
        assert_eq!(country_name("KR"), Some("South Korea"));
        assert_eq!(country_name("ID"), Some("Indonesia"));
        assert_eq!(country_name("TH"), Some("Thailand"));
        assert_eq!(country_name("de"), None);
        assert_eq!(country_name("XX"), None);
        assert_eq!(country_name("XK"), Some("Kosovo"));
        assert_eq!(country_name("*"), None);
    }

    #[test]
    fn the_list_holds_every_country_once_in_name_order() {
        let all = all_countries();
        assert!(all.len() > 240);
        let names: Vec<&str> = all.iter().map(|c| country_name(c).unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let mut unique = all.to_vec();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
    }
}
