//! Player analytics (contract §12, issue 22): the viewing sessions players report to the
//! collector and their events, kept raw, and the `period` grammar the three session endpoints
//! take. Nothing here knows HTTP or SQL: the collector (vidi-api `collect`) fills these types,
//! the repository (`AnalyticsRepo`) appends and reads them.

use time::{Date, Month, OffsetDateTime, Weekday};

use crate::id::{MediaId, PlayerSessionId, WorkspaceId};

/// How the 2023 schemas spell a value nobody knows (their examples: `model: unknown`).
pub const UNKNOWN: &str = "unknown";

/// The most events one batch may carry: a player flushes every few seconds, so a real batch
/// holds a handful; a larger one is someone else's traffic.
pub const MAX_BATCH_EVENTS: usize = 200;
/// The largest playhead accepted, in seconds (a week: longer than any video or live broadcast
/// a player keeps open).
pub const MAX_PLAYHEAD_S: i64 = 7 * 24 * 3600;
/// How long after it was minted a session still takes events (the playback session of a
/// private video lasts as long).
pub const SESSION_OPEN_MS: i64 = 24 * 3600 * 1000;
/// How far ahead of the server's clock an event may claim to be (network and clock jitter).
pub const FUTURE_SKEW_MS: i64 = 5_000;

/// What happened in a session. The first seven are api.video's `PlayerSessionEvent` types; the
/// others are Vidi's quality-of-experience measures, kept in the same table but never listed by
/// `/analytics/sessions/{id}/events`, whose schema does not know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Ready,
    Play,
    Pause,
    Resume,
    SeekBackward,
    SeekForward,
    End,
    /// Time to first frame: `value` is the milliseconds from the page's start to the first
    /// frame shown.
    FirstFrame,
    /// A stall while playing: `value` is its length in milliseconds.
    Rebuffer,
    /// A fatal playback error.
    Error,
    /// Time spent playing since the previous one: `value` in ms of wall-clock time the picture
    /// moved (not paused, stalled or seeking), `bitrate` the rendition's while it did (when the
    /// player knows it). The player sends one with each batch while playing.
    Watch,
    /// The rendition now playing (hls.js `LEVEL_SWITCHED`): `height` and `bitrate`. A session's
    /// first is the initial choice; each one after it, a switch.
    Rendition,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Ready,
        EventKind::Play,
        EventKind::Pause,
        EventKind::Resume,
        EventKind::SeekBackward,
        EventKind::SeekForward,
        EventKind::End,
        EventKind::FirstFrame,
        EventKind::Rebuffer,
        EventKind::Error,
        EventKind::Watch,
        EventKind::Rendition,
    ];

    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Ready => "ready",
            EventKind::Play => "play",
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::SeekBackward => "seek.backward",
            EventKind::SeekForward => "seek.forward",
            EventKind::End => "end",
            EventKind::FirstFrame => "qoe.ttff",
            EventKind::Rebuffer => "qoe.rebuffer",
            EventKind::Error => "qoe.error",
            EventKind::Watch => "qoe.watch",
            EventKind::Rendition => "qoe.rendition",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// One of api.video's seven, listed by the events endpoint.
    pub fn is_standard(self) -> bool {
        !matches!(
            self,
            EventKind::FirstFrame | EventKind::Rebuffer | EventKind::Error | EventKind::Watch | EventKind::Rendition
        )
    }

    /// A seek: carries `from` and `to` rather than `at`.
    pub fn is_seek(self) -> bool {
        matches!(self, EventKind::SeekBackward | EventKind::SeekForward)
    }
}

/// Where the viewer came from (`VideoSessionReferrer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    pub url: Option<String>,
    pub medium: String,
    pub source: String,
    pub search_term: String,
}

/// The viewer's device, OS and client, parsed from the User-Agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub device_type: String,
    pub device_vendor: String,
    pub device_model: String,
    pub os_name: String,
    pub os_shortname: String,
    pub os_version: String,
    pub client_name: String,
    pub client_version: String,
    pub client_type: String,
}

impl Agent {
    pub fn unknown() -> Agent {
        let u = || UNKNOWN.to_string();
        Agent {
            device_type: u(),
            device_vendor: u(),
            device_model: u(),
            os_name: u(),
            os_shortname: u(),
            os_version: u(),
            client_name: u(),
            client_version: u(),
            client_type: u(),
        }
    }
}

/// A viewing session as stored: what the collector learnt when it was minted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerSession {
    pub id: PlayerSessionId,
    pub workspace_id: WorkspaceId,
    pub media: MediaId,
    /// When it was minted (unix ms).
    pub loaded_at: i64,
    /// The time of its last event (unix ms), computed when read; `loaded_at` when it has none.
    pub ended_at: i64,
    /// `metadata[k]=v` of the player URL (videos), in key order.
    pub metadata: Vec<(String, String)>,
    pub referrer: Referrer,
    pub agent: Agent,
    pub country: String,
    pub city: Option<String>,
    /// Who watched, for unique viewers: `v:` and the id the player keeps in the browser's
    /// storage, or `h:` and a hash of the client address, User-Agent and UTC day when it sent
    /// none (vidi-api `collect::enrich::viewer`); `None` for sessions stored before viewers were recorded.
    pub viewer: Option<String>,
}

/// One event of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerEvent {
    pub session_id: PlayerSessionId,
    /// Its rank in the session, as the player numbered it: a batch sent twice (a beacon retried)
    /// stores each event once.
    pub seq: i64,
    pub kind: EventKind,
    /// Unix ms.
    pub emitted_at: i64,
    /// The playhead, in whole seconds (not for seeks).
    pub at: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// A measure of a quality-of-experience event, in milliseconds.
    pub value: Option<i64>,
    /// A rendition's height (pixels) and bitrate (bits per second): `qoe.rendition`, and the
    /// bitrate of `qoe.watch`.
    pub height: Option<i64>,
    pub bitrate: Option<i64>,
}

/// A subject's quality of experience over a period (sessions loaded within it), Vidi's
/// extension beyond api.video.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QoeSummary {
    /// Sessions loaded.
    pub sessions: u64,
    /// Sessions that played (a `play` event).
    pub views: u64,
    /// Sessions with a fatal error.
    pub errored: u64,
    /// Times to first frame measured, and their median and 95th percentile (ms).
    pub ttff_count: u64,
    pub ttff_median: Option<i64>,
    pub ttff_p95: Option<i64>,
    /// Stalls after the first frame, and their total length (ms).
    pub rebuffers: u64,
    pub rebuffer_ms: i64,
    /// Distinct viewers among the sessions that played ([`PlayerSession::viewer`]).
    pub unique_viewers: u64,
    /// Time spent playing (ms), summed over sessions from their `qoe.watch` events, each
    /// session's sum capped at its length (its last event's time less its `loaded_at`).
    pub watch_ms: i64,
    /// Rendition switches: each session's `qoe.rendition` events after its first.
    pub rendition_switches: u64,
    /// The bitrate played, weighted by the time played at it (bits per second): the sum of
    /// `value × bitrate` over `qoe.watch` events that carry a bitrate, over the sum of their
    /// `value`. `None` without such events.
    pub bitrate_avg: Option<i64>,
}

/// The rank (0-based, in ascending order) of the `q`-quantile of `n` values (nearest rank).
pub fn quantile_rank(n: u64, q: f64) -> Option<u64> {
    (n > 0).then(|| (((n as f64) * q).ceil() as u64).clamp(1, n) - 1)
}

/// One raw event as `vidi analytics export` writes it: the event, and whose session of what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRow {
    pub workspace_id: WorkspaceId,
    pub media: MediaId,
    pub event: PlayerEvent,
}

/// A half-open span of time `[start, end)`, in unix ms: what a `period` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
}

fn digits(s: &str, n: usize) -> Option<i32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn day(s: &str) -> Option<Date> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let month = Month::try_from(u8::try_from(digits(m, 2)?).ok()?).ok()?;
    Date::from_calendar_date(digits(y, 4)?, month, u8::try_from(digits(d, 2)?).ok()?).ok()
}

fn ms(d: Date) -> i64 {
    (d.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn span(start: Date, end: Date) -> Option<Period> {
    (start < end).then(|| Period { start_ms: ms(start), end_ms: ms(end) })
}

impl Period {
    /// Reads §12's grammar: `YYYY-MM-DD` (a day), `YYYY-Www` (an ISO week, Monday to Sunday,
    /// which may begin in the year before: 2021-W53 does not exist, 2020-W53 ends on 2021-01-03),
    /// `YYYY-MM`, `YYYY`, or `YYYY-MM-DD/YYYY-MM-DD` (both days included). With `instant`, an
    /// RFC 3339 instant also names its (UTC) day: the live endpoint's spec example is one.
    /// Dates are in UTC, as every time the API returns.
    pub fn parse(s: &str, instant: bool) -> Option<Period> {
        let s = s.trim();
        if let Some((a, b)) = s.split_once('/') {
            let (a, b) = (day(a)?, day(b)?);
            return if a <= b { span(a, b.next_day()?) } else { None };
        }
        if let Some(d) = day(s) {
            return span(d, d.next_day()?);
        }
        if let Some((y, w)) = s.split_once("-W") {
            let w = u8::try_from(digits(w, 2)?).ok()?;
            let monday = Date::from_iso_week_date(digits(y, 4)?, w, Weekday::Monday).ok()?;
            return span(monday, monday.checked_add(time::Duration::days(7))?);
        }
        if let Some((y, m)) = s.split_once('-')
            && let (Some(y), Some(m)) = (digits(y, 4), digits(m, 2))
        {
            let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
            let first = Date::from_calendar_date(y, month, 1).ok()?;
            let next = match month {
                Month::December => Date::from_calendar_date(y + 1, Month::January, 1).ok()?,
                _ => Date::from_calendar_date(y, month.next(), 1).ok()?,
            };
            return span(first, next);
        }
        if let Some(y) = digits(s, 4) {
            return span(
                Date::from_calendar_date(y, Month::January, 1).ok()?,
                Date::from_calendar_date(y + 1, Month::January, 1).ok()?,
            );
        }
        if instant {
            let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
            let d = t.to_offset(time::UtcOffset::UTC).date();
            return span(d, d.next_day()?);
        }
        None
    }
}

/// The calendar month (UTC) that holds `ms`: its name (`YYYYMM`) and its span. What PostgreSQL's
/// monthly partitions of raw events are cut by.
pub fn month_of(ms: i64) -> Option<(String, Period)> {
    let d = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?.date();
    let name = format!("{:04}{:02}", d.year(), u8::from(d.month()));
    Some((name.clone(), Period::parse(&format!("{}-{}", &name[..4], &name[4..]), false)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn p(s: &str) -> Option<(Date, Date)> {
        let back = |ms: i64| OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap().date();
        Period::parse(s, false).map(|p| (back(p.start_ms), back(p.end_ms)))
    }

    #[test]
    fn days_months_years() {
        assert_eq!(p("2026-11-03"), Some((date!(2026 - 11 - 03), date!(2026 - 11 - 04))));
        assert_eq!(p("2026-11"), Some((date!(2026 - 11 - 01), date!(2026 - 12 - 01))));
        assert_eq!(p("2026-12"), Some((date!(2026 - 12 - 01), date!(2027 - 01 - 01))));
        assert_eq!(p("2024-02"), Some((date!(2024 - 02 - 01), date!(2024 - 03 - 01))));
        assert_eq!(p("2026"), Some((date!(2026 - 01 - 01), date!(2027 - 01 - 01))));
        assert_eq!(p("2024-02-29"), Some((date!(2024 - 02 - 29), date!(2024 - 03 - 01))));
    }

    #[test]
    fn iso_weeks_including_those_that_cross_a_year() {
        // 2020 has 53 ISO weeks; its last ends in 2021.
        assert_eq!(p("2020-W53"), Some((date!(2020 - 12 - 28), date!(2021 - 01 - 04))));
        assert_eq!(p("2021-W01"), Some((date!(2021 - 01 - 04), date!(2021 - 01 - 11))));
        // 2025-W01 begins in 2024.
        assert_eq!(p("2025-W01"), Some((date!(2024 - 12 - 30), date!(2025 - 01 - 06))));
        assert_eq!(p("2021-W53"), None);
        assert_eq!(p("2021-W00"), None);
        assert_eq!(p("2021-W1"), None);
    }

    #[test]
    fn ranges_include_both_days() {
        assert_eq!(p("2026-12-30/2027-01-02"), Some((date!(2026 - 12 - 30), date!(2027 - 01 - 03))));
        assert_eq!(p("2026-01-05/2026-01-05"), Some((date!(2026 - 01 - 05), date!(2026 - 01 - 06))));
        assert_eq!(p("2026-01-06/2026-01-05"), None);
        assert_eq!(p("2026-01-06/"), None);
    }

    #[test]
    fn what_is_refused() {
        for bad in [
            "",
            "20",
            "2026-13",
            "2026-00",
            "2026-02-30",
            "26-01-01",
            "2026-1-01",
            "2026-01-01T00:00:00Z",
            "2026-W1a",
            "x2026",
            "2026-01-01/2026-01-02/2026-01-03",
            "+2026",
        ] {
            assert_eq!(Period::parse(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn an_instant_names_its_utc_day_for_live_streams() {
        let live = Period::parse("2019-01-01T00:00:00.000Z", true).unwrap();
        assert_eq!(live, Period::parse("2019-01-01", false).unwrap());
        let late = Period::parse("2019-01-01T23:30:00-02:00", true).unwrap();
        assert_eq!(late, Period::parse("2019-01-02", false).unwrap());
    }

    #[test]
    fn nearest_rank_quantiles() {
        assert_eq!(quantile_rank(0, 0.5), None);
        assert_eq!(quantile_rank(1, 0.5), Some(0));
        assert_eq!(quantile_rank(4, 0.5), Some(1));
        assert_eq!(quantile_rank(5, 0.5), Some(2));
        assert_eq!(quantile_rank(100, 0.95), Some(94));
        assert_eq!(quantile_rank(3, 0.95), Some(2));
    }

    #[test]
    fn months_of_instants() {
        let (name, span) = month_of(Period::parse("2026-12-31", false).unwrap().start_ms + 1).unwrap();
        assert_eq!(name, "202612");
        assert_eq!(span, Period::parse("2026-12", false).unwrap());
    }

    #[test]
    fn event_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("seek"), None);
        assert_eq!(EventKind::ALL.iter().filter(|k| k.is_standard()).count(), 7);
    }
}
