//! The embeddable player page (`/embed/vod/{id}`): real files under `assets/player/` compiled into
//! the binary, with the per-video configuration passed to the page as JSON. Its controls are
//! media-chrome's (pinned and vendored, see `assets/player/VENDOR.md`), played by hls.js.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::access::video;
use super::{IMMUTABLE, Params, QueryMap, respond};
use vidi_core::id::PlayerId;
use vidi_core::player::PlayerTheme;

use crate::{ApiResult, AppState};

const HLS_JS: &[u8] = include_bytes!("../../assets/hls.min.js");
const MEDIA_CHROME_JS: &[u8] = include_bytes!("../../assets/player/media-chrome-4.19.4.min.js");
const PAGE: &str = include_str!("../../assets/player/index.html");
const PLAYER_JS: &[u8] = include_bytes!("../../assets/player/player.js");
const PLAYER_CSS: &[u8] = include_bytes!("../../assets/player/player.css");
const SDK_BRIDGE_JS: &[u8] = include_bytes!("../../assets/player/sdk-bridge.js");
const LIVE_JS: &[u8] = include_bytes!("../../assets/player/live.js");
const ANALYTICS_JS: &[u8] = include_bytes!("../../assets/player/analytics.js");
/// Where the configuration goes in `index.html`.
const CONFIG_SLOT: &str = "{{config}}";
/// The page's own script and style change with Vidi, under the same name: revalidated hourly
/// (the vendored files carry their version in their name and are immutable).
const OWN_ASSET: &str = "public, max-age=3600";

pub(super) async fn hls_js() -> Response {
    respond(StatusCode::OK, "text/javascript", IMMUTABLE, HLS_JS.into())
}

/// `/assets/player/{file}`: the player page's script, style and vendored controls.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, ct, cache): (&'static [u8], &str, &str) = match file.as_str() {
        "player.js" => (PLAYER_JS, "text/javascript", OWN_ASSET),
        "player.css" => (PLAYER_CSS, "text/css", OWN_ASSET),
        "sdk-bridge.js" => (SDK_BRIDGE_JS, "text/javascript", OWN_ASSET),
        "live.js" => (LIVE_JS, "text/javascript", OWN_ASSET),
        "analytics.js" => (ANALYTICS_JS, "text/javascript", OWN_ASSET),
        "media-chrome-4.19.4.min.js" => (MEDIA_CHROME_JS, "text/javascript", IMMUTABLE),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    respond(StatusCode::OK, ct, cache, body.into())
}

/// What the page's script is told about the video it plays (`#vidi-config`).
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlayerConfig {
    pub video_id: String,
    pub title: String,
    pub hide_title: bool,
    /// The master playlist, with the private session in its query when there is one.
    pub hls: String,
    pub poster: Option<String>,
    /// Start at the live edge (a live stream) instead of `start_at`.
    pub live: bool,
    /// A 360° video (`panoramic`): equirectangular frames, drawn as a view the viewer turns.
    pub panoramic: bool,
    /// Seconds to start at (`?t=`).
    pub start_at: f64,
    pub autoplay: bool,
    /// Show the controls (a theme's `enableControls`).
    pub controls: bool,
    /// Play again from the start at the end (a theme's `forceLoop`).
    #[serde(rename = "loop")]
    pub looped: bool,
    /// Subtitle tracks: `{lang, label, src, default}`.
    pub captions: Vec<CaptionTrack>,
    /// Markers on the timeline: `{start, end, title}` in seconds.
    pub chapters: Vec<Chapter>,
    pub logo: Option<Logo>,
    /// CSS variables (`--media-*`, `--vidi-*`) and their values.
    pub theme: BTreeMap<String, String>,
    /// Start muted (`?muted=true`).
    pub muted: bool,
    /// No poster (`?hidePoster=true`).
    pub hide_poster: bool,
    /// Answer `@api.video/player-sdk` (a theme's `enableApi`; `sdk-bridge.js`).
    pub api: bool,
    /// What the theme forces: neither the URL nor the SDK may undo it.
    pub forced: Forced,
    /// The MP4 the SDK's `download()` fetches, when the video offers one.
    pub mp4: Option<String>,
    /// `?metadata[key]=value`, as the SDK passes it, bounded; kept for the page's analytics.
    pub metadata: BTreeMap<String, String>,
    /// A theme colour's wire name → the CSS variables it sets, for the SDK's `setTheme` (the
    /// same table a stored theme goes through, [`THEME_VARIABLES`]).
    pub theme_variables: BTreeMap<&'static str, Vec<&'static str>>,
    /// Where the page reports its viewing session (`analytics.js`); none: no report.
    pub collector: Option<CollectorConfig>,
}

/// The analytics collector, as the page reaches it (`crate::collect`).
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct CollectorConfig {
    /// `POST` here mints the session; its events go to `{sessions}/{sessionId}/events`.
    pub sessions: String,
    /// A private video's playback session, which the collector asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avh: Option<String>,
}

/// A theme's switches as the page must keep them (`vidi_core::player::ThemeSettings`).
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Forced {
    pub hide_title: bool,
    pub hide_controls: bool,
    pub autoplay: bool,
    #[serde(rename = "loop")]
    pub looped: bool,
}

/// Which CSS variable each theme colour sets (contract §2 PlayerTheme).
const THEME_VARIABLES: [(&str, &str); 12] = [
    ("text", "--media-primary-color"),
    ("text", "--media-text-color"),
    ("text", "--media-icon-color"),
    ("link", "--vidi-link-color"),
    ("linkHover", "--vidi-link-hover-color"),
    ("linkActive", "--vidi-link-active-color"),
    ("trackPlayed", "--media-range-bar-color"),
    ("trackUnplayed", "--media-time-range-buffered-color"),
    ("trackBackground", "--media-range-track-background"),
    ("backgroundTop", "--vidi-background-top"),
    ("backgroundBottom", "--media-control-background"),
    ("backgroundText", "--vidi-title-color"),
];

/// At most this many `metadata[…]` pairs, each part at most [`MAX_METADATA_CHARS`]: what the
/// collector takes with a session.
use crate::collect::{MAX_METADATA, MAX_METADATA_CHARS};

/// `?metadata[key]=value` pairs (the SDK's `metadata` option), the first [`MAX_METADATA`] by key;
/// over-long ones are dropped rather than cut, so no value is silently changed.
fn metadata(q: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    let mut pairs: Vec<(&str, &String)> = q
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?, v)))
        .filter(|(k, v)| {
            !k.is_empty() && k.chars().count() <= MAX_METADATA_CHARS && v.chars().count() <= MAX_METADATA_CHARS
        })
        .collect();
    pairs.sort();
    pairs.into_iter().take(MAX_METADATA).map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[derive(Serialize, Debug, Clone)]
pub(super) struct CaptionTrack {
    pub lang: String,
    pub label: String,
    pub src: String,
    pub default: bool,
}

#[derive(Serialize, Debug, Clone)]
pub(super) struct Chapter {
    pub start: f64,
    pub end: f64,
    pub title: String,
}

#[derive(Serialize, Debug, Clone)]
pub(super) struct Logo {
    pub src: String,
    pub link: Option<String>,
}

/// The page for `config`: `index.html` with the configuration as JSON in its data script.
pub(super) fn page(config: &PlayerConfig) -> String {
    let json = serde_json::to_string(config).expect("the configuration serialises");
    // Inside <script>, only `</script` (or `<!--`) could end the element early: `<` never
    // appears raw. `>` and `&` are escaped too, so the text is inert in any HTML context.
    let json = json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
    PAGE.replacen(CONFIG_SLOT, &json, 1)
}

/// A `?t=` value: seconds (`90`, `12.5`), or api.video's `1m30s` form.
fn start_at(t: Option<&String>) -> f64 {
    let Some(t) = t.map(|t| t.trim()) else { return 0.0 };
    if let Ok(s) = t.parse::<f64>() {
        return if s.is_finite() && s > 0.0 { s } else { 0.0 };
    }
    let mut total = 0.0;
    let mut number = String::new();
    for c in t.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = std::mem::take(&mut number).parse().unwrap_or(0.0);
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return 0.0,
        }
    }
    if total.is_finite() { total } else { 0.0 }
}

/// The embeddable player: the video's title unless hidden, its thumbnail as poster, starting at
/// `?t=` seconds. It autoplays (muted, as browsers allow) only when asked: by its theme
/// (`forceAutoplay`), by the URL (`?autoplay=true`, which is what the player SDK's `autoplay`
/// option writes), or later by the SDK's `play` command; as api.video's player does.
pub(super) async fn player(
    State(state): State<AppState>,
    Path(mut p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    if let Some(t) = q.get("token") {
        p.insert("token".into(), t.clone());
    }
    // Opening the player uses the private token: the page's media requests carry the session.
    let a = video(&state, &p, &h, &q).await?;
    let v = &a.video;
    let token = p.get("token").filter(|_| !v.public);
    let base = match token {
        Some(t) => format!("/vod/{}/token/{}", v.id, percent_encoding::utf8_percent_encode(t, SEGMENT)),
        None => format!("/vod/{}", v.id),
    };
    let avh = a.avh();
    let mut config = PlayerConfig {
        video_id: v.id.to_string(),
        title: v.title.clone(),
        hls: format!("{base}/hls/manifest.m3u8{avh}"),
        poster: v.encoding.thumbnail_key.as_ref().map(|_| format!("{base}/thumbnail.jpg{avh}")),
        panoramic: v.panoramic,
        start_at: start_at(q.get("t")),
        mp4: (v.mp4_support && !v.encoding.mp4_pending).then(|| format!("{base}/mp4/source.mp4{avh}")),
        collector: Some(CollectorConfig {
            sessions: "/collect/sessions".into(),
            avh: a.session.as_ref().map(|s| s.id.clone()),
        }),
        ..from_query(&q)
    };
    themed(&state, &v.workspace_id, v.player_id.as_deref(), &mut config).await?;
    (config.captions, config.chapters) = super::tracks::player_tracks(&state, v, &base, &avh).await?;
    Ok(a.finish(page_response(&config)))
}

/// What the query string sets on any player page, VOD or live: the options
/// `@api.video/player-sdk` writes into the URL (`chromeless`: no controls, no title), and the
/// page's constant tables.
pub(super) fn from_query(q: &std::collections::HashMap<String, String>) -> PlayerConfig {
    let flag = |name: &str| q.get(name).map(|s| matches!(s.as_str(), "" | "1" | "true"));
    let chromeless = flag("chromeless").unwrap_or(false);
    PlayerConfig {
        hide_title: flag("hideTitle").unwrap_or(false) || chromeless,
        autoplay: flag("autoplay").unwrap_or(false),
        controls: !(flag("hideControls").unwrap_or(false) || chromeless),
        looped: flag("loop").unwrap_or(false),
        muted: flag("muted").unwrap_or(false),
        hide_poster: flag("hidePoster").unwrap_or(false),
        api: true,
        metadata: metadata(q),
        theme_variables: THEME_VARIABLES.iter().fold(BTreeMap::new(), |mut m, (field, var)| {
            m.entry(*field).or_insert_with(Vec::new).push(*var);
            m
        }),
        ..Default::default()
    }
}

/// Applies the subject's player theme (`playerId`), if it still exists: a theme deleted
/// meanwhile just leaves the default look.
pub(super) async fn themed(
    state: &AppState,
    ws: &vidi_core::id::WorkspaceId,
    player_id: Option<&str>,
    config: &mut PlayerConfig,
) -> ApiResult<()> {
    let Some(pid) = player_id.and_then(PlayerId::parse) else { return Ok(()) };
    match state.repo.get_player(ws, &pid).await {
        Ok(theme) => apply_theme(config, &theme, &state.cfg.public_url),
        Err(vidi_core::CoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The response for a player page: never cached, as it carries the (private) session.
pub(super) fn page_response(config: &PlayerConfig) -> Response {
    let mut r = Html(page(config)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A player theme on the page (contract §2 PlayerTheme): its colours become the CSS variables the
/// controls read, its switches force what the query string may not undo (a hidden title stays
/// hidden, forced autoplay and loop stay on), and its logo takes the logo slot. The colours were
/// checked against a strict colour grammar when stored, and the page sets them one property at
/// a time, so none can reach beyond its own declaration.
fn apply_theme(config: &mut PlayerConfig, theme: &PlayerTheme, public_url: &str) {
    let s = &theme.settings;
    // The colours by wire name (`linkActive` is absent until set).
    let colours = serde_json::to_value(s).unwrap_or_default();
    for (field, name) in THEME_VARIABLES {
        if let Some(v) = colours.get(field).and_then(|v| v.as_str()) {
            config.theme.insert(name.to_string(), v.to_string());
        }
    }
    config.hide_title |= s.hide_title;
    config.autoplay |= s.force_autoplay;
    config.looped |= s.force_loop;
    config.controls &= s.enable_controls;
    config.api = s.enable_api;
    config.forced = Forced {
        hide_title: s.hide_title,
        hide_controls: !s.enable_controls,
        autoplay: s.force_autoplay,
        looped: s.force_loop,
    };
    if let Some(src) = crate::resources::players::logo_url(public_url, theme) {
        config.logo = Some(Logo { src, link: theme.logo_link.clone() });
    }
}

/// What a path segment may not carry raw.
pub(super) const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_bridge_knows_the_same_named_colours() {
        // `setTheme` from the player SDK follows the grammar of stored themes: same names.
        let js = std::str::from_utf8(SDK_BRIDGE_JS).unwrap();
        let start = js.find("const NAMED_COLOURS = ").expect("the list") + "const NAMED_COLOURS = ".len();
        let end = start + js[start..].find(';').unwrap();
        let names: String = js[start..end].split('\'').skip(1).step_by(2).collect();
        assert_eq!(names, vidi_core::player::NAMED_COLOURS);
    }

    #[test]
    fn the_configuration_cannot_end_its_script_element() {
        let config = PlayerConfig {
            title: "</script><script>alert(1)</script> & <!-- \u{2028}".into(),
            hls: "/vod/vi1/hls/manifest.m3u8".into(),
            ..Default::default()
        };
        let html = page(&config);
        let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).unwrap();
        let data = data.split("</script>").next().unwrap();
        assert!(!data.contains('<') && !data.contains('>') && !data.contains('&'), "{data}");
        let back: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(back["title"], config.title.as_str());
        assert_eq!(back["hls"], "/vod/vi1/hls/manifest.m3u8");
        assert!(!html.contains(CONFIG_SLOT));
    }

    fn theme(settings: vidi_core::player::ThemeSettings) -> PlayerTheme {
        PlayerTheme {
            id: PlayerId::generate(),
            workspace_id: vidi_core::id::WorkspaceId::generate(),
            name: None,
            settings,
            logo_key: None,
            logo_link: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_theme_forces_what_the_query_cannot_undo_and_never_shows_what_the_query_hid() {
        use vidi_core::player::ThemeSettings;
        // The query asked for controls and no loop; the theme hides the controls, forces the
        // loop, autoplay and a hidden title, and turns the SDK off.
        let mut config = PlayerConfig { controls: true, api: true, ..Default::default() };
        let forcing = ThemeSettings {
            enable_api: false,
            enable_controls: false,
            force_autoplay: true,
            hide_title: true,
            force_loop: true,
            link_active: Some("#123456".into()),
            ..ThemeSettings::default()
        };
        apply_theme(&mut config, &theme(forcing), "http://vidi");
        assert!(!config.controls && config.autoplay && config.hide_title && config.looped && !config.api);
        assert!(
            config.forced.hide_controls && config.forced.autoplay && config.forced.hide_title && config.forced.looped
        );
        assert_eq!(config.theme["--vidi-link-active-color"], "#123456");
        assert_eq!(config.theme["--media-control-background"], "rgba(0, 0, 0, .7)");
        assert_eq!(config.theme.len(), 12);

        // `?hideControls=true` under a theme that enables them: still hidden; nothing forced.
        let mut config = PlayerConfig { controls: false, api: true, ..Default::default() };
        apply_theme(&mut config, &theme(ThemeSettings::default()), "http://vidi");
        assert!(!config.controls && config.api);
        assert!(!config.forced.hide_controls && !config.forced.autoplay && !config.forced.looped);
        // No `linkActive` until set.
        assert!(!config.theme.contains_key("--vidi-link-active-color"));
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json["forced"],
            serde_json::json!({"hideTitle": false, "hideControls": false, "autoplay": false, "loop": false})
        );
    }

    #[test]
    fn metadata_from_the_query_is_bounded() {
        let mut q = std::collections::HashMap::new();
        q.insert("metadata[Author]".to_string(), "John Doe".to_string());
        q.insert("metadata[]".to_string(), "no key".to_string());
        q.insert("metadata[long]".to_string(), "x".repeat(MAX_METADATA_CHARS + 1));
        q.insert("metadataX".to_string(), "not metadata".to_string());
        q.insert("autoplay".to_string(), "true".to_string());
        for i in 0..40 {
            q.insert(format!("metadata[k{i:02}]"), i.to_string());
        }
        let m = metadata(&q);
        assert_eq!(m.len(), MAX_METADATA);
        assert_eq!(m["Author"], "John Doe");
        assert!(!m.contains_key("") && !m.contains_key("long"));
        assert_eq!(m.keys().last().map(String::as_str), Some("k30"));
    }

    #[test]
    fn start_times() {
        assert_eq!(start_at(None), 0.0);
        assert_eq!(start_at(Some(&"12.5".to_string())), 12.5);
        assert_eq!(start_at(Some(&"1m30s".to_string())), 90.0);
        assert_eq!(start_at(Some(&"1h".to_string())), 3600.0);
        assert_eq!(start_at(Some(&"-4".to_string())), 0.0);
        assert_eq!(start_at(Some(&"NaN".to_string())), 0.0);
        assert_eq!(start_at(Some(&"4x".to_string())), 0.0);
    }
}
