//! Timestamps are stored as unix milliseconds (portable across SQLite and PostgreSQL) and written
//! on the wire as RFC 3339 UTC with `+00:00` and second precision, as api.video does.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn now_ns() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// `2023-05-23T09:29:02.154104779Z`: nanoseconds and `Z`, as api.video writes webhook times.
pub fn to_rfc3339_nanos(ns: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ns as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (date, time) = (t.date(), t.time());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        date.year(),
        date.month() as u8,
        date.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.nanosecond()
    )
}

/// `2023-01-19T10:19:19+00:00`
pub fn to_rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let s = t.format(&Rfc3339).unwrap_or_default();
    // time writes `Z` for UTC; api.video writes `+00:00`.
    match s.strip_suffix('Z') {
        Some(base) => format!("{base}+00:00"),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_api_video() {
        assert_eq!(to_rfc3339(1_674_123_559_123), "2023-01-19T10:19:19+00:00");
        assert_eq!(to_rfc3339_nanos(1_684_834_142_154_104_779), "2023-05-23T09:29:02.154104779Z");
        assert_eq!(to_rfc3339_nanos(1_684_834_142_000_000_000), "2023-05-23T09:29:02.000000000Z");
    }
}
