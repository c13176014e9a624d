//! The JSON bodies of `POST /videos` and `PATCH /videos/{videoId}`: api.video's
//! `video-creation-payload` and `video-update-payload`, with the `clip` and `watermark` objects
//! of the creation. Each field reads through `extract::de`, so a wrong type is the
//! `invalid-attribute` problem naming it (`clip[startTimecode]` inside the clip); the handlers
//! in `videos.rs` check the values (lengths, timecodes, players, sources).

use serde::Deserialize;

use super::videos::MetadataOut;
use crate::extract::{Nullable, de};

/// The body of a creation.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(title = "VideoCreationPayload")]
pub struct VideoCreationPayload {
    /// The title (not blank, at most 1024 bytes).
    #[serde(default, deserialize_with = "de::string")]
    #[schema(required = true, value_type = String, max_length = 1024, example = "Maths video")]
    pub title: Option<String>,
    /// At most 5000 characters.
    #[serde(default, deserialize_with = "de::string")]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// A URL to download the source from, or the id of a video of the workspace to copy.
    #[serde(default, deserialize_with = "de::string")]
    pub source: Option<String>,
    /// Private videos need a token to be watched (default true).
    #[serde(default, deserialize_with = "de::boolean")]
    #[schema(default = true)]
    pub public: Option<bool>,
    /// A 360° video (default false).
    #[serde(default, deserialize_with = "de::boolean")]
    #[schema(default = false)]
    pub panoramic: Option<bool>,
    /// Whether an MP4 is made and offered for download (default true).
    #[serde(default, deserialize_with = "de::boolean")]
    #[schema(default = true)]
    pub mp4_support: Option<bool>,
    /// The player theme of the workspace to show the video with.
    #[serde(default, deserialize_with = "de::string")]
    pub player_id: Option<String>,
    /// At most 50 tags of 1 to 255 characters.
    #[serde(default, deserialize_with = "de::strings")]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// At most 50 key/value pairs.
    #[serde(default, deserialize_with = "de::metadata")]
    #[schema(value_type = Option<Vec<MetadataOut>>, max_items = 50)]
    pub metadata: Option<Vec<vidi_core::model::MetadataPair>>,
    /// The part of the source the video is made of.
    #[serde(default, deserialize_with = "de::object")]
    pub clip: Option<VideoClip>,
    /// api.video's `video-watermark`, documented as its clients send it. Refused when given (not
    /// `null`), whatever its shape: the 2023 surface Vidi serves has no `/watermarks`.
    #[serde(default)]
    #[schema(value_type = Option<VideoWatermark>)]
    pub watermark: Option<serde::de::IgnoredAny>,
}

/// `clip`: each timecode `hh:mm:ss(.ms|:frame)` or seconds.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VideoClip {
    #[serde(default, deserialize_with = "de::string")]
    #[schema(pattern = r"^(?:\d{2,3}:[0-5]\d:[0-5]\d(?:\.\d{1,3}|\:\d{1,2})?|\d{1,7})$")]
    pub start_timecode: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    #[schema(pattern = r"^(?:\d{2,3}:[0-5]\d:[0-5]\d(?:\.\d{1,3}|\:\d{1,2})?|\d{1,7})$")]
    pub end_timecode: Option<String>,
}

/// `watermark`: the id of an uploaded image and where it goes, as CSS lengths. Only documented
/// (the field is refused), so it is never read.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct VideoWatermark {
    pub id: Option<String>,
    pub top: Option<String>,
    pub left: Option<String>,
    pub bottom: Option<String>,
    pub right: Option<String>,
    pub width: Option<String>,
    pub height: Option<String>,
    pub opacity: Option<String>,
}

/// The body of an update: the fields given change, the others keep their value. `playerId` and
/// `description` may be `null`, which detaches the player or clears the description.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(title = "VideoUpdatePayload")]
pub struct VideoUpdatePayload {
    /// A player theme of the workspace, or `null` to detach the video's.
    #[serde(default, deserialize_with = "de::nullable_string")]
    #[schema(value_type = Option<String>)]
    pub player_id: Nullable<String>,
    #[serde(default, deserialize_with = "de::string")]
    #[schema(max_length = 1024)]
    pub title: Option<String>,
    /// At most 5000 characters; `null` clears it.
    #[serde(default, deserialize_with = "de::nullable_string")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub description: Nullable<String>,
    #[serde(default, deserialize_with = "de::boolean")]
    pub public: Option<bool>,
    #[serde(default, deserialize_with = "de::boolean")]
    pub panoramic: Option<bool>,
    #[serde(default, deserialize_with = "de::boolean")]
    pub mp4_support: Option<bool>,
    /// Replaces the tags.
    #[serde(default, deserialize_with = "de::strings")]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// Replaces the metadata.
    #[serde(default, deserialize_with = "de::metadata")]
    #[schema(value_type = Option<Vec<MetadataOut>>, max_items = 50)]
    pub metadata: Option<Vec<vidi_core::model::MetadataPair>>,
}
