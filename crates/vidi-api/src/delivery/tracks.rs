//! Caption and chapter files on the delivery side: the WebVTT files themselves (`src` of the
//! API's Caption and Chapter), the subtitle group of the master playlist and its media
//! playlists, and what the player page is told about them. Every file is behind the same video
//! access check as the rest of the video's media (`access.rs`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use vidi_core::keys::{TrackKind, rendition_key, rendition_playlist_key};
use vidi_core::language::Language;
use vidi_core::model::{ProbeOutcome, Video};
use vidi_core::repo::{RenditionRole, TextTrack};
use vidi_core::webvtt;
use vidi_media::playlist::{self, SubtitleTrack};

use super::access::{Access, video};
use super::player::{CaptionTrack, Chapter};
use super::{GROWING, Params, QueryMap, SHORT, read_range, read_small, respond};
use crate::{ApiError, ApiResult, AppState};

/// Where the master's subtitle playlists live, relative to it (`hls/captions/{lang}.m3u8`),
/// beside the WebVTT file each one lists. No rendition is ever named so.
pub(super) const HLS_FOLDER: &str = "captions";
/// How many chapters the player page lists at most (the page's configuration stays small).
const MAX_CHAPTERS: usize = 500;

/// `/vod/{videoId}[/token/{token}]/captions/{lang}.vtt`
pub(super) async fn caption_file(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let file = p.get("file").map(String::as_str).unwrap_or("");
    serve_vtt(&state, &a, TrackKind::Captions, file).await
}

/// `/vod/{videoId}[/token/{token}]/chapters/{lang}.vtt`
pub(super) async fn chapter_file(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let file = p.get("file").map(String::as_str).unwrap_or("");
    serve_vtt(&state, &a, TrackKind::Chapters, file).await
}

/// The language a `{lang}.{ext}` file name names, if it is one.
fn language_of(file: &str, ext: &str) -> Option<Language> {
    Language::parse(file.strip_suffix(ext)?).ok()
}

async fn track(state: &AppState, v: &Video, kind: TrackKind, lang: &Language) -> ApiResult<TextTrack> {
    state.repo.get_track(kind, &v.workspace_id, &v.id, lang).await.map_err(|e| ApiError::from_core(e, "file"))
}

async fn serve_vtt(state: &AppState, a: &Access, kind: TrackKind, file: &str) -> ApiResult<Response> {
    let lang = language_of(file, ".vtt").ok_or_else(|| ApiError::not_found("file"))?;
    let t = track(state, &a.video, kind, &lang).await?;
    let body = read_small(state, &t.key).await?.ok_or_else(|| ApiError::not_found("file"))?;
    // Replaceable under the same URL: cached briefly, like playlists. CORS (`*`, from the
    // router) lets players on other origins load it as a <track>.
    let mut r = respond(StatusCode::OK, "text/vtt; charset=utf-8", SHORT, body.into());
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(a.finish(r))
}

/// `hls/captions/{lang}.m3u8` (a subtitle media playlist) and `hls/captions/{lang}.vtt` (its
/// one segment, the stored file).
pub(super) async fn hls_captions(state: &AppState, a: &Access, file: &str) -> ApiResult<Response> {
    if file.ends_with(".vtt") {
        let lang = language_of(file, ".vtt").ok_or_else(|| ApiError::not_found("file"))?;
        let t = track(state, &a.video, TrackKind::Captions, &lang).await?;
        let mut body = read_small(state, &t.key).await?.ok_or_else(|| ApiError::not_found("file"))?;
        if let Some(pts) = first_pts(state, &a.video).await? {
            body = playlist::with_timestamp_map(&body, pts);
        }
        let mut r = respond(StatusCode::OK, "text/vtt; charset=utf-8", SHORT, body.into());
        r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        return Ok(a.finish(r));
    }
    let lang = language_of(file, ".m3u8").ok_or_else(|| ApiError::not_found("file"))?;
    track(state, &a.video, TrackKind::Captions, &lang).await?;
    let body = playlist::subtitle_playlist(duration(&a.video), &format!("{lang}.vtt{}", a.avh()));
    Ok(a.finish(respond(StatusCode::OK, "application/vnd.apple.mpegurl", GROWING, body.into())))
}

/// Where the video's MPEG-TS timeline starts: the first PTS of its first variant's first
/// segment (ffmpeg starts at 1.4 s, plus the encoder's delay). `None` for fMP4 renditions or a
/// video with no stored renditions, whose subtitle segments then go without a map.
async fn first_pts(state: &AppState, v: &Video) -> ApiResult<Option<u64>> {
    let renditions = state.repo.renditions(&v.workspace_id, &v.id).await?;
    let Some(r) = renditions.iter().find(|r| r.role == RenditionRole::Variant) else { return Ok(None) };
    let Some(list) = read_small(state, &rendition_playlist_key(v.id.as_str(), &r.name)).await? else {
        return Ok(None);
    };
    let list = String::from_utf8_lossy(&list);
    let Some(first) = playlist::segment_uris(&list).first().map(|s| s.to_string()) else { return Ok(None) };
    if !first.ends_with(".ts") {
        return Ok(None);
    }
    // Only the packets the PTS is looked for in, not the whole segment (hundreds of KB on S3).
    let head = Some((0, playlist::TS_FIRST_PTS_BYTES - 1));
    let segment = read_range(state, &rendition_key(v.id.as_str(), &r.name, &first), head).await?;
    Ok(segment.and_then(|s| playlist::ts_first_pts(&s)))
}

/// The video's length as probed; a playable video has been probed.
fn duration(v: &Video) -> f64 {
    match &v.ingest.probe {
        Some(ProbeOutcome::Probed(p)) => p.duration_s.unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The master's subtitle group: one track per caption, the default one `DEFAULT=YES`.
pub(super) async fn subtitle_tracks(state: &AppState, v: &Video) -> ApiResult<Vec<SubtitleTrack>> {
    let captions = state.repo.all_tracks(TrackKind::Captions, &v.workspace_id, &v.id).await?;
    Ok(captions
        .iter()
        .map(|c| SubtitleTrack {
            name: c.language.label(),
            language: c.language.to_string(),
            uri: format!("{HLS_FOLDER}/{}.m3u8", c.language),
            default: c.is_default,
        })
        .collect())
}

/// What the player page lists: the captions (served at `{base}/captions/…`, `base` being the
/// video's media path with its private token, if any) and the chapters of one language (the
/// default caption's, else the first uploaded), read from their file.
pub(super) async fn player_tracks(
    state: &AppState,
    v: &Video,
    base: &str,
    avh: &str,
) -> ApiResult<(Vec<CaptionTrack>, Vec<Chapter>)> {
    let captions = state.repo.all_tracks(TrackKind::Captions, &v.workspace_id, &v.id).await?;
    let tracks: Vec<CaptionTrack> = captions
        .iter()
        .map(|c| CaptionTrack {
            lang: c.language.to_string(),
            label: c.language.label(),
            src: format!("{base}/captions/{}.vtt{avh}", c.language),
            default: c.is_default,
        })
        .collect();
    let files = state.repo.all_tracks(TrackKind::Chapters, &v.workspace_id, &v.id).await?;
    let preferred = captions.iter().find(|c| c.is_default).map(|c| &c.language);
    let Some(file) = files.iter().find(|f| Some(&f.language) == preferred).or(files.first()) else {
        return Ok((tracks, Vec::new()));
    };
    let chapters = match read_small(state, &file.key).await? {
        // Checked when uploaded; a file that no longer parses just shows no chapters.
        Some(bytes) => webvtt::parse(&bytes).unwrap_or_default(),
        None => Vec::new(),
    };
    let chapters = chapters
        .into_iter()
        .take(MAX_CHAPTERS)
        .map(|c| Chapter { start: c.start, end: c.end, title: c.text.replace('\n', " ") })
        .collect();
    Ok((tracks, chapters))
}
