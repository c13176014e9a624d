//! WebVTT files of captions and chapters, checked before they are stored. api.video stores any
//! file (contract §10: a malformed one still gets 200), and apps migrating to Vidi may hold such
//! files, so a block the WebVTT standard (W3C, "WebVTT: The Web Video Text Tracks Format") calls
//! malformed is accepted and skipped, as browsers skip it: a cue whose timing line is wrong, a
//! cue that ends before it starts, an unknown cue setting, a `STYLE` block after the cues.
//! What is refused is what is not WebVTT at all, or could hurt the people the file is served to:
//!
//! - not UTF-8 (a leading BOM allowed), a NUL, over [`MAX_BYTES`], no `WEBVTT` signature;
//! - cue text with tags other than WebVTT's own (`c i b u ruby rt v lang` and timestamps): a
//!   browser renders cues as text, never as HTML, but a file with `<script>` or
//!   `<img onerror>` in it is refused rather than kept for some other reader;
//! - a `STYLE` block that fetches anything (`url(`, `@import`, escapes), so a caption file
//!   cannot make its viewers' browsers call a third party.
//!
//! The file is kept byte for byte once it passes; the well-formed cues serve the player's
//! chapter list.

/// The largest caption or chapter file (a feature film's subtitles are a few hundred KiB).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// One cue: its times in seconds and its text without tags.
#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Why a file was refused, with its line (1-based) when there is one: the problem body's `detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VttError(pub String);

impl std::fmt::Display for VttError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn at(line: usize, what: impl std::fmt::Display) -> VttError {
    VttError(format!("Line {line}: {what}"))
}

const CUE_TAGS: [&str; 8] = ["c", "i", "b", "u", "ruby", "rt", "v", "lang"];
const CUE_SETTINGS: [&str; 6] = ["vertical", "line", "position", "size", "align", "region"];

/// Why a block is not kept among the cues.
enum Fault {
    /// Refuses the whole file.
    Hostile(VttError),
    /// The block is skipped, as a browser skips it.
    Malformed,
}

/// Checks a WebVTT file and returns its well-formed cues.
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, VttError> {
    if bytes.len() > MAX_BYTES {
        return Err(VttError(format!("A WebVTT file may be at most {MAX_BYTES} bytes.")));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| VttError(format!("The file is not UTF-8 text: {e}.")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\0') {
        return Err(VttError("The file holds a NUL character.".into()));
    }
    // Lines end in CRLF, LF or CR (WebVTT allows all three).
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let first = lines.first().copied().unwrap_or("");
    let signed = first == "WEBVTT" || first.starts_with("WEBVTT ") || first.starts_with("WEBVTT\t");
    if !signed {
        return Err(VttError("A WebVTT file must start with the line \"WEBVTT\".".into()));
    }
    // The header runs to the first blank line (or, in a malformed file, to the first timing
    // line).
    let mut i = 1;
    while i < lines.len() && !lines[i].is_empty() && !lines[i].contains("-->") {
        i += 1;
    }
    let mut cues = Vec::new();
    while i < lines.len() {
        if lines[i].is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !lines[i].is_empty() {
            i += 1;
        }
        match block(&lines[start..i], start + 1, &mut cues) {
            Ok(()) | Err(Fault::Malformed) => {}
            Err(Fault::Hostile(e)) => return Err(e),
        }
    }
    Ok(cues)
}

fn keyword(line: &str, word: &str) -> bool {
    line == word || line.strip_prefix(word).is_some_and(|r| r.starts_with([' ', '\t']))
}

/// One block: lines `first_line..` of the file, none blank.
fn block(lines: &[&str], first_line: usize, cues: &mut Vec<Cue>) -> Result<(), Fault> {
    let head = lines[0];
    if keyword(head, "NOTE") {
        return Ok(());
    }
    for kind in ["STYLE", "REGION"] {
        if keyword(head, kind) {
            // Checked wherever the block is: a browser may still read one that breaks the rules.
            let lower = lines.join("\n").to_ascii_lowercase();
            if kind == "STYLE" && (lower.contains("url(") || lower.contains("@import") || lower.contains('\\')) {
                let e = at(first_line, "a STYLE block may not load anything (url(), @import) or use escapes.");
                return Err(Fault::Hostile(e));
            }
            return Ok(());
        }
    }
    // Every line but a timing line is cue text to a reader, whatever the block's shape: its
    // tags are checked before anything about the block may be skipped.
    let mut text = Vec::new();
    for (n, l) in lines.iter().enumerate().filter(|(_, l)| !l.contains("-->")) {
        match cue_text(l) {
            Ok(t) => text.push((n, t)),
            Err(TextFault::Tag(e)) => return Err(Fault::Hostile(at(first_line + n, e))),
            Err(TextFault::Unclosed) => return Err(Fault::Malformed),
        }
    }
    // A cue: an optional identifier, then its timing line, then text without another one.
    let timing_at = if head.contains("-->") { 0 } else { 1 };
    let timing = lines.get(timing_at).filter(|l| l.contains("-->")).ok_or(Fault::Malformed)?;
    if lines.iter().skip(timing_at + 1).any(|l| l.contains("-->")) {
        return Err(Fault::Malformed);
    }
    let (start, end) = timing_line(timing).ok_or(Fault::Malformed)?;
    if end <= start {
        return Err(Fault::Malformed);
    }
    let text: Vec<String> = text.into_iter().filter(|(n, _)| *n > timing_at).map(|(_, t)| t).collect();
    cues.push(Cue { start, end, text: text.join("\n") });
    Ok(())
}

/// The start and end of a timing line, `None` when it is malformed (a bad timestamp, an unknown
/// cue setting).
fn timing_line(line: &str) -> Option<(f64, f64)> {
    let (left, right) = line.split_once("-->")?;
    let start = timestamp(left.trim_matches([' ', '\t']))?;
    let mut rest = right.trim_start_matches([' ', '\t']).split([' ', '\t']).filter(|s| !s.is_empty());
    let end = timestamp(rest.next().unwrap_or(""))?;
    let known =
        |setting: &str| setting.split_once(':').is_some_and(|(n, v)| CUE_SETTINGS.contains(&n) && !v.is_empty());
    rest.all(known).then_some((start, end))
}

/// Echoes user text in an error message safely: bounded and without control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// `hh:mm:ss.ttt` (hours: two digits or more) or `mm:ss.ttt`, in seconds.
fn timestamp(s: &str) -> Option<f64> {
    let (clock, millis) = s.split_once('.')?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m, s] if h.len() >= 2 && h.len() <= 6 => (*h, *m, *s),
        [m, s] => ("0", *m, *s),
        _ => return None,
    };
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit()) && !x.is_empty();
    if !digits(h) || m.len() != 2 || sec.len() != 2 || !digits(m) || !digits(sec) {
        return None;
    }
    let (h, m, sec, ms): (u64, u64, u64, u64) =
        (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?, millis.parse().ok()?);
    if m > 59 || sec > 59 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) as f64 + ms as f64 / 1000.0)
}

enum TextFault {
    /// A tag that is not WebVTT's (HTML, script): the file is refused.
    Tag(String),
    /// A `<` that never closes: the cue is malformed.
    Unclosed,
}

/// Checks one line of cue text and returns it without tags, with WebVTT's character references
/// decoded.
fn cue_text(line: &str) -> Result<String, TextFault> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('>').ok_or(TextFault::Unclosed)?;
        let tag = &after[..close];
        let name = tag.strip_prefix('/').unwrap_or(tag);
        let name = name.split(['.', ' ', '\t']).next().unwrap_or("");
        if timestamp(tag).is_none() && !CUE_TAGS.contains(&name) {
            let e = format!("<{}> is not a WebVTT cue tag (only c, i, b, u, ruby, rt, v, lang).", printable(tag));
            return Err(TextFault::Tag(e));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(decode(&out))
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&lrm;", "\u{200e}")
        .replace("&rlm;", "\u{200f}")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_files_give_their_cues() {
        let f = "\u{feff}WEBVTT - a title\r\nKind: captions\r\n\r\nNOTE a comment\r\nspanning lines\r\n\r\n\
                 STYLE\r\n::cue { color: yellow }\r\n\r\n1\r\n00:00:01.000 --> 00:00:04.500 align:start line:0\r\n\
                 <v Bob>Hello</v> &amp; <i>welcome</i>\r\n\r\n01:02.250 --> 01:03.000\r\nsecond <00:01:02.500>line\r\n";
        let cues = parse(f.as_bytes()).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0], Cue { start: 1.0, end: 4.5, text: "Hello & welcome".into() });
        assert_eq!((cues[1].start, cues[1].end), (62.25, 63.0));
        assert!(parse(b"WEBVTT\n").unwrap().is_empty());
        assert_eq!(parse(b"WEBVTT\r\r00:00.000 --> 00:01.000\rx").unwrap().len(), 1);
        assert_eq!(parse(b"WEBVTT\n\n100:00:00.000 --> 100:00:01.000\nlong").unwrap()[0].start, 360000.0);
    }

    /// Malformed blocks are accepted and skipped (api.video stores such files; browsers skip
    /// such cues): only the well-formed cue is kept.
    #[test]
    fn malformed_blocks_are_skipped() {
        let good = "00:00:05.000 --> 00:00:06.000\nkept";
        let malformed = [
            "WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi",
            "WEBVTT\n\njust text",
            "WEBVTT\n\n00:00:01 --> 00:00:02.000\nhi",
            "WEBVTT\n\n00:00:61.000 --> 00:01:02.000\nhi",
            "WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nends before it starts",
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000 onload:x\nunknown setting",
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na < b",
            "WEBVTT\n\nNOTE with --> inside",
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n00:00:02.000 --> 00:00:03.000",
        ];
        for f in malformed {
            let cues = parse(format!("{f}\n\n{good}\n").as_bytes()).unwrap_or_else(|e| panic!("{f:?}: {e}"));
            assert_eq!(cues.len(), 1, "{f:?}");
            assert_eq!(cues[0].text, "kept");
        }
        // A timing line in the header starts the first cue, as in browsers' parsers.
        assert_eq!(parse(b"WEBVTT\n00:00:01.000 --> 00:00:02.000\nno blank line").unwrap()[0].text, "no blank line");
        // A STYLE block after the cues is out of place, but harmless.
        assert_eq!(parse(format!("WEBVTT\n\n{good}\n\nSTYLE\n::cue {{}}\n").as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn hostile_or_foreign_files_are_refused() {
        let bad: &[(&[u8], &str)] = &[
            (b"", "must start"),
            (b"WEBVTTX\n", "must start"),
            (b"1\n00:00:01.000 --> 00:00:02.000\nhi", "must start"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script>", "<script>"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<img src=x onerror=alert(1)>", "not a WebVTT cue tag"),
            // Hidden in a block that is malformed anyway: still refused.
            (b"WEBVTT\n\n00:00:01 --> x\n<script>alert(1)</script>", "<script>"),
            (b"WEBVTT\n\nSTYLE\n::cue { background: url(https://t.example/p) }\n", "STYLE"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\nSTYLE\n@import 'x.css';\n", "STYLE"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\x00", "NUL"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\xff\xfe", "UTF-8"),
        ];
        for (file, why) in bad {
            let e = parse(file).expect_err(why);
            assert!(e.0.contains(why), "{why}: {}", e.0);
        }
        let big = format!("WEBVTT\n\n{}", "x".repeat(MAX_BYTES));
        assert!(parse(big.as_bytes()).unwrap_err().0.contains("at most"));
    }
}

/// Property tests of WebVTT handling: any bytes are answered without a panic; files written
/// from generated cues (identifiers, NOTE blocks, both clock forms, CRLF or LF, WebVTT's own
/// tags) give back exactly those cues; and one foreign tag anywhere in a cue refuses the file.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    struct GenCue {
        id: Option<String>,
        start_ms: u64,
        len_ms: u64,
        lines: Vec<(String, bool)>,
        short_clock: bool,
    }

    fn clock(ms: u64, short: bool) -> String {
        let (h, m, s, t) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        if short && h == 0 { format!("{m:02}:{s:02}.{t:03}") } else { format!("{h:02}:{m:02}:{s:02}.{t:03}") }
    }

    fn seconds(ms: u64) -> f64 {
        (ms / 1000) as f64 + (ms % 1000) as f64 / 1000.0
    }

    fn cue() -> impl Strategy<Value = GenCue> {
        (
            proptest::option::of("[a-z0-9]{1,8}"),
            0u64..400_000_000,
            1u64..100_000,
            prop::collection::vec(("[a-zA-Z][a-zA-Z ,.!?']{0,20}", any::<bool>()), 1..3),
            any::<bool>(),
        )
            .prop_map(|(id, start_ms, len_ms, lines, short_clock)| GenCue {
                id,
                start_ms,
                len_ms,
                lines,
                short_clock,
            })
    }

    /// The file, and the cues it must give.
    fn file(cues: &[GenCue], crlf: bool, notes: bool) -> (String, Vec<Cue>) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut out = format!("WEBVTT{nl}");
        let mut want = Vec::new();
        for c in cues {
            out.push_str(nl);
            if notes {
                out.push_str(&format!("NOTE a comment{nl}{nl}"));
            }
            if let Some(id) = &c.id {
                out.push_str(&format!("{id}{nl}"));
            }
            let end = c.start_ms + c.len_ms;
            out.push_str(&format!("{} --> {}{nl}", clock(c.start_ms, c.short_clock), clock(end, c.short_clock)));
            let mut text = Vec::new();
            for (line, italic) in &c.lines {
                out.push_str(&if *italic { format!("<i>{line}</i>{nl}") } else { format!("{line}{nl}") });
                text.push(line.clone());
            }
            want.push(Cue { start: seconds(c.start_ms), end: seconds(end), text: text.join("\n") });
        }
        (out, want)
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_near_misses(s in "(WEBVTT|NOTE|STYLE|-->|<|>|/|i|v|:|\\.|0|9|\n|\r| |&amp;){0,60}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn written_cues_read_back(cues in prop::collection::vec(cue(), 0..6), crlf in any::<bool>(), notes in any::<bool>()) {
            let (text, want) = file(&cues, crlf, notes);
            prop_assert_eq!(parse(text.as_bytes()), Ok(want), "{}", text);
        }

        #[test]
        fn a_foreign_tag_refuses_the_file(
            cues in prop::collection::vec(cue(), 1..4),
            which in any::<prop::sample::Index>(),
            tag in prop::sample::select(vec!["script", "img src=x onerror=alert(1)", "a href=x", "style", "div"]),
        ) {
            let mut cues = cues;
            let i = which.index(cues.len());
            cues[i].lines[0].0 = format!("<{tag}>{}", cues[i].lines[0].0);
            let (text, _) = file(&cues, false, false);
            prop_assert!(parse(text.as_bytes()).is_err(), "{}", text);
        }
    }
}
