//! Player themes (contract §2 PlayerTheme, §8): the colours and switches of a workspace's player
//! page, and its logo. Colours end up inside the player page's CSS, so they are checked here
//! against a strict colour grammar: a theme is user input that other people's browsers render.

use serde::{Deserialize, Serialize};

use crate::id::{PlayerId, WorkspaceId};

/// The eleven colours and five switches of a theme, as stored (one JSON column) and as the
/// player page reads them. Field names are the wire names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThemeSettings {
    pub text: String,
    pub link: String,
    pub link_hover: String,
    /// The only colour without a documented default: omitted until set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_active: Option<String>,
    pub track_played: String,
    pub track_unplayed: String,
    pub track_background: String,
    pub background_top: String,
    pub background_bottom: String,
    pub background_text: String,
    pub enable_api: bool,
    pub enable_controls: bool,
    pub force_autoplay: bool,
    pub hide_title: bool,
    pub force_loop: bool,
}

impl Default for ThemeSettings {
    /// The defaults api.video's schema documents (contract §2).
    fn default() -> Self {
        ThemeSettings {
            text: "rgba(255, 255, 255, 1)".into(),
            link: "rgba(255, 255, 255, 1)".into(),
            link_hover: "rgba(255, 255, 255, 1)".into(),
            link_active: None,
            track_played: "rgba(88, 131, 255, .95)".into(),
            track_unplayed: "rgba(255, 255, 255, .35)".into(),
            track_background: "rgba(255, 255, 255, .2)".into(),
            background_top: "rgba(0, 0, 0, .7)".into(),
            background_bottom: "rgba(0, 0, 0, .7)".into(),
            background_text: "rgba(255, 255, 255, 1)".into(),
            enable_api: true,
            enable_controls: true,
            force_autoplay: false,
            hide_title: false,
            force_loop: false,
        }
    }
}

/// The wire names of the colour fields, in schema order (`name` is the eleventh string).
pub const COLOUR_FIELDS: [&str; 10] = [
    "text",
    "link",
    "linkHover",
    "linkActive",
    "trackPlayed",
    "trackUnplayed",
    "trackBackground",
    "backgroundTop",
    "backgroundBottom",
    "backgroundText",
];

/// The wire names of the switches.
pub const SWITCH_FIELDS: [&str; 5] = ["enableApi", "enableControls", "forceAutoplay", "hideTitle", "forceLoop"];

impl ThemeSettings {
    /// The colour named by its wire name, for updates.
    pub fn colour_mut(&mut self, name: &str) -> Option<&mut String> {
        Some(match name {
            "text" => &mut self.text,
            "link" => &mut self.link,
            "linkHover" => &mut self.link_hover,
            "trackPlayed" => &mut self.track_played,
            "trackUnplayed" => &mut self.track_unplayed,
            "trackBackground" => &mut self.track_background,
            "backgroundTop" => &mut self.background_top,
            "backgroundBottom" => &mut self.background_bottom,
            "backgroundText" => &mut self.background_text,
            _ => return None,
        })
    }

    /// The switch named by its wire name, for updates.
    pub fn switch_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "enableApi" => &mut self.enable_api,
            "enableControls" => &mut self.enable_controls,
            "forceAutoplay" => &mut self.force_autoplay,
            "hideTitle" => &mut self.hide_title,
            "forceLoop" => &mut self.force_loop,
            _ => return None,
        })
    }
}

/// A stored player theme.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayerTheme {
    pub id: PlayerId,
    pub workspace_id: WorkspaceId,
    /// At most [`MAX_NAME_CHARS`]; omitted on the wire when never set.
    pub name: Option<String>,
    pub settings: ThemeSettings,
    /// The uploaded logo's media store key (its file name gives the URL).
    pub logo_key: Option<String>,
    /// Where a click on the logo leads.
    pub logo_link: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `name` is at most 100 characters (the creation payload's `maxLength`).
pub const MAX_NAME_CHARS: usize = 100;
/// The logo limits api.video added on 2023-09-27.
pub const MAX_LOGO_BYTES: usize = 100 * 1024;
pub const MAX_LOGO_WIDTH: u32 = 200;
pub const MAX_LOGO_HEIGHT: u32 = 100;
/// A logo's click-through URL is stored and rendered as a link: bounded like other URLs.
pub const MAX_LINK_CHARS: usize = 2048;

/// The CSS named colours (CSS Color 4: the 148 keywords and `transparent`), sorted, separated
/// by single spaces. The player page's SDK bridge holds the same string (`sdk-bridge.js`, checked
/// by a test in `vidi-api`), so a theme set through the player SDK follows the same grammar.
pub const NAMED_COLOURS: &str = "aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue \
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk \
    crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki \
    darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen \
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue \
    dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro \
    ghostwhite gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo \
    ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan \
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen \
    lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen \
    linen magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple \
    mediumseagreen mediumslateblue mediumspringgreen mediumturquoise mediumvioletred \
    midnightblue mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab \
    orange orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip \
    peachpuff peru pink plum powderblue purple rebeccapurple red rosybrown royalblue \
    saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue slateblue \
    slategray slategrey snow springgreen steelblue tan teal thistle tomato transparent \
    turquoise violet wheat white whitesmoke yellow yellowgreen";

/// Whether `s` is a colour a theme may hold, in one grammar for every colour field, on create,
/// update and the player SDK's `setTheme`: the CSS forms api.video documents and CSS defines:
/// `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`; `rgb()`/`rgba()` of three numbers or percentages and
/// an optional alpha, `hsl()`/`hsla()` of a hue (a number, or an angle in deg, rad, grad or
/// turn), two percentages and an optional alpha, each in the comma form or the space form
/// (`rgb(0 0 0 / .5)`); or a named colour of the CSS list ([`NAMED_COLOURS`]), in any case. A
/// word that is not a colour (`"nonsense"`) is refused like a malformed `rgba(`: the page would
/// draw nothing. Nothing else can reach the player page's style sheet, so a theme can neither
/// close a declaration nor load a URL.
pub fn valid_colour(s: &str) -> bool {
    if s.is_empty() || s.len() > 64 {
        return false;
    }
    if let Some(hex) = s.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let lower = s.to_ascii_lowercase();
    if lower.bytes().all(|b| b.is_ascii_lowercase()) {
        return NAMED_COLOURS.split(' ').any(|n| n == lower);
    }
    let Some((function, inner)) = lower.split_once('(').and_then(|(f, r)| Some((f, r.strip_suffix(')')?))) else {
        return false;
    };
    let hsl = match function {
        "rgb" | "rgba" => false,
        "hsl" | "hsla" => true,
        _ => return false,
    };
    // The comma form (`rgba(255, 255, 255, .95)`) or the space form (`rgb(255 255 255 / 95%)`).
    let (values, alpha): (Vec<&str>, Option<&str>) = if inner.contains(',') {
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        if inner.contains('/') || !(3..=4).contains(&parts.len()) {
            return false;
        }
        (parts[..3].to_vec(), parts.get(3).copied())
    } else {
        match inner.split_once('/') {
            Some((v, a)) => (v.split_ascii_whitespace().collect(), Some(a.trim())),
            None => (inner.split_ascii_whitespace().collect(), None),
        }
    };
    if values.len() != 3 {
        return false;
    }
    let first = if hsl { hue(values[0]) } else { number_or_percent(values[0]) };
    let rest = values[1..].iter().all(|v| if hsl { percent(v) } else { number_or_percent(v) });
    first && rest && alpha.is_none_or(number_or_percent)
}

/// A CSS number: an optional sign, digits, and a fraction of at least one digit (`.5`, `1.25`).
fn number(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(|f| !f.is_empty() && digits(f)) && !(int.is_empty() && frac.is_none())
}

fn percent(s: &str) -> bool {
    s.strip_suffix('%').is_some_and(number)
}

fn number_or_percent(s: &str) -> bool {
    number(s) || percent(s)
}

fn hue(s: &str) -> bool {
    number(s) || ["deg", "grad", "rad", "turn"].iter().any(|u| s.strip_suffix(u).is_some_and(number))
}

/// A logo's format and size in pixels, read from its header: PNG or JPEG, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogoImage {
    pub ext: &'static str,
    pub width: u32,
    pub height: u32,
}

/// What the first bytes say: `Ok(None)` when the file is neither PNG nor JPEG, `Err` when it
/// claims to be one but its header is broken.
pub fn sniff_logo(bytes: &[u8]) -> Result<Option<LogoImage>, &'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        // The first chunk must be IHDR: width and height, big-endian, at bytes 16..24.
        if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
            return Err("the PNG header is truncated");
        }
        let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        return Ok(Some(LogoImage { ext: "png", width: be(16), height: be(20) }));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return jpeg_size(bytes).map(|(width, height)| Some(LogoImage { ext: "jpg", width, height }));
    }
    Ok(None)
}

/// Walks a JPEG's marker segments up to its first start-of-frame, which holds the size. Each
/// step moves forward by a length read from the file, within its bounds, so a hostile file ends
/// the walk rather than looping.
fn jpeg_size(b: &[u8]) -> Result<(u32, u32), &'static str> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return Err("the JPEG header is malformed");
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if (0xD0..=0xD9).contains(&marker) || marker == 0x01 {
            i += 2; // markers without a length
            continue;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if len < 2 {
            return Err("the JPEG header is malformed");
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            if i + 9 > b.len() {
                return Err("the JPEG header is truncated");
            }
            let h = u16::from_be_bytes([b[i + 5], b[i + 6]]) as u32;
            let w = u16::from_be_bytes([b[i + 7], b[i + 8]]) as u32;
            return Ok((w, h));
        }
        i += 2 + len;
    }
    Err("the JPEG has no frame header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_that_may_reach_a_style_sheet() {
        for ok in [
            "rgba(255, 255, 255, .95)",
            "rgb(0,0,0)",
            "RGBA(10%, 20%, 30%, 0.5)",
            "hsl(120deg 50% 50% / .5)",
            "#fff",
            "#A0b1C2",
            "#00000080",
            "red",
            "transparent",
            "RebeccaPurple",
            "rgb(0 0 0 / 50%)",
            "rgba(0, 0, 0)",
            "hsl(0.5turn, 10%, 20%)",
            "hsla(120, 100%, 50%, .3)",
            "rgb(-1, 300, 1.5)",
        ] {
            assert!(valid_colour(ok), "{ok} should be accepted");
        }
        for bad in [
            "",
            "#ggg",
            "#12345",
            "red; background: url(//x)",
            "rgba(0,0,0,1); }",
            "rgb()",
            "url(javascript:x)",
            "expression(alert(1))",
            "rgba(0,0,0,1)) body{",
            "var(--x)",
            "</style>",
            "nonsense",
            "currentcolor",
            "inherit",
            "rgba(",
            "rgb(0, 0)",
            "rgb(0 0 0 0)",
            "rgb(0, 0, 0 / 1)",
            "rgb(0,,0,0)",
            "rgb(1.,2,3)",
            "hsl(120, 50, 50)",
            "hsl(1e3deg, 5%, 5%)",
            "rgb(0 0 0 /)",
            "rgb(0 0 0 / 1 / 1)",
            "rgbb(0,0,0)",
            "rgb(0 deg 0)",
        ] {
            assert!(!valid_colour(bad), "{bad} should be refused");
        }
    }

    #[test]
    fn logo_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&200u32.to_be_bytes());
        png.extend_from_slice(&100u32.to_be_bytes());
        assert_eq!(sniff_logo(&png), Ok(Some(LogoImage { ext: "png", width: 200, height: 100 })));
        assert!(sniff_logo(&png[..20]).is_err());

        // SOI, an APP0 segment of 16 bytes, then SOF0 with height 50 and width 120.
        let mut jpg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        jpg.extend_from_slice(&[0; 14]);
        jpg.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8, 0, 50, 0, 120, 3]);
        assert_eq!(sniff_logo(&jpg), Ok(Some(LogoImage { ext: "jpg", width: 120, height: 50 })));
        // A length that points past the end, or no frame at all, is an error, never a loop.
        assert!(sniff_logo(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF]).is_err());
        assert!(sniff_logo(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).is_err());
        assert_eq!(sniff_logo(b"GIF89a...."), Ok(None));
    }
}
