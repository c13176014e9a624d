//! WebVTT files of captions and chapters, checked before they are stored. api.video stores any
//! file (contract §10 says a malformed one still gets 200); Vidi serves these files to other
//! people's browsers and lists them in HLS masters, so it keeps only what the WebVTT standard
//! (W3C, "WebVTT: The Web Video Text Tracks Format") calls a valid file, and less:
//!
//! - UTF-8 (a leading BOM allowed), no NUL, at most [`MAX_BYTES`];
//! - the `WEBVTT` signature, then blocks separated by blank lines: cues (an optional identifier,
//!   a timing line `hh:mm:ss.ttt --> hh:mm:ss.ttt` with known settings, then the text), and
//!   `NOTE`, `STYLE` and `REGION` blocks (the last two before the first cue only);
//! - every cue ends after it starts, and its text holds only WebVTT's own cue tags (`c i b u
//!   ruby rt v lang` and timestamps): a browser renders cues as text, never as HTML, and a file
//!   with `<script>` or `<img onerror>` in it is refused rather than kept for some other reader;
//! - a `STYLE` block may not fetch anything (`url(`, `@import`), so a caption file cannot make
//!   its viewers' browsers call a third party.
//!
//! The file is kept byte for byte once it passes; the parsed cues serve the player's chapter
//! list.

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

/// Checks a WebVTT file and returns its cues.
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
    // The header runs to the first blank line.
    let mut i = 1;
    while i < lines.len() && !lines[i].is_empty() {
        if lines[i].contains("-->") {
            return Err(at(i + 1, "a blank line must separate the \"WEBVTT\" header from the first cue."));
        }
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
        block(&lines[start..i], start + 1, &mut cues)?;
    }
    Ok(cues)
}

fn keyword(line: &str, word: &str) -> bool {
    line == word || line.strip_prefix(word).is_some_and(|r| r.starts_with([' ', '\t']))
}

/// One block: lines `first_line..` of the file, none blank.
fn block(lines: &[&str], first_line: usize, cues: &mut Vec<Cue>) -> Result<(), VttError> {
    let head = lines[0];
    if keyword(head, "NOTE") {
        if let Some(n) = lines.iter().position(|l| l.contains("-->")) {
            return Err(at(first_line + n, "a NOTE block may not contain \"-->\"."));
        }
        return Ok(());
    }
    for kind in ["STYLE", "REGION"] {
        if keyword(head, kind) {
            if !cues.is_empty() {
                return Err(at(first_line, format!("a {kind} block must come before the first cue.")));
            }
            if let Some(n) = lines.iter().position(|l| l.contains("-->")) {
                return Err(at(first_line + n, format!("a {kind} block may not contain \"-->\".")));
            }
            let lower = lines.join("\n").to_ascii_lowercase();
            if kind == "STYLE" && (lower.contains("url(") || lower.contains("@import") || lower.contains('\\')) {
                return Err(at(first_line, "a STYLE block may not load anything (url(), @import) or use escapes."));
            }
            return Ok(());
        }
    }
    // A cue: an optional identifier, then its timing line.
    let (timing_at, timing) = if head.contains("-->") {
        (0, head)
    } else {
        match lines.get(1) {
            Some(l) if l.contains("-->") => (1, *l),
            _ => {
                return Err(at(
                    first_line,
                    "expected a cue timing line such as \"00:00:01.000 --> 00:00:04.000\" (blocks are separated by blank lines).",
                ));
            }
        }
    };
    let line_no = first_line + timing_at;
    let (start, end) = timing_line(timing).map_err(|e| at(line_no, e))?;
    if end <= start {
        return Err(at(line_no, "a cue must end after it starts."));
    }
    let mut text = Vec::new();
    for (n, l) in lines.iter().enumerate().skip(timing_at + 1) {
        if l.contains("-->") {
            return Err(at(first_line + n, "cue text may not contain \"-->\" (is a blank line missing?)."));
        }
        text.push(cue_text(l).map_err(|e| at(first_line + n, e))?);
    }
    cues.push(Cue { start, end, text: text.join("\n") });
    Ok(())
}

fn timing_line(line: &str) -> Result<(f64, f64), String> {
    let (left, right) = line.split_once("-->").expect("checked by the caller");
    let start = timestamp(left.trim_matches([' ', '\t'])).ok_or_else(|| bad_time(left))?;
    let mut rest = right.trim_start_matches([' ', '\t']).split([' ', '\t']).filter(|s| !s.is_empty());
    let end_raw = rest.next().unwrap_or("");
    let end = timestamp(end_raw).ok_or_else(|| bad_time(end_raw))?;
    for setting in rest {
        match setting.split_once(':') {
            Some((n, v)) if CUE_SETTINGS.contains(&n) && !v.is_empty() => {}
            _ => return Err(format!("\"{}\" is not a cue setting.", printable(setting))),
        }
    }
    Ok((start, end))
}

fn bad_time(s: &str) -> String {
    format!("\"{}\" is not a WebVTT timestamp (hh:mm:ss.ttt or mm:ss.ttt).", printable(s.trim()))
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

/// Checks one line of cue text and returns it without tags, with WebVTT's character references
/// decoded.
fn cue_text(line: &str) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('>').ok_or("a \"<\" starts a tag that never ends (write \"&lt;\" for a \"<\").")?;
        let tag = &after[..close];
        let name = tag.strip_prefix('/').unwrap_or(tag);
        let name = name.split(['.', ' ', '\t']).next().unwrap_or("");
        if timestamp(tag).is_none() && !CUE_TAGS.contains(&name) {
            return Err(format!("<{}> is not a WebVTT cue tag (only c, i, b, u, ruby, rt, v, lang).", printable(tag)));
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

    #[test]
    fn hostile_or_malformed_files_are_refused() {
        let bad: &[(&[u8], &str)] = &[
            (b"", "must start"),
            (b"WEBVTTX\n", "must start"),
            (b"1\n00:00:01.000 --> 00:00:02.000\nhi", "must start"),
            (b"WEBVTT\n00:00:01.000 --> 00:00:02.000\nhi", "blank line"),
            (b"WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi", "timing line"),
            (b"WEBVTT\n\njust text\n", "timing line"),
            (b"WEBVTT\n\n00:00:01 --> 00:00:02.000\nhi", "timestamp"),
            (b"WEBVTT\n\n00:00:61.000 --> 00:01:02.000\nhi", "timestamp"),
            (b"WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nhi", "end after"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000 onload:x\nhi", "cue setting"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script>", "<script>"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<img src=x onerror=alert(1)>", "not a WebVTT cue tag"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na < b", "never ends"),
            (b"WEBVTT\n\nSTYLE\n::cue { background: url(https://t.example/p) }\n", "STYLE"),
            (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\nSTYLE\n::cue {}\n", "before the first cue"),
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
