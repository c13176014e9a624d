//! `/videos`: create, list, show, update, delete, and the status of a video's ingest.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
pub(crate) use vidi_core::clip::valid_timecode;
use vidi_core::clip::{Clip, window_of};
use vidi_core::id::VideoId;
use vidi_core::jobs::{self, JobKind};
use vidi_core::keys::{mp4_key, source_key, video_prefix};
use vidi_core::model::{
    EncodingState, Ingest, IngestState, MetadataPair, ProbeOutcome, SourceKind, UploadMode, Video, VideoFilter,
    VideoSort,
};
use vidi_core::probe::Probe;
use vidi_core::time::{Rfc3339Ms, now_ms};

use super::players::check_player_of;
use super::video_payloads::{VideoClip, VideoCreationPayload, VideoUpdatePayload};
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{JsonBody, Query};
use crate::page::{Page, page, page_request, sort};
use crate::{ApiError, ApiResult, AppState, ingest};

// ---- wire types ------------------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VideoOut {
    pub video_id: String,
    #[schema(value_type = String)]
    pub created_at: Rfc3339Ms,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub published_at: Option<Rfc3339Ms>,
    #[schema(value_type = String)]
    pub updated_at: Rfc3339Ms,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Vec<MetadataOut>,
    pub source: VideoSourceOut,
    pub assets: VideoAssets,
    /// Omitted when no player is attached (it may not be null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    pub public: bool,
    pub panoramic: bool,
    pub mp4_support: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MetadataOut {
    pub key: String,
    pub value: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoSourceOut {
    pub uri: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Only on the recording of a broadcast (the 2023 schema's `video-source-live-stream`).
    #[serde(rename = "liveStream", skip_serializing_if = "Option::is_none")]
    pub live_stream: Option<VideoSourceLiveStream>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VideoSourceLiveStream {
    pub live_stream_id: String,
    pub links: Vec<SourceLink>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceLink {
    pub rel: String,
    pub uri: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoAssets {
    pub hls: String,
    pub iframe: String,
    pub player: String,
    pub thumbnail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mp4: Option<String>,
}

/// A private token opens a private video's media for a day (contract §6).
pub(crate) const PRIVATE_TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

impl VideoOut {
    /// The wire form of a video. A private one gets a fresh private token in its asset URLs,
    /// minted on every read as api.video does. Takes the video: its strings move to the wire
    /// form rather than being copied.
    pub async fn build(state: &AppState, v: Video) -> ApiResult<Self> {
        Ok(Self::build_all(state, vec![v]).await?.pop().expect("one in, one out"))
    }

    /// The wire form of several videos, minting the private ones' tokens in one statement.
    pub async fn build_all(state: &AppState, videos: Vec<Video>) -> ApiResult<Vec<Self>> {
        let tokens: Vec<Option<String>> =
            videos.iter().map(|v| (!v.public).then(|| uuid::Uuid::new_v4().to_string())).collect();
        let minted: Vec<(&VideoId, &str)> =
            videos.iter().zip(&tokens).filter_map(|(v, t)| Some((&v.id, t.as_deref()?))).collect();
        let now = now_ms();
        // The videos of one read or one page: one workspace's.
        if let Some(v) = videos.first() {
            state.repo.mint_private_tokens(&v.workspace_id, &minted, now, now + PRIVATE_TOKEN_TTL_MS).await?;
        }
        Ok(videos
            .into_iter()
            .zip(&tokens)
            .map(|(v, t)| Self::from_video(v, &state.cfg.public_url, t.as_deref()))
            .collect())
    }

    pub fn from_video(v: Video, public_url: &str, token: Option<&str>) -> Self {
        let id = v.id.as_str();
        let (vod, player) = match token {
            None => (format!("{public_url}/vod/{id}"), format!("{public_url}/embed/vod/{id}")),
            Some(t) => (format!("{public_url}/vod/{id}/token/{t}"), format!("{public_url}/embed/vod/{id}?token={t}")),
        };
        VideoOut {
            created_at: Rfc3339Ms(v.created_at),
            published_at: v.published_at.map(Rfc3339Ms),
            updated_at: Rfc3339Ms(v.updated_at),
            metadata: v.metadata.into_iter().map(|m| MetadataOut { key: m.key, value: m.value }).collect(),
            source: VideoSourceOut {
                uri: format!("/videos/{id}/source"),
                kind: v.source_kind.as_str().into(),
                live_stream: match (v.source_kind, &v.source_ref) {
                    (SourceKind::Live, Some(live)) => Some(VideoSourceLiveStream {
                        links: vec![SourceLink { rel: "self".into(), uri: format!("/live-streams/{live}") }],
                        live_stream_id: live.clone(),
                    }),
                    _ => None,
                },
            },
            assets: VideoAssets {
                hls: format!("{vod}/hls/manifest.m3u8"),
                iframe: format!(
                    "<iframe src=\"{player}\" width=\"100%\" height=\"100%\" frameborder=\"0\" scrolling=\"no\" allowfullscreen=\"\"></iframe>"
                ),
                thumbnail: format!("{vod}/thumbnail.jpg"),
                // Made after the fact (`mp4Support` turned on once encoded): listed once it is there.
                mp4: (v.mp4_support && !v.encoding.mp4_pending).then(|| format!("{vod}/mp4/source.mp4")),
                player,
            },
            public: v.public,
            panoramic: v.panoramic,
            mp4_support: v.mp4_support,
            video_id: v.id.into_string(),
            title: v.title,
            description: v.description,
            tags: v.tags,
            player_id: v.player_id,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoStatus {
    pub ingest: VideoStatusIngest,
    pub encoding: VideoStatusEncoding,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VideoStatusIngest {
    /// `missing`, `uploading` or `uploaded` (the only values the 2023 clients accept).
    pub status: String,
    pub filesize: Option<u64>,
    pub received_bytes: Vec<BytesRange>,
    pub received_parts: UploadParts,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BytesRange {
    pub from: u64,
    pub to: u64,
    pub total: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadParts {
    pub parts: Vec<u32>,
    pub total: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoStatusEncoding {
    pub playable: bool,
    pub qualities: Vec<QualityOut>,
    pub metadata: EncodingMetadata,
}

/// One output of the encoder: `type` hls or mp4, `quality` 240p…2160p, `status`
/// waiting|encoding|encoded|failed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QualityOut {
    #[serde(rename = "type")]
    pub kind: String,
    pub quality: String,
    pub status: String,
}

/// What ffprobe found in the source. Every field is nullable in the 2023 schema.
#[derive(Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncodingMetadata {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bitrate: Option<f64>,
    pub duration: Option<u64>,
    pub framerate: Option<u32>,
    pub samplerate: Option<u32>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub aspect_ratio: Option<String>,
}

impl EncodingMetadata {
    fn from_probe(p: &Probe) -> Self {
        let size = p.video.as_ref().map(|v| v.display_size());
        EncodingMetadata {
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            bitrate: p.bitrate_kbps,
            duration: p.duration_s.map(|d| d.round() as u64),
            framerate: p.video.as_ref().and_then(|v| v.framerate).map(|f| f.round() as u32),
            samplerate: p.audio.as_ref().and_then(|a| a.sample_rate),
            video_codec: p.video.as_ref().map(|v| v.codec.clone()),
            audio_codec: p.audio.as_ref().map(|a| a.codec.clone()),
            aspect_ratio: p.video.as_ref().and_then(|v| v.aspect_ratio.clone()),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoIdOnly {
    #[serde(rename = "videoId")]
    pub video_id: String,
}

// ---- routes ----------------------------------------------------------------------------------

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/videos", get(list).post(create))
        .route("/videos/{videoId}", get(show).patch(update).delete(delete))
        .route("/videos/{videoId}/status", get(status))
}

pub(crate) fn video_id(raw: &str) -> ApiResult<VideoId> {
    VideoId::parse(raw).ok_or_else(|| ApiError::not_found("videoId"))
}

/// Limits of the free-form fields (api.video states none; these keep one video's JSON, and so a
/// list page of 100, bounded). Counted in characters, as a user counts them.
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 255;
pub const MAX_METADATA_PAIRS: usize = 50;
pub const MAX_METADATA_KEY_CHARS: usize = 255;
pub const MAX_METADATA_VALUE_CHARS: usize = 1_000;

fn check_description(d: Option<String>) -> ApiResult<Option<String>> {
    if d.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        return Err(ApiError::invalid_attribute(
            "description",
            format!("The \"description\" attribute must hold at most {MAX_DESCRIPTION_CHARS} characters."),
        ));
    }
    Ok(d)
}

fn check_metadata(m: Vec<MetadataPair>) -> ApiResult<Vec<MetadataPair>> {
    if m.len() > MAX_METADATA_PAIRS {
        return Err(ApiError::invalid_attribute(
            "metadata",
            format!("A video holds at most {MAX_METADATA_PAIRS} metadata pairs."),
        ));
    }
    if m.iter()
        .any(|p| p.key.chars().count() > MAX_METADATA_KEY_CHARS || p.value.chars().count() > MAX_METADATA_VALUE_CHARS)
    {
        return Err(ApiError::invalid_attribute(
            "metadata",
            format!(
                "Metadata keys hold at most {MAX_METADATA_KEY_CHARS} characters and values at most {MAX_METADATA_VALUE_CHARS}."
            ),
        ));
    }
    Ok(m)
}

fn clean_tags(tags: Vec<String>) -> ApiResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_attribute("tags", format!("A video holds at most {MAX_TAGS} tags.")));
    }
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_string();
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS {
            return Err(ApiError::invalid_attribute(
                "tags",
                format!("Each tag must hold 1 to {MAX_TAG_CHARS} characters."),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn check_title(title: &str) -> ApiResult<()> {
    if title.trim().is_empty() {
        return Err(ApiError::invalid_attribute("title", "The \"title\" attribute must not be blank."));
    }
    if title.len() > 1024 {
        return Err(ApiError::invalid_attribute("title", "The \"title\" attribute is too long."));
    }
    Ok(())
}

/// Reads `clip` (contract §3, op 5): each timecode `hh:mm:ss(.ms|:frame)` or seconds, and the end
/// after the start. Whether it starts before the source ends is known only once the source is
/// probed: the encoding fails the video then, saying so.
fn check_clip(clip: Option<&VideoClip>) -> ApiResult<Option<Clip>> {
    let Some(clip) = clip else {
        return Ok(None);
    };
    let mut out = Clip::default();
    for (key, given, slot) in
        [("startTimecode", &clip.start_timecode, &mut out.start), ("endTimecode", &clip.end_timecode, &mut out.end)]
    {
        if let Some(tc) = given {
            if !valid_timecode(tc) {
                return Err(ApiError::invalid_attribute(
                    &format!("clip[{key}]"),
                    "The timecode must be hh:mm:ss(.ms), hh:mm:ss:frame or seconds.",
                ));
            }
            *slot = Some(tc.clone());
        }
    }
    // Frames count at the source's rate, unknown yet: any rate orders two timecodes the same
    // way unless their seconds are equal, and then the frame numbers order them.
    if out.ends_before_start(vidi_core::clip::fps_of(None)) {
        return Err(ApiError::invalid_attribute(
            "clip[endTimecode]",
            "The clip must end after it starts: clip[endTimecode] is not after clip[startTimecode].",
        ));
    }
    Ok((out != Clip::default()).then_some(out))
}

/// Create a video object.
#[utoipa::path(post, path = "/videos", tag = "Videos", operation_id = "POST_videos",
    request_body = VideoCreationPayload,
    responses((status = 201, body = VideoOut), (status = 202, body = VideoOut), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<VideoCreationPayload>,
) -> ApiResult<impl IntoResponse> {
    let body = body.read()?;
    let title = body.title.ok_or_else(|| ApiError::attribute_required("title"))?;
    check_title(&title)?;
    let clip = check_clip(body.clip.as_ref())?;
    // The 2023 surface Vidi serves has no `/watermarks`, so no id a user holds can name one:
    // refused rather than accepted and ignored.
    if body.watermark.is_some() {
        return Err(ApiError::invalid_attribute(
            "watermark",
            "Watermarks are not supported: this server has no watermark resource. Remove the \"watermark\" attribute.",
        ));
    }
    let player_id = body.player_id.filter(|p| !p.is_empty());
    if let Some(p) = &player_id {
        check_player_of(&state, auth.ws(), p).await?;
    }
    let now = now_ms();
    let mut video = Video {
        id: VideoId::generate(),
        workspace_id: auth.ws().clone(),
        title,
        description: check_description(body.description)?,
        public: body.public.unwrap_or(true),
        panoramic: body.panoramic.unwrap_or(false),
        mp4_support: body.mp4_support.unwrap_or(true),
        player_id,
        tags: clean_tags(body.tags.unwrap_or_default())?,
        metadata: check_metadata(body.metadata.unwrap_or_default())?,
        source_kind: SourceKind::Upload,
        source_ref: None,
        created_at: now,
        updated_at: now,
        published_at: Some(now),
        ingest: Ingest::empty(),
        encoding: EncodingState::default(),
        clip,
    };
    let source = body.source.filter(|s| !s.trim().is_empty());
    if let Some(src) = &source {
        let src = src.trim();
        if let Some(original) = VideoId::parse(src) {
            // Cloning copies a complete source of the same workspace.
            let orig = state.repo.get_video(auth.ws(), &original).await.map_err(|e| match e {
                vidi_core::CoreError::NotFound => {
                    ApiError::invalid_attribute("source", "No video with this id exists.")
                }
                e => e.into(),
            })?;
            if orig.ingest.state != IngestState::Uploaded {
                return Err(ApiError::invalid_attribute("source", "The video to copy has no complete source yet."));
            }
            video.source_kind = SourceKind::Clone;
        } else {
            // The outbound guard checks what it can before any connection (scheme, a literal
            // address); names are checked on every connection the import makes.
            let url = state.outbound.check(src).map_err(|e| match e {
                vidi_outbound::OutboundError::BadUrl => {
                    ApiError::invalid_attribute("source", "The source must be an http(s) URL or a video id.")
                }
                e => ApiError::invalid_attribute("source", format!("The source URL is refused: {e}.")),
            })?;
            video.source_kind = SourceKind::Download;
            video.source_ref = Some(url.to_string());
        }
        if video.source_ref.is_none() {
            video.source_ref = Some(src.to_string());
        }
    }
    state.repo.insert_video(&video).await?;
    let (upload, ws, id) = (video.source_kind == SourceKind::Upload, video.workspace_id.clone(), video.id.clone());
    let out = VideoOut::build(&state, video).await?;
    if upload {
        return Ok((StatusCode::CREATED, Json(out)));
    }
    // The source is fetched or copied in the background; 202 says so.
    ingest::queue_import(&state, &ws, &id).await;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// List all the videos of the workspace, filtered, sorted and paginated.
#[utoipa::path(get, path = "/videos", tag = "Videos", operation_id = "LIST-videos",
    params(("title" = Option<String>, Query), ("tags[]" = Option<Vec<String>>, Query), ("metadata" = Option<String>, Query, description = "metadata[key]=value, all must match"),
           ("description" = Option<String>, Query), ("liveStreamId" = Option<String>, Query), ("sortBy" = Option<String>, Query), ("sortOrder" = Option<String>, Query),
           ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of Video objects: {data, pagination}", body = crate::page::Page<VideoOut>), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<VideoOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let fields = [
        ("title", VideoSort::Title),
        ("createdAt", VideoSort::CreatedAt),
        ("publishedAt", VideoSort::PublishedAt),
        ("updatedAt", VideoSort::UpdatedAt),
    ];
    // Newest first unless a sort was asked for.
    let sort = sort(&q, &fields, true)?;
    let filter = VideoFilter {
        title: q.get("title").filter(|s| !s.is_empty()).map(str::to_string),
        description: q.get("description").filter(|s| !s.is_empty()).map(str::to_string),
        tags: q.list("tags").into_iter().filter(|t| !t.is_empty()).collect(),
        metadata: q.map("metadata"),
        live_stream_id: q.get("liveStreamId").filter(|s| !s.is_empty()).map(str::to_string),
        sort_by: sort.by.unwrap_or_default(),
        descending: sort.descending,
    };
    let (videos, total) = state.repo.list_videos(auth.ws(), &filter, req).await?;
    let data = VideoOut::build_all(&state, videos).await?;
    Ok(Json(page("/videos", &q, req, total, data)))
}

/// Show a video.
#[utoipa::path(get, path = "/videos/{videoId}", tag = "Videos", operation_id = "GET_video",
    params(("videoId" = String, Path)),
    responses((status = 200, body = VideoOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<VideoOut>> {
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    Ok(Json(VideoOut::build(&state, v).await?))
}

/// Update a video's editable fields; arrays replace the stored ones, `playerId: null` detaches.
#[utoipa::path(patch, path = "/videos/{videoId}", tag = "Videos", operation_id = "PATCH_videos-videoId",
    params(("videoId" = String, Path)),
    request_body = VideoUpdatePayload,
    responses((status = 200, body = VideoOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: JsonBody<VideoUpdatePayload>,
) -> ApiResult<Json<VideoOut>> {
    let mut v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let body = body.read()?;
    if let Some(t) = body.title {
        check_title(&t)?;
        v.title = t;
    }
    if let Some(d) = body.description.given() {
        v.description = check_description(d)?;
    }
    if let Some(b) = body.public {
        v.public = b;
    }
    if let Some(b) = body.panoramic {
        v.panoramic = b;
    }
    let mp4_turned_on = body.mp4_support.is_some_and(|b| b && !v.mp4_support);
    if let Some(b) = body.mp4_support {
        v.mp4_support = b;
    }
    match body.player_id.given() {
        None => {}
        Some(None) => v.player_id = None,
        Some(Some(p)) => {
            // A player of another workspace is one that does not exist (contract §8).
            if !p.is_empty() && v.player_id.as_deref() != Some(p.as_str()) {
                check_player_of(&state, auth.ws(), &p).await?;
            }
            v.player_id = Some(p).filter(|p| !p.is_empty());
        }
    }
    if let Some(tags) = body.tags {
        v.tags = clean_tags(tags)?;
    }
    if let Some(m) = body.metadata {
        v.metadata = check_metadata(m)?;
    }
    v.updated_at = now_ms();
    state.repo.update_video(&v).await.or_404("videoId")?;
    // Its visibility may have changed: the segment route asks the database again.
    state.visibility.forget(&v.id);
    if mp4_turned_on {
        queue_mp4(&state, &mut v).await?;
    }
    Ok(Json(VideoOut::build(&state, v).await?))
}

/// `mp4Support` was turned on (and written): a video whose encoding has begun gets its MP4 from
/// an `mp4` job (a remux of its ladder, or made by the encoding still running, which reads the
/// flag again at its end), and lists it once it is made. One that is not encoding yet is encoded
/// with its MP4 like any other.
async fn queue_mp4(state: &AppState, v: &mut Video) -> ApiResult<()> {
    if !matches!(v.ingest.probe, Some(ProbeOutcome::Probed(_))) {
        return Ok(());
    }
    let made =
        state.repo.qualities(&v.workspace_id, &v.id).await?.iter().any(|q| q.kind == "mp4" && q.status == "encoded");
    if made && state.blobs.size(&mp4_key(v.id.as_str())).await?.is_some() {
        return Ok(());
    }
    state.repo.set_mp4_pending(&v.workspace_id, &v.id, true).await?;
    v.encoding.mp4_pending = true;
    let job = JobKind::Mp4 { video_id: v.id.clone(), workspace_id: v.workspace_id.clone() };
    jobs::enqueue(state.repo.as_ref(), &state.waker, &job, now_ms(), 3).await?;
    Ok(())
}

/// Delete a video and all its media.
#[utoipa::path(delete, path = "/videos/{videoId}", tag = "Videos", operation_id = "DELETE_videos-videoId",
    params(("videoId" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = video_id(&id)?;
    let v = state.repo.get_video(auth.ws(), &id).await.or_404("videoId")?;
    state.repo.delete_video(auth.ws(), &id).await.or_404("videoId")?;
    state.visibility.forget(&id);
    // The row is gone, so nothing refers to the media any more; a failure here leaves garbage,
    // never a broken video.
    if let Some(session) = &v.ingest.session
        && let Err(e) = state.blobs.abort_chunks(&source_key(id.as_str()), session).await
    {
        tracing::warn!(video = %id, error = %e, "could not drop the upload session");
    }
    state.segments.remove_prefix(&video_prefix(id.as_str()));
    if let Err(e) = state.blobs.delete_prefix(&video_prefix(id.as_str())).await {
        tracing::warn!(video = %id, error = %e, "could not delete the video's media");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Ingest and encoding status of a video.
#[utoipa::path(get, path = "/videos/{videoId}/status", tag = "Videos", operation_id = "GET_videos-videoId-status",
    params(("videoId" = String, Path)),
    responses((status = 200, body = VideoStatus), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn status(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<VideoStatus>> {
    let id = video_id(&id)?;
    let v = state.repo.get_video(auth.ws(), &id).await.or_404("videoId")?;
    let chunks = match v.ingest.mode {
        UploadMode::Part | UploadMode::Bytes => state.repo.chunks(auth.ws(), &id).await?,
        _ => Vec::new(),
    };
    let done = chunks.iter().filter(|c| c.done());
    let mut parts: Vec<u32> = Vec::new();
    let mut ranges: Vec<BytesRange> = Vec::new();
    match v.ingest.mode {
        UploadMode::Part => parts = done.map(|c| c.idx).collect(),
        UploadMode::Bytes => {
            let total = v.ingest.filesize.unwrap_or(0);
            let mut spans: Vec<(u64, u64)> = done.filter_map(|c| c.range).collect();
            spans.sort();
            for (f, t) in spans {
                match ranges.last_mut() {
                    Some(last) if last.to + 1 == f => last.to = t,
                    _ => ranges.push(BytesRange { from: f, to: t, total }),
                }
            }
        }
        _ => {}
    }
    let status = match v.ingest.state {
        IngestState::Missing => "missing",
        IngestState::Uploading | IngestState::Assembling => "uploading",
        IngestState::Uploaded => "uploaded",
    };
    let metadata = match &v.ingest.probe {
        Some(ProbeOutcome::Probed(p)) => {
            let mut m = EncodingMetadata::from_probe(p);
            // The video lasts as long as its clip (its outputs are made of that part alone).
            if let Ok(w) = window_of(v.clip.as_ref(), p) {
                m.duration = w.length(p.duration_s).map(|d| d.round() as u64);
            }
            m
        }
        _ => EncodingMetadata::default(),
    };
    Ok(Json(VideoStatus {
        ingest: VideoStatusIngest {
            status: status.into(),
            filesize: v.ingest.filesize,
            received_bytes: ranges,
            received_parts: UploadParts { parts, total: v.ingest.parts_total },
        },
        encoding: VideoStatusEncoding {
            playable: v.encoding.playable,
            qualities: state
                .repo
                .qualities(auth.ws(), &id)
                .await?
                .into_iter()
                .map(|q| QualityOut { kind: q.kind, quality: q.quality, status: q.status })
                .collect(),
            metadata,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        assert_eq!(clean_tags(vec![" a ".into(), "a".into(), "b".into()]).unwrap(), vec!["a", "b"]);
        assert!(clean_tags(vec![" ".into()]).is_err());
    }
}
