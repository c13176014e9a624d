//! `/players`: player themes (create, list, show, update, delete) and their logo (contract rows
//! 34–40, §2 PlayerTheme, §8), plus the public route that serves an uploaded logo.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use vidi_core::id::{PlayerId, WorkspaceId, random_body};
use vidi_core::keys::logo_key;
use vidi_core::player::{
    COLOUR_FIELDS, MAX_LINK_CHARS, MAX_LOGO_BYTES, MAX_LOGO_HEIGHT, MAX_LOGO_WIDTH, MAX_NAME_CHARS, PlayerTheme,
    SWITCH_FIELDS, ThemeSettings, sniff_logo, valid_colour,
};
use vidi_core::repo::PlayerSort;
use vidi_core::time::{now_ms, to_rfc3339};

use super::source::Form;
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{JsonBody, Query, de};
use crate::page::{Page, page, page_request, sort};
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/players", get(list).post(create))
        .route("/players/{playerId}", get(show).patch(update).delete(delete))
        .route("/players/{playerId}/logo", post(upload_logo).delete(delete_logo))
        // Public: the logo is shown on player pages anyone may open.
        .route("/assets/players/{playerId}/{file}", get(logo_file))
}

// ---- wire types ------------------------------------------------------------------------------

/// A player theme as api.video returns it. Only the schema's fields: the Python client refuses
/// any other (the spec's examples' `shape*`, `language` are accepted on input, never echoed).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerThemeOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = ThemeSettingsSchema)]
    pub settings: ThemeSettings,
    pub player_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub assets: PlayerAssets,
}

/// What `ThemeSettings` (core, which knows nothing of OpenAPI) puts in [`PlayerThemeOut`], for
/// /openapi.json only: api.video's schema lists these fields at the theme's top level, and a
/// test (`settings_schema_names_every_serialised_field`) keeps the two lists equal.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ThemeSettingsSchema {
    text: String,
    link: String,
    link_hover: String,
    /// Omitted until set.
    link_active: Option<String>,
    track_played: String,
    track_unplayed: String,
    track_background: String,
    background_top: String,
    background_bottom: String,
    background_text: String,
    enable_api: bool,
    enable_controls: bool,
    force_autoplay: bool,
    hide_title: bool,
    force_loop: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlayerAssets {
    /// The uploaded logo's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Where a click on the logo leads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The public URL of a stored logo (its key's file name is in the URL, so a new logo is a new URL).
pub fn logo_url(public_url: &str, p: &PlayerTheme) -> Option<String> {
    let key = p.logo_key.as_deref()?;
    let file = key.rsplit('/').next()?;
    Some(format!("{public_url}/assets/players/{}/{file}", p.id))
}

impl PlayerThemeOut {
    pub fn build(state: &AppState, p: &PlayerTheme) -> Self {
        PlayerThemeOut {
            name: p.name.clone(),
            settings: p.settings.clone(),
            player_id: p.id.to_string(),
            created_at: to_rfc3339(p.created_at),
            updated_at: to_rfc3339(p.updated_at),
            assets: PlayerAssets { logo: logo_url(&state.cfg.public_url, p), link: p.logo_link.clone() },
        }
    }
}

pub(crate) fn player_id(raw: &str) -> ApiResult<PlayerId> {
    PlayerId::parse(raw).ok_or_else(|| ApiError::not_found("playerId"))
}

/// The player a video's `playerId` names, which must be one of the same workspace: another
/// workspace's player is, to this one, a player that does not exist.
pub(crate) async fn check_player_of(state: &AppState, ws: &WorkspaceId, raw: &str) -> ApiResult<()> {
    let unknown = || ApiError::invalid_attribute("playerId", format!("The player {raw:?} does not exist."));
    let id = PlayerId::parse(raw).ok_or_else(unknown)?;
    match state.repo.get_player(ws, &id).await {
        Ok(_) => Ok(()),
        Err(vidi_core::CoreError::NotFound) => Err(unknown()),
        Err(e) => Err(e.into()),
    }
}

/// The body of a creation or an update: api.video's `player-theme-creation-payload` and
/// `player-theme-update-payload`, which have the same fields, all optional. Unknown fields are
/// ignored (the spec's own examples send some, such as `shapeMargin` and `language`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerThemePayload {
    /// A name for the theme.
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false, max_length = 100)]
    pub name: Option<String>,
    /// RGBA colour of timer text (default rgba(255, 255, 255, 1)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub text: Option<String>,
    /// RGBA colour of all controls (default rgba(255, 255, 255, 1)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub link: Option<String>,
    /// RGBA colour of all controls when hovered (default rgba(255, 255, 255, 1)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub link_hover: Option<String>,
    /// RGBA colour of the play button when hovered.
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub link_active: Option<String>,
    /// RGBA colour of the playback bar's played content (default rgba(88, 131, 255, .95)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub track_played: Option<String>,
    /// RGBA colour of the playback bar's downloaded but unplayed content (default rgba(255, 255, 255, .35)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub track_unplayed: Option<String>,
    /// RGBA colour of the playback bar's background (default rgba(255, 255, 255, .2)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub track_background: Option<String>,
    /// RGBA colour of the top half of the background (default rgba(0, 0, 0, .7)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub background_top: Option<String>,
    /// RGBA colour of the bottom half of the background (default rgba(0, 0, 0, .7)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub background_bottom: Option<String>,
    /// RGBA colour of the title text (default rgba(255, 255, 255, 1)).
    #[serde(default, deserialize_with = "de::string_not_null")]
    #[schema(value_type = String, required = false)]
    pub background_text: Option<String>,
    /// Enables or disables Player SDK access (default true).
    #[serde(default, deserialize_with = "de::boolean_not_null")]
    #[schema(value_type = bool, required = false)]
    pub enable_api: Option<bool>,
    /// Enables or disables the player's controls (default true).
    #[serde(default, deserialize_with = "de::boolean_not_null")]
    #[schema(value_type = bool, required = false)]
    pub enable_controls: Option<bool>,
    /// Enables or disables autoplay (default false).
    #[serde(default, deserialize_with = "de::boolean_not_null")]
    #[schema(value_type = bool, required = false)]
    pub force_autoplay: Option<bool>,
    /// Enables or disables hiding the title (default false).
    #[serde(default, deserialize_with = "de::boolean_not_null")]
    #[schema(value_type = bool, required = false)]
    pub hide_title: Option<bool>,
    /// Enables or disables looping (default false).
    #[serde(default, deserialize_with = "de::boolean_not_null")]
    #[schema(value_type = bool, required = false)]
    pub force_loop: Option<bool>,
}

impl PlayerThemePayload {
    /// The colours given, by wire name, in [`COLOUR_FIELDS`]' order.
    fn colours(&self) -> [(&'static str, &Option<String>); 10] {
        [
            ("text", &self.text),
            ("link", &self.link),
            ("linkHover", &self.link_hover),
            ("linkActive", &self.link_active),
            ("trackPlayed", &self.track_played),
            ("trackUnplayed", &self.track_unplayed),
            ("trackBackground", &self.track_background),
            ("backgroundTop", &self.background_top),
            ("backgroundBottom", &self.background_bottom),
            ("backgroundText", &self.background_text),
        ]
    }

    /// The switches given, by wire name, in [`SWITCH_FIELDS`]' order.
    fn switches(&self) -> [(&'static str, Option<bool>); 5] {
        [
            ("enableApi", self.enable_api),
            ("enableControls", self.enable_controls),
            ("forceAutoplay", self.force_autoplay),
            ("hideTitle", self.hide_title),
            ("forceLoop", self.force_loop),
        ]
    }
}

/// Applies a creation or update payload: the fields given must have, for colours, a colour's
/// shape, and the name a bounded length. On an error the caller drops what was changed.
fn apply(body: PlayerThemePayload, name: &mut Option<String>, s: &mut ThemeSettings) -> ApiResult<()> {
    debug_assert!(body.colours().iter().map(|c| c.0).eq(COLOUR_FIELDS));
    debug_assert!(body.switches().iter().map(|c| c.0).eq(SWITCH_FIELDS));
    if let Some(n) = &body.name {
        if n.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::invalid_attribute(
                "name",
                format!("The name must be at most {MAX_NAME_CHARS} characters."),
            ));
        }
        *name = Some(n.clone());
    }
    for (field, colour) in body.colours() {
        let Some(c) = colour.clone() else { continue };
        if !valid_colour(&c) {
            return Err(ApiError::invalid_attribute(
                field,
                format!(
                    "The \"{field}\" attribute must be a colour such as \"rgba(255, 255, 255, .95)\" or \"#ffffff\"."
                ),
            ));
        }
        match s.colour_mut(field) {
            Some(slot) => *slot = c,
            None => s.link_active = Some(c), // the one optional colour
        }
    }
    for (field, switch) in body.switches() {
        if let Some(b) = switch
            && let Some(slot) = s.switch_mut(field)
        {
            *slot = b;
        }
    }
    Ok(())
}

// ---- handlers --------------------------------------------------------------------------------

/// Create a player theme.
#[utoipa::path(post, path = "/players", tag = "Player Themes", operation_id = "POST_players",
    request_body = PlayerThemePayload,
    responses((status = 201, body = PlayerThemeOut), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<PlayerThemePayload>,
) -> ApiResult<(StatusCode, Json<PlayerThemeOut>)> {
    let mut name = None;
    let mut settings = ThemeSettings::default();
    apply(body.read()?, &mut name, &mut settings)?;
    let now = now_ms();
    let player = PlayerTheme {
        id: PlayerId::generate(),
        workspace_id: auth.ws().clone(),
        name,
        settings,
        logo_key: None,
        logo_link: None,
        created_at: now,
        updated_at: now,
    };
    state.repo.insert_player(&player).await?;
    Ok((StatusCode::CREATED, Json(PlayerThemeOut::build(&state, &player))))
}

/// List the workspace's player themes.
#[utoipa::path(get, path = "/players", tag = "Player Themes", operation_id = "LIST-players",
    params(("sortBy" = Option<String>, Query, description = "name, createdAt or updatedAt"), ("sortOrder" = Option<String>, Query),
           ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of PlayerTheme objects: {data, pagination}", body = crate::page::Page<PlayerThemeOut>), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<PlayerThemeOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let fields =
        [("name", PlayerSort::Name), ("createdAt", PlayerSort::CreatedAt), ("updatedAt", PlayerSort::UpdatedAt)];
    let sort = sort(&q, &fields, false)?;
    let (players, total) =
        state.repo.list_players(auth.ws(), sort.by.unwrap_or_default(), sort.descending, req).await?;
    let data = players.iter().map(|p| PlayerThemeOut::build(&state, p)).collect();
    Ok(Json(page("/players", &q, req, total, data)))
}

/// Show a player theme.
#[utoipa::path(get, path = "/players/{playerId}", tag = "Player Themes", operation_id = "GET_players-playerId",
    params(("playerId" = String, Path)),
    responses((status = 200, body = PlayerThemeOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PlayerThemeOut>> {
    let p = state.repo.get_player(auth.ws(), &player_id(&id)?).await.or_404("playerId")?;
    Ok(Json(PlayerThemeOut::build(&state, &p)))
}

/// Update a player theme; fields not given keep their value.
#[utoipa::path(patch, path = "/players/{playerId}", tag = "Player Themes", operation_id = "PATCH_players-playerId",
    params(("playerId" = String, Path)),
    request_body(content = PlayerThemePayload, description = "The fields to change; those not given keep their value."),
    responses((status = 200, body = PlayerThemeOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: JsonBody<PlayerThemePayload>,
) -> ApiResult<Json<PlayerThemeOut>> {
    let mut p = state.repo.get_player(auth.ws(), &player_id(&id)?).await.or_404("playerId")?;
    apply(body.read()?, &mut p.name, &mut p.settings)?;
    p.updated_at = now_ms().max(p.updated_at);
    state.repo.update_player(&p).await.or_404("playerId")?;
    Ok(Json(PlayerThemeOut::build(&state, &p)))
}

/// Delete a player theme; the videos that used it no longer name it.
#[utoipa::path(delete, path = "/players/{playerId}", tag = "Player Themes", operation_id = "DELETE_players-playerId",
    params(("playerId" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let logo = state.repo.delete_player(auth.ws(), &player_id(&id)?).await.or_404("playerId")?;
    drop_logo(&state, logo).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a logo nothing refers to any more. A failure leaves garbage, never a broken player.
async fn drop_logo(state: &AppState, key: Option<String>) {
    if let Some(key) = key
        && let Err(e) = state.blobs.delete(&key).await
    {
        tracing::warn!(key, error = %e, "could not delete a replaced logo");
    }
}

/// Upload a logo: PNG or JPEG, at most 200×100 px and 100 KiB, kept byte for byte (a PNG keeps
/// its transparency), with an optional click-through `link`.
#[utoipa::path(post, path = "/players/{playerId}/logo", tag = "Player Themes", operation_id = "POST_players-playerId-logo",
    params(("playerId" = String, Path)),
    request_body(content_type = "multipart/form-data", content = String, description = "file (PNG or JPEG, ≤ 200×100 px, ≤ 100 KiB) and link"),
    responses((status = 201, body = PlayerThemeOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn upload_logo(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<PlayerThemeOut>)> {
    let mut form = Form::open(&headers, body)?;
    let result = async {
        let p = state.repo.get_player(auth.ws(), &player_id(&id)?).await.or_404("playerId")?;
        // `link` may come before or after the file: the whole form is read first.
        let bytes = form.small_file(MAX_LOGO_BYTES).await?;
        let invalid = |detail: &str| {
            ApiError::bad_request("uploaded-file-invalid-file", "The uploaded file is invalid.", "file").detail(detail)
        };
        let image = sniff_logo(&bytes).map_err(invalid)?.ok_or_else(|| {
            ApiError::bad_request(
                "uploaded-file-extension-invalid",
                "Only [jpg, jpeg, png] extensions are supported.",
                "file",
            )
        })?;
        if image.width == 0 || image.height == 0 || image.width > MAX_LOGO_WIDTH || image.height > MAX_LOGO_HEIGHT {
            return Err(invalid(&format!(
                "A logo may be at most {MAX_LOGO_WIDTH}×{MAX_LOGO_HEIGHT} pixels; this one is {}×{}.",
                image.width, image.height
            )));
        }
        let link = form.fields.iter().find(|(k, _)| k == "link").map(|(_, v)| v.trim().to_string());
        let link = link.filter(|l| !l.is_empty());
        if let Some(l) = &link
            && !valid_link(l)
        {
            return Err(ApiError::invalid_attribute("link", "The link must be an absolute http or https URL."));
        }
        let key = logo_key(p.id.as_str(), &random_body()[..12], image.ext);
        state.blobs.put_bytes(&key, bytes).await?;
        let replaced = match state.repo.set_player_logo(auth.ws(), &p.id, Some((&key, link.as_deref())), now_ms()).await
        {
            Ok(replaced) => replaced,
            Err(e) => {
                drop_logo(&state, Some(key)).await;
                return Err(ApiError::from_core(e, "playerId"));
            }
        };
        drop_logo(&state, replaced).await;
        let p = state.repo.get_player(auth.ws(), &p.id).await.or_404("playerId")?;
        Ok((StatusCode::CREATED, Json(PlayerThemeOut::build(&state, &p))))
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

/// A click-through link is rendered as an `<a href>` on player pages: only absolute http(s).
fn valid_link(l: &str) -> bool {
    l.chars().count() <= MAX_LINK_CHARS
        && url::Url::parse(l).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Delete a player theme's logo (and its link).
#[utoipa::path(delete, path = "/players/{playerId}/logo", tag = "Player Themes", operation_id = "DELETE_players-playerId-logo",
    params(("playerId" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete_logo(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = player_id(&id)?;
    let replaced = state.repo.set_player_logo(auth.ws(), &id, None, now_ms()).await.or_404("playerId")?;
    drop_logo(&state, replaced).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Serves an uploaded logo. The file name carries the upload's nonce, so the URL of a replaced
/// logo stops working and the current one may be cached for ever.
async fn logo_file(State(state): State<AppState>, Path((id, file)): Path<(String, String)>) -> ApiResult<Response> {
    let id = player_id(&id)?;
    let (stem, ext) = file.rsplit_once('.').ok_or_else(|| ApiError::not_found("file"))?;
    let nonce = stem.strip_prefix("logo-").ok_or_else(|| ApiError::not_found("file"))?;
    if !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) || !matches!(ext, "png" | "jpg") {
        return Err(ApiError::not_found("file"));
    }
    let key = logo_key(id.as_str(), nonce, ext);
    let stream = state.blobs.get(&key, None).await.or_404("file")?;
    let ct = if ext == "png" { "image/png" } else { "image/jpeg" };
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use vidi_core::player::ThemeSettings;

    #[test]
    fn settings_schema_names_every_serialised_field() {
        let settings = ThemeSettings { link_active: Some("rgba(0, 0, 0, 1)".into()), ..Default::default() };
        let wire = serde_json::to_value(&settings).unwrap();
        let mut serialised: Vec<String> = wire.as_object().unwrap().keys().cloned().collect();
        let schema = serde_json::to_value(super::ThemeSettingsSchema::schema()).unwrap();
        let mut documented: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        serialised.sort();
        documented.sort();
        assert_eq!(serialised, documented);
    }
}
