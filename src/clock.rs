//! Timestamps as erpd stores and sends them: RFC 3339 UTC with second precision
//! (`2026-11-27T10:00:00Z`), which also sorts correctly as text in SQLite.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

pub fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn now_rfc3339() -> String {
    format(now())
}

pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A compact UTC stamp for file names: `20261127T100000Z`.
pub fn file_stamp() -> String {
    let t = now();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let s = super::now_rfc3339();
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(super::format(super::parse(&s).unwrap()), s);
        assert_eq!(super::file_stamp().len(), 16);
    }
}
