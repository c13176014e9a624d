//! Timestamps are stored as unix milliseconds (portable across SQLite and PostgreSQL) and written
//! on the wire as RFC 3339 UTC with `+00:00` and second precision, as api.video does.

use time::OffsetDateTime;

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn now_ns() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// `2023-05-23T09:29:02.154104779Z`: nanoseconds and `Z`, as api.video writes webhook times.
pub fn to_rfc3339_nanos(ns: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ns as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{}.{:09}Z", Seconds(t), t.nanosecond())
}

/// `2019-06-24T11:45:01.109Z`: milliseconds and `Z`, as api.video's player sessions and their
/// events are written (contract §2; their order within a second matters).
pub fn to_rfc3339_millis(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{}.{:03}Z", Seconds(t), ms.rem_euclid(1000))
}

/// `2023-05-23T09:29:02`: the date and time of day to the second, the part both wire forms share.
struct Seconds(OffsetDateTime);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, t) = (self.0.date(), self.0.time());
        let (month, day) = (d.month() as u8, d.day());
        let (h, m, s) = (t.hour(), t.minute(), t.second());
        write!(f, "{:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}", d.year())
    }
}

/// `2023-01-19T10:19:19+00:00`
pub fn to_rfc3339(ms: i64) -> String {
    Rfc3339Ms(ms).to_string()
}

/// Unix milliseconds written as [`to_rfc3339`] writes them, straight into whatever formats it
/// (a JSON serializer with `collect_str`, say) instead of through a `String` of its own: every
/// video on the wire carries three of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339Ms(pub i64);

impl std::fmt::Display for Rfc3339Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Out of range (before year 0 or after 9999: RFC 3339 has no form for it): the epoch.
        let t = OffsetDateTime::from_unix_timestamp(self.0.div_euclid(1000))
            .ok()
            .filter(|t| (0..=9999).contains(&t.year()))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        // api.video writes `+00:00` for UTC, not `Z`.
        write!(f, "{}+00:00", Seconds(t))
    }
}

impl serde::Serialize for Rfc3339Ms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_api_video() {
        assert_eq!(to_rfc3339(1_674_123_559_123), "2023-01-19T10:19:19+00:00");
        assert_eq!(to_rfc3339(-1), "1969-12-31T23:59:59+00:00");
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(to_rfc3339(i64::MAX), "1970-01-01T00:00:00+00:00");
        assert_eq!(serde_json::to_string(&Rfc3339Ms(1_674_123_559_999)).unwrap(), "\"2023-01-19T10:19:19+00:00\"");
        assert_eq!(to_rfc3339_nanos(1_684_834_142_154_104_779), "2023-05-23T09:29:02.154104779Z");
        assert_eq!(to_rfc3339_nanos(1_684_834_142_000_000_000), "2023-05-23T09:29:02.000000000Z");
        assert_eq!(to_rfc3339_millis(1_561_376_701_109), "2019-06-24T11:45:01.109Z");
        assert_eq!(to_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }
}
