//! api.video's upload rules (contract §4), as pure functions over the stored upload state, so the
//! database layer can apply them inside one transaction and the rules can be unit-tested alone.

use crate::model::{Chunk, Ingest, IngestState, SourceKind, UploadMode};

/// Every chunk but the last must hold at least this many bytes (also S3's minimum part size).
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// At most this many parts (also S3's maximum part count).
pub const MAX_PARTS: u32 = 10_000;
/// Total bytes of one source.
pub const MAX_TOTAL_BYTES: u64 = 52_428_800_000;

/// A parsed `Content-Range` request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `part n/total`, `total` is `None` for `*`.
    Part { n: u32, total: Option<u32> },
    /// `bytes from-to/total`, inclusive.
    Bytes { from: u64, to: u64, total: u64 },
}

/// Every way an upload request can be refused (contract §4.2, §4.3, §4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    Malformed,
    StartedWithPart,
    StartedWithBytes,
    AlreadyInitiated,
    PartZero,
    TotalPartsZero,
    DifferentTotalParts,
    PartAlreadySent,
    /// Another live request is writing this part right now (retry later).
    PartInProgress,
    PartTooHighTotal,
    PartTooHighAllowed,
    TotalPartsTooHigh,
    TotalPartsTooLow,
    PartTooSmall,
    TotalBytesZero,
    DifferentTotalBytes,
    FromByteTooHigh,
    RangeMismatch,
    RangeOverlap,
    /// Another live request is writing exactly this byte range right now (retry later): the
    /// bytes-mode twin of `PartInProgress`, so a client resuming after its node died waits for
    /// the dead node's claim to go stale instead of being told its chunk overlaps.
    RangeInProgress,
    RangeTooSmall,
    RangeTooLarge,
    ToByteTooHighTotal,
    ToByteTooHighAllowed,
    TotalBytesTooHigh,
    TotalBytesTooLow,
    AlreadyUploaded,
    AlreadyDownloaded,
    AlreadyCopied,
    FileTooLarge,
    FileEmpty,
}

impl RangeError {
    /// The last segment of the problem `type` URL.
    pub fn slug(self) -> &'static str {
        use RangeError::*;
        match self {
            Malformed => "video-content-range-malformed",
            StartedWithPart => "video-content-range-started-with-part",
            StartedWithBytes => "video-content-range-started-with-bytes",
            AlreadyInitiated => "video-content-range-already-initiated",
            PartZero => "video-content-range-by-part-part-zero",
            TotalPartsZero => "video-content-range-by-part-total-parts-zero",
            DifferentTotalParts => "video-content-range-by-part-different-total-parts",
            PartAlreadySent => "video-content-range-by-part-part-already-sent",
            PartInProgress => "video-content-range-by-part-part-in-progress",
            PartTooHighTotal => "video-content-range-by-part-part-too-high-total",
            PartTooHighAllowed => "video-content-range-by-part-part-too-high-allowed",
            TotalPartsTooHigh => "video-content-range-by-part-total-parts-too-high",
            TotalPartsTooLow => "video-content-range-by-part-total-parts-too-low",
            PartTooSmall => "video-content-range-by-part-uploaded-file-too-small",
            TotalBytesZero => "video-content-range-by-bytes-total-bytes-zero",
            DifferentTotalBytes => "video-content-range-by-bytes-different-total-bytes",
            FromByteTooHigh => "video-content-range-by-bytes-from-byte-too-high",
            RangeMismatch => "video-content-range-by-bytes-range-mismatch",
            RangeOverlap => "video-content-range-by-bytes-range-overlap",
            RangeInProgress => "video-content-range-by-bytes-range-in-progress",
            RangeTooSmall => "video-content-range-by-bytes-range-too-small",
            RangeTooLarge => "video-content-range-by-bytes-range-too-large",
            ToByteTooHighTotal => "video-content-range-by-bytes-to-byte-too-high-total",
            ToByteTooHighAllowed => "video-content-range-by-bytes-to-byte-too-high-allowed",
            TotalBytesTooHigh => "video-content-range-by-bytes-total-bytes-too-high",
            TotalBytesTooLow => "video-content-range-by-bytes-total-bytes-too-low",
            AlreadyUploaded => "video-source-already-uploaded",
            AlreadyDownloaded => "video-source-already-downloaded",
            AlreadyCopied => "video-source-already-copied",
            FileTooLarge => "uploaded-file-too-large",
            FileEmpty => "uploaded-file-empty",
        }
    }

    /// 409 for a part another request is still writing (retryable); 400 for everything else.
    pub fn status(self) -> u16 {
        if matches!(self, RangeError::PartInProgress | RangeError::RangeInProgress) { 409 } else { 400 }
    }

    pub fn title(self) -> &'static str {
        use RangeError::*;
        match self {
            Malformed => {
                "The Content-Range header is malformed: use \"bytes {from}-{to}/{total}\" or \"part {part}/{totalParts}\"."
            }
            StartedWithPart => "This upload was started by part: continue with \"part {part}/{totalParts}\" ranges.",
            StartedWithBytes => "This upload was started by bytes: continue with \"bytes {from}-{to}/{total}\" ranges.",
            AlreadyInitiated => {
                "A ranged upload was already initiated for this video: send the rest with a Content-Range header."
            }
            PartZero => "Part numbers start at 1.",
            TotalPartsZero => "The total number of parts must be at least 1.",
            DifferentTotalParts => "The total number of parts differs from the one given before.",
            PartAlreadySent => "This part has already been sent.",
            PartInProgress => "This part is being received by another request: retry once it ends.",
            PartTooHighTotal => "The part number is higher than the total number of parts.",
            PartTooHighAllowed => "The part number is higher than the maximum allowed (10000).",
            TotalPartsTooHigh => "The total number of parts is higher than the maximum allowed (10000).",
            TotalPartsTooLow => "The total number of parts is lower than a part already sent.",
            PartTooSmall => "The uploaded part is too small: every part but the last must be at least 5 MiB.",
            TotalBytesZero => "The total number of bytes must be greater than 0.",
            DifferentTotalBytes => "The total number of bytes differs from the one given before.",
            FromByteTooHigh => "The first byte of the range is after its last byte.",
            RangeMismatch => "The size of the uploaded file does not match the Content-Range.",
            RangeOverlap => "The range overlaps a range already sent.",
            RangeInProgress => "This range is being received by another request: retry once it ends.",
            RangeTooSmall => "The range is too small: every range but the last must be at least 5 MiB.",
            RangeTooLarge => "The range is too large.",
            ToByteTooHighTotal => "The last byte of the range is beyond the total number of bytes.",
            ToByteTooHighAllowed => "The last byte of the range is beyond the maximum allowed.",
            TotalBytesTooHigh => "The total number of bytes is higher than the maximum allowed.",
            TotalBytesTooLow => "The total number of bytes is lower than a range already sent.",
            AlreadyUploaded => "This video source has already been uploaded.",
            AlreadyDownloaded => "This video source has already been downloaded.",
            AlreadyCopied => "This video source has already been copied.",
            FileTooLarge => "The uploaded file is too large.",
            FileEmpty => "The uploaded file is empty.",
        }
    }
}

/// Parses `part n/T`, `part n/*` and `bytes f-t/T` (case-insensitive unit, spaces tolerated).
pub fn parse_content_range(header: &str) -> Result<ContentRange, RangeError> {
    let h = header.trim();
    let (unit, rest) = h.split_once(char::is_whitespace).ok_or(RangeError::Malformed)?;
    let (range, total) = rest.trim().split_once('/').ok_or(RangeError::Malformed)?;
    let num = |s: &str| -> Result<u64, RangeError> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 15 {
            return Err(RangeError::Malformed);
        }
        s.parse().map_err(|_| RangeError::Malformed)
    };
    let small = |v: u64| u32::try_from(v.min(u64::from(u32::MAX))).unwrap_or(u32::MAX);
    match unit.to_ascii_lowercase().as_str() {
        "part" => {
            let n = small(num(range)?);
            let total = match total.trim() {
                "*" => None,
                t => Some(small(num(t)?)),
            };
            Ok(ContentRange::Part { n, total })
        }
        "bytes" => {
            let (from, to) = range.split_once('-').ok_or(RangeError::Malformed)?;
            Ok(ContentRange::Bytes { from: num(from)?, to: num(to)?, total: num(total)? })
        }
        _ => Err(RangeError::Malformed),
    }
}

/// The refusals that depend only on the video, whatever the request.
pub fn check_source_open(kind: SourceKind, ingest: &Ingest) -> Result<(), RangeError> {
    match kind {
        SourceKind::Download => return Err(RangeError::AlreadyDownloaded),
        SourceKind::Clone => return Err(RangeError::AlreadyCopied),
        // A recording's source is its broadcast's, stored before the video exists.
        SourceKind::Live => return Err(RangeError::AlreadyUploaded),
        SourceKind::Upload => {}
    }
    if matches!(ingest.state, IngestState::Uploaded | IngestState::Assembling) {
        return Err(RangeError::AlreadyUploaded);
    }
    Ok(())
}

/// What the storage layer must do with an accepted chunk, and the checks left for when its size
/// is known (the body is streamed, so its length is learnt at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    pub idx: u32,
    pub range: Option<(u64, u64)>,
    /// Where the chunk starts in the assembled file, when already known.
    pub offset: Option<u64>,
    /// The chunk must have exactly this many bytes (bytes mode).
    pub exact_size: Option<u64>,
    /// The chunk must have at least this many bytes (every chunk but the last).
    pub min_size: u64,
    /// New totals to store on the video.
    pub parts_total: Option<u32>,
    pub filesize: Option<u64>,
    pub mode: UploadMode,
}

/// Decides whether a ranged chunk may be accepted, given what is stored. `live` tells whether a
/// chunk that is claimed but not done is still being written by a live request (then it counts as
/// sent) or was abandoned by a dead process (then it may be taken over).
pub fn plan_chunk(
    kind: SourceKind,
    ingest: &Ingest,
    chunks: &[Chunk],
    range: ContentRange,
    live: impl Fn(&Chunk) -> bool,
) -> Result<ChunkPlan, RangeError> {
    check_source_open(kind, ingest)?;
    let present: Vec<&Chunk> = chunks.iter().filter(|c| c.done() || live(c)).collect();
    match range {
        ContentRange::Part { n, total } => {
            match ingest.mode {
                UploadMode::Bytes => return Err(RangeError::StartedWithBytes),
                UploadMode::Whole => return Err(RangeError::AlreadyInitiated),
                _ => {}
            }
            if n == 0 {
                return Err(RangeError::PartZero);
            }
            if total == Some(0) {
                return Err(RangeError::TotalPartsZero);
            }
            if n > MAX_PARTS {
                return Err(RangeError::PartTooHighAllowed);
            }
            if let Some(t) = total {
                if t > MAX_PARTS {
                    return Err(RangeError::TotalPartsTooHigh);
                }
                if let Some(known) = ingest.parts_total
                    && known != t
                {
                    return Err(RangeError::DifferentTotalParts);
                }
                if n > t {
                    return Err(RangeError::PartTooHighTotal);
                }
                if present.iter().any(|c| c.idx > t) {
                    return Err(RangeError::TotalPartsTooLow);
                }
            } else if let Some(known) = ingest.parts_total
                && n > known
            {
                return Err(RangeError::PartTooHighTotal);
            }
            if let Some(c) = present.iter().find(|c| c.idx == n) {
                return Err(if c.done() { RangeError::PartAlreadySent } else { RangeError::PartInProgress });
            }
            let total = total.or(ingest.parts_total);
            let is_last = total == Some(n);
            // The chunk's offset is known when every earlier part is done.
            let mut offset = Some(0u64);
            for p in 1..n {
                offset = match (offset, chunks.iter().find(|c| c.idx == p).and_then(|c| c.size)) {
                    (Some(o), Some(s)) => Some(o + s),
                    _ => None,
                };
            }
            Ok(ChunkPlan {
                idx: n,
                range: None,
                offset,
                exact_size: None,
                min_size: if is_last { 1 } else { MIN_CHUNK },
                parts_total: total,
                filesize: None,
                mode: UploadMode::Part,
            })
        }
        ContentRange::Bytes { from, to, total } => {
            match ingest.mode {
                UploadMode::Part => return Err(RangeError::StartedWithPart),
                UploadMode::Whole => return Err(RangeError::AlreadyInitiated),
                _ => {}
            }
            if total == 0 {
                return Err(RangeError::TotalBytesZero);
            }
            if total > MAX_TOTAL_BYTES {
                return Err(RangeError::TotalBytesTooHigh);
            }
            if let Some(known) = ingest.filesize
                && known != total
            {
                return Err(RangeError::DifferentTotalBytes);
            }
            if from > to {
                return Err(RangeError::FromByteTooHigh);
            }
            if to >= MAX_TOTAL_BYTES {
                return Err(RangeError::ToByteTooHighAllowed);
            }
            if to >= total {
                return Err(RangeError::ToByteTooHighTotal);
            }
            let mut highest = 0;
            for c in &present {
                let Some((f, t)) = c.range else { continue };
                if (f, t) == (from, to) && !c.done() {
                    return Err(RangeError::RangeInProgress);
                }
                if from <= t && f <= to {
                    return Err(RangeError::RangeOverlap);
                }
                highest = highest.max(t + 1);
            }
            if highest > total {
                return Err(RangeError::TotalBytesTooLow);
            }
            let size = to - from + 1;
            let is_last = to + 1 == total;
            if !is_last && size < MIN_CHUNK {
                return Err(RangeError::RangeTooSmall);
            }
            Ok(ChunkPlan {
                idx: (from / MIN_CHUNK) as u32 + 1,
                range: Some((from, to)),
                offset: Some(from),
                exact_size: Some(size),
                min_size: 1,
                parts_total: None,
                filesize: Some(total),
                mode: UploadMode::Bytes,
            })
        }
    }
}

/// Checks a streamed chunk's final size against its plan.
pub fn check_chunk_size(plan: &ChunkPlan, size: u64) -> Result<(), RangeError> {
    if size == 0 {
        return Err(RangeError::FileEmpty);
    }
    if let Some(exact) = plan.exact_size
        && exact != size
    {
        return Err(RangeError::RangeMismatch);
    }
    if size < plan.min_size {
        return Err(match plan.mode {
            UploadMode::Bytes => RangeError::RangeTooSmall,
            _ => RangeError::PartTooSmall,
        });
    }
    Ok(())
}

/// Whether the done chunks make up the whole source, and its size if so.
pub fn completed_size(ingest: &Ingest, chunks: &[Chunk]) -> Option<u64> {
    let done: Vec<&Chunk> = chunks.iter().filter(|c| c.done()).collect();
    let sum: u64 = done.iter().filter_map(|c| c.size).sum();
    match ingest.mode {
        UploadMode::Part => {
            let total = ingest.parts_total?;
            (done.len() as u32 == total && (1..=total).all(|p| done.iter().any(|c| c.idx == p))).then_some(sum)
        }
        // Ranges never overlap, so covering every byte is the same as summing to the total.
        UploadMode::Bytes => (Some(sum) == ingest.filesize).then_some(sum),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(idx: u32, size: Option<u64>, range: Option<(u64, u64)>) -> Chunk {
        Chunk { idx, range, size, receipt: None, claimed_by: None, claimed_at: 0 }
    }

    fn ingest(mode: UploadMode) -> Ingest {
        Ingest { mode, ..Ingest::empty() }
    }

    fn plan(i: &Ingest, c: &[Chunk], r: &str) -> Result<ChunkPlan, RangeError> {
        plan_chunk(SourceKind::Upload, i, c, parse_content_range(r)?, |_| true)
    }

    #[test]
    fn parses_both_modes() {
        assert_eq!(parse_content_range("part 2/5"), Ok(ContentRange::Part { n: 2, total: Some(5) }));
        assert_eq!(parse_content_range("part 3/*"), Ok(ContentRange::Part { n: 3, total: None }));
        assert_eq!(parse_content_range("bytes 0-99/1000"), Ok(ContentRange::Bytes { from: 0, to: 99, total: 1000 }));
        for bad in ["", "part", "part 1", "part a/2", "bytes 1/2", "chunk 1/2", "bytes -1-2/3", "part 1/-2"] {
            assert_eq!(parse_content_range(bad), Err(RangeError::Malformed), "{bad}");
        }
    }

    #[test]
    fn part_mode_catalogue() {
        let none = ingest(UploadMode::None);
        assert_eq!(plan(&none, &[], "part 0/3"), Err(RangeError::PartZero));
        assert_eq!(plan(&none, &[], "part 1/0"), Err(RangeError::TotalPartsZero));
        assert_eq!(plan(&none, &[], "part 4/3"), Err(RangeError::PartTooHighTotal));
        assert_eq!(plan(&none, &[], "part 10001/*"), Err(RangeError::PartTooHighAllowed));
        assert_eq!(plan(&none, &[], "part 1/10001"), Err(RangeError::TotalPartsTooHigh));
        let started = Ingest { parts_total: Some(3), ..ingest(UploadMode::Part) };
        let sent = [chunk(1, Some(MIN_CHUNK), None)];
        assert_eq!(plan(&started, &sent, "part 1/3"), Err(RangeError::PartAlreadySent));
        assert_eq!(plan(&started, &sent, "part 2/4"), Err(RangeError::DifferentTotalParts));
        let open = ingest(UploadMode::Part);
        let sent3 = [chunk(3, Some(MIN_CHUNK), None)];
        assert_eq!(plan(&open, &sent3, "part 2/2"), Err(RangeError::TotalPartsTooLow));
        assert_eq!(plan(&started, &sent, "bytes 0-9/10"), Err(RangeError::StartedWithPart));
        let p = plan(&started, &sent, "part 2/3").unwrap();
        assert_eq!((p.offset, p.min_size), (Some(MIN_CHUNK), MIN_CHUNK));
        let last = plan(&started, &sent, "part 3/3").unwrap();
        assert_eq!((last.offset, last.min_size), (None, 1));
    }

    #[test]
    fn abandoned_claims_can_be_taken_over() {
        let started = Ingest { parts_total: Some(2), ..ingest(UploadMode::Part) };
        let claimed = [chunk(1, None, None)];
        let r = parse_content_range("part 1/2").unwrap();
        assert!(plan_chunk(SourceKind::Upload, &started, &claimed, r, |_| false).is_ok());
        assert_eq!(plan_chunk(SourceKind::Upload, &started, &claimed, r, |_| true), Err(RangeError::PartInProgress));
        // Bytes mode: the same range claimed by a live request is in progress (409, retry), by a
        // dead one free to take; another range overlapping it is still an overlap.
        let m = MIN_CHUNK;
        let started = Ingest { filesize: Some(3 * m), ..ingest(UploadMode::Bytes) };
        let claimed = [chunk(2, None, Some((m, 2 * m - 1)))];
        let same = parse_content_range(&format!("bytes {m}-{}/{}", 2 * m - 1, 3 * m)).unwrap();
        assert_eq!(
            plan_chunk(SourceKind::Upload, &started, &claimed, same, |_| true),
            Err(RangeError::RangeInProgress)
        );
        assert_eq!(RangeError::RangeInProgress.status(), 409);
        assert!(plan_chunk(SourceKind::Upload, &started, &claimed, same, |_| false).is_ok());
        let shifted = parse_content_range(&format!("bytes {}-{}/{}", m + 1, 2 * m, 3 * m)).unwrap();
        assert_eq!(
            plan_chunk(SourceKind::Upload, &started, &claimed, shifted, |_| true),
            Err(RangeError::RangeOverlap)
        );
    }

    #[test]
    fn bytes_mode_catalogue() {
        let none = ingest(UploadMode::None);
        let m = MIN_CHUNK;
        assert_eq!(plan(&none, &[], "bytes 0-9/0"), Err(RangeError::TotalBytesZero));
        assert_eq!(plan(&none, &[], "bytes 9-0/10"), Err(RangeError::FromByteTooHigh));
        assert_eq!(plan(&none, &[], "bytes 0-10/10"), Err(RangeError::ToByteTooHighTotal));
        assert_eq!(plan(&none, &[], "bytes 0-9/100000000000"), Err(RangeError::TotalBytesTooHigh));
        assert_eq!(plan(&none, &[], "bytes 0-9/100"), Err(RangeError::RangeTooSmall));
        let started = Ingest { filesize: Some(3 * m), ..ingest(UploadMode::Bytes) };
        let sent = [chunk(1, Some(m), Some((0, m - 1)))];
        assert_eq!(plan(&started, &sent, &format!("bytes 10-{}/{}", m + 10, 3 * m)), Err(RangeError::RangeOverlap));
        assert_eq!(
            plan(&started, &sent, &format!("bytes {m}-{}/{}", 2 * m - 1, 4 * m)),
            Err(RangeError::DifferentTotalBytes)
        );
        assert_eq!(plan(&started, &sent, "part 1/2"), Err(RangeError::StartedWithBytes));
        let p = plan(&started, &sent, &format!("bytes {}-{}/{}", 2 * m, 3 * m - 1, 3 * m)).unwrap();
        assert_eq!((p.idx, p.offset, p.exact_size), (3, Some(2 * m), Some(m)));
        assert_eq!(check_chunk_size(&p, m - 1), Err(RangeError::RangeMismatch));
        let big = Ingest { filesize: Some(3 * m), ..ingest(UploadMode::Bytes) };
        let far = [chunk(3, Some(m), Some((2 * m, 3 * m - 1)))];
        assert_eq!(plan(&big, &far, "bytes 0-9/3"), Err(RangeError::DifferentTotalBytes));
    }

    #[test]
    fn source_rules() {
        let done = Ingest { state: IngestState::Uploaded, ..ingest(UploadMode::Part) };
        assert_eq!(plan(&done, &[], "part 1/1"), Err(RangeError::AlreadyUploaded));
        let r = parse_content_range("part 1/1").unwrap();
        assert_eq!(
            plan_chunk(SourceKind::Download, &ingest(UploadMode::None), &[], r, |_| true),
            Err(RangeError::AlreadyDownloaded)
        );
        let whole = ingest(UploadMode::Whole);
        assert_eq!(plan(&whole, &[], "part 1/1"), Err(RangeError::AlreadyInitiated));
    }

    #[test]
    fn completion() {
        let m = MIN_CHUNK;
        let i = Ingest { parts_total: Some(2), ..ingest(UploadMode::Part) };
        let one = [chunk(1, Some(m), None)];
        assert_eq!(completed_size(&i, &one), None);
        let two = [chunk(1, Some(m), None), chunk(2, Some(7), None)];
        assert_eq!(completed_size(&i, &two), Some(m + 7));
        let b = Ingest { filesize: Some(m + 7), ..ingest(UploadMode::Bytes) };
        let ranges = [chunk(2, Some(7), Some((m, m + 6))), chunk(1, Some(m), Some((0, m - 1)))];
        assert_eq!(completed_size(&b, &ranges), Some(m + 7));
    }
}

/// Property tests of the `Content-Range` parser: headers are built from its grammar (a unit in
/// any case, numbers with spaces around them, `*` totals) together with what each means, so the
/// parser must agree with that model on every one, valid or not; and arbitrary text never
/// panics it.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// A number as a client might write it, and its value when the parser must take it (at most
    /// 15 digits, nothing else).
    fn number() -> impl Strategy<Value = (String, Option<u64>)> {
        prop_oneof![
            4 => (0u64..=999_999_999_999_999).prop_map(|n| (n.to_string(), Some(n))),
            1 => (0u64..1000, 1usize..4).prop_map(|(n, z)| (format!("{}{n}", "0".repeat(z)), Some(n))),
            1 => "[1-9][0-9]{15,19}".prop_map(|s| (s, None)),
            1 => prop::sample::select(vec!["", "-1", "+1", "1a", "x", "1.5", "١"]).prop_map(|s| (s.to_string(), None)),
        ]
    }

    fn spaces() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", " ", "  ", "\t"]).prop_map(str::to_string)
    }

    /// The unit as sent (random case) and which one it is.
    fn unit() -> impl Strategy<Value = (String, Option<&'static str>)> {
        (prop::sample::select(vec!["part", "bytes", "pages", "byte"]), any::<u8>()).prop_map(|(u, mask)| {
            let sent: String = u
                .chars()
                .enumerate()
                .map(|(i, c)| if mask >> (i % 8) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .collect();
            (sent, ["part", "bytes"].contains(&u).then_some(u))
        })
    }

    fn small(v: u64) -> u32 {
        u32::try_from(v).unwrap_or(u32::MAX)
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(h in ".{0,40}") {
            let _ = parse_content_range(&h);
        }

        #[test]
        fn never_panics_on_near_misses(h in "[ \tpPaArRtTbByYeEsS0-9/*-]{0,30}") {
            let _ = parse_content_range(&h);
        }

        #[test]
        fn agrees_with_the_grammar(
            (unit, which) in unit(),
            (a, av) in number(),
            (b, bv) in number(),
            (total, tv) in number(),
            star in any::<bool>(),
            s in prop::collection::vec(spaces(), 6),
        ) {
            let lead = if s[1].is_empty() { " " } else { s[1].as_str() };
            let (header, expected) = match which {
                Some("part") => {
                    let (t, tv) = if star { ("*".to_string(), Some(None)) } else { (total.clone(), tv.map(Some)) };
                    let h = format!("{}{unit}{lead}{}{a}{}/{}{t}{}", s[0], s[2], s[3], s[4], s[5]);
                    let want = match (av, tv) {
                        (Some(n), Some(total)) => Ok(ContentRange::Part { n: small(n), total: total.map(small) }),
                        _ => Err(RangeError::Malformed),
                    };
                    (h, want)
                }
                Some(_) => {
                    let h = format!("{}{unit}{lead}{a}{}-{}{b}/{total}{}", s[0], s[2], s[3], s[5]);
                    let want = match (av, bv, tv) {
                        (Some(from), Some(to), Some(total)) => Ok(ContentRange::Bytes { from, to, total }),
                        _ => Err(RangeError::Malformed),
                    };
                    (h, want)
                }
                None => (format!("{unit} {a}-{b}/{total}"), Err(RangeError::Malformed)),
            };
            prop_assert_eq!(parse_content_range(&header), expected, "header {:?}", header);
        }

        /// What a parsed header says, written back the canonical way, parses to the same.
        #[test]
        fn round_trips(n in 0u32..=u32::MAX, total in proptest::option::of(0u32..=u32::MAX), from in 0u64..1u64 << 45, len in 0u64..1u64 << 45) {
            let part = ContentRange::Part { n, total };
            let t = total.map_or("*".to_string(), |t| t.to_string());
            prop_assert_eq!(parse_content_range(&format!("part {n}/{t}")), Ok(part));
            let bytes = ContentRange::Bytes { from, to: from + len, total: from + len + 1 };
            prop_assert_eq!(parse_content_range(&format!("bytes {from}-{}/{}", from + len, from + len + 1)), Ok(bytes));
        }
    }
}
