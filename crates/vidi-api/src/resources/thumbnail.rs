//! `PATCH /videos/{videoId}/thumbnail` (pick a frame by timecode) and
//! `POST /videos/{videoId}/thumbnail` (upload a JPEG, PNG or WebP image). Both store a JPEG made
//! by ffmpeg, so an upload that is not really an image is refused rather than served.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use vidi_core::keys::thumbnail_key;
use vidi_core::model::{IngestState, ProbeOutcome, Video};
use vidi_core::scratch::Scratch;

use super::source::Form;
use super::videos::{VideoOut, valid_timecode, video_id};
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{JsonBody, de};
use crate::{ApiError, ApiResult, AppState};
use vidi_core::clip::{Window, fps_of, seconds, window_of};

const MAX_IMAGE: usize = 8 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/videos/{videoId}/thumbnail", post(upload).patch(pick))
}

/// Stores the JPEG at `out` as the video's thumbnail and records it. A failure here is logged,
/// not returned: the frame was taken, and the previous thumbnail stays in place.
async fn store(state: &AppState, v: &Video, out: &std::path::Path) {
    let key = thumbnail_key(v.id.as_str());
    let stored = async {
        state.blobs.put_file(&key, out).await?;
        state.repo.set_thumbnail(&v.workspace_id, &v.id, &key).await
    }
    .await;
    if let Err(e) = stored {
        tracing::error!(video = %v.id, error = %e, "could not store a thumbnail");
    }
}

/// The body of a pick: api.video's `video-thumbnail-pick-payload`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(title = "ThumbnailPickPayload")]
pub struct ThumbnailPickPayload {
    /// The frame to take: `hh:mm:ss.ms`, `hh:mm:ss:frame` or seconds, such as `00:01:00.000`;
    /// past the end, the first frame.
    #[serde(default, deserialize_with = "de::string")]
    #[schema(required = true, value_type = String, example = "00:00:00.000")]
    pub timecode: Option<String>,
}

/// Pick the thumbnail from a frame of the video.
#[utoipa::path(patch, path = "/videos/{videoId}/thumbnail", tag = "Videos", operation_id = "PATCH_videos-videoId-thumbnail",
    params(("videoId" = String, Path)),
    request_body = ThumbnailPickPayload,
    responses((status = 200, body = VideoOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn pick(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: JsonBody<ThumbnailPickPayload>,
) -> ApiResult<Json<VideoOut>> {
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let tc = body.read()?.timecode.ok_or_else(|| ApiError::attribute_required("timecode"))?;
    if !valid_timecode(&tc) {
        return Err(ApiError::invalid_attribute(
            "timecode",
            "The timecode must be hh:mm:ss(.ms), hh:mm:ss:frame or seconds.",
        ));
    }
    let (Some(key), IngestState::Uploaded) = (v.ingest.source_key.clone(), v.ingest.state) else {
        return Err(ApiError::invalid_attribute("timecode", "The video has no source to take a frame from yet."));
    };
    let probe = match &v.ingest.probe {
        Some(ProbeOutcome::Probed(p)) => Some(p),
        _ => None,
    };
    let fps = fps_of(probe);
    // A timecode is of the video, which is its clip of the source.
    let window = probe.and_then(|p| window_of(v.clip.as_ref(), p).ok()).unwrap_or(Window::WHOLE);
    let duration = window.length(probe.and_then(|p| p.duration_s)).unwrap_or(0.0);
    // A timecode past the end falls back to the first frame (as api.video does).
    let mut at = seconds(&tc, fps);
    if at >= duration {
        at = 0.0;
    }
    let at = window.start_s + at;
    // Media tools read local files only, and write only in a scratch folder of this request's.
    let scratch = Scratch::create(&state.cfg.work_dir, "api")?;
    let input = state.blobs.local_input(&key, scratch.path()).await?;
    let out = scratch.path().join("thumbnail.jpg");
    vidi_media::encode::thumbnail(&state.media, input.as_str(), at, &out).await.map_err(|e| {
        ApiError::invalid_attribute("timecode", format!("No frame could be taken from the source: {e}"))
    })?;
    store(&state, &v, &out).await;
    let v = state.repo.get_video(auth.ws(), &v.id).await.or_404("videoId")?;
    Ok(Json(VideoOut::build(&state, v).await?))
}

/// What the first bytes say the image is.
fn image_kind(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

/// The JPEG made from the image file of an upload form (JPEG, PNG or WebP, at most 8 MiB), in a
/// scratch folder that lives as long as the returned guard. Videos and live streams both take
/// thumbnails this way.
pub(crate) async fn uploaded_jpeg(state: &AppState, form: &mut Form) -> ApiResult<(Scratch, std::path::PathBuf)> {
    let bytes = form.small_file(MAX_IMAGE).await?;
    let kind = image_kind(&bytes).ok_or_else(|| {
        ApiError::bad_request(
            "uploaded-file-extension-invalid",
            "Only [jpg, jpeg, png, webp] extensions are supported.",
            "file",
        )
    })?;
    let scratch = Scratch::create(&state.cfg.work_dir, "api")?;
    let src = scratch.path().join(format!("upload.{kind}"));
    tokio::fs::write(&src, &bytes).await.map_err(|e| ApiError::from(vidi_core::CoreError::from(e)))?;
    let out = scratch.path().join("thumbnail.jpg");
    vidi_media::encode::thumbnail_from_image(&state.media, &src, kind, &out)
        .await
        .map_err(|_| ApiError::bad_request("uploaded-file-invalid-file", "The uploaded file is invalid.", "file"))?;
    Ok((scratch, out))
}

/// Upload a thumbnail image (JPEG, PNG or WebP, at most 8 MiB).
#[utoipa::path(post, path = "/videos/{videoId}/thumbnail", tag = "Videos", operation_id = "POST_videos-videoId-thumbnail",
    params(("videoId" = String, Path)),
    request_body(content_type = "multipart/form-data", content = String, description = "one image file part"),
    responses((status = 200, body = VideoOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<VideoOut>> {
    let mut form = Form::open(&headers, body)?;
    let result = async {
        let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
        let (_scratch, out) = uploaded_jpeg(&state, &mut form).await?;
        store(&state, &v, &out).await;
        let v = state.repo.get_video(auth.ws(), &v.id).await.or_404("videoId")?;
        Ok(Json(VideoOut::build(&state, v).await?))
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timecodes_to_seconds() {
        assert_eq!(seconds("124", 25.0), 124.0);
        assert_eq!(seconds("00:01:00.500", 25.0), 60.5);
        assert_eq!(seconds("00:00:01:12", 24.0), 1.5);
    }

    #[test]
    fn images_by_content() {
        assert_eq!(image_kind(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpg"));
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(image_kind(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(image_kind(b"GIF89a"), None);
    }
}
