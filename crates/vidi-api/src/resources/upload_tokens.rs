//! `/upload-tokens`: delegated upload tokens (contract rows 14–17, §5): generate, list the active
//! ones, show, delete. What a token allows, `POST /upload?token=`, is in `upload.rs`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use vidi_core::id::UploadTokenId;
use vidi_core::repo::UploadTokenSort;
use vidi_core::time::{now_ms, to_rfc3339};
use vidi_core::upload_token::{MAX_TTL_SECS, UploadToken};

use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{JsonBody, Query, de};
use crate::page::{Page, page, page_request, sort};
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/upload-tokens", get(list).post(create))
        .route("/upload-tokens/{uploadToken}", get(show).delete(delete))
}

/// An upload token as api.video returns it. `expiresAt` is omitted for a token that never
/// expires (it is the one nullable field here, and omitting it suits every client).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTokenOut {
    pub token: String,
    pub ttl: i64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl From<&UploadToken> for UploadTokenOut {
    fn from(t: &UploadToken) -> Self {
        UploadTokenOut {
            token: t.token.to_string(),
            ttl: t.ttl,
            created_at: to_rfc3339(t.created_at),
            expires_at: t.expires_at.map(to_rfc3339),
        }
    }
}

/// The body of a creation: api.video's `token-creation-payload`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenCreationPayload {
    /// How many seconds the token is valid; 0 or absent: until it is deleted (`null` is refused).
    #[serde(default, deserialize_with = "de::integer_not_null")]
    #[schema(value_type = i64, required = false, minimum = 0, maximum = 2147483647, default = 0)]
    pub ttl: Option<i64>,
}

fn token_id(raw: &str) -> ApiResult<UploadTokenId> {
    UploadTokenId::parse(raw).ok_or_else(|| ApiError::not_found("uploadToken"))
}

/// Generate an upload token, valid for `ttl` seconds (0 or absent: until deleted).
#[utoipa::path(post, path = "/upload-tokens", tag = "Upload Tokens", operation_id = "POST_upload-tokens",
    request_body = TokenCreationPayload,
    responses((status = 200, body = UploadTokenOut), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<TokenCreationPayload>,
) -> ApiResult<Json<UploadTokenOut>> {
    let ttl = body.read()?.ttl.unwrap_or(0);
    if !(0..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::invalid_attribute(
            "ttl",
            format!("The ttl must be between 0 and {MAX_TTL_SECS} seconds."),
        ));
    }
    let token = UploadToken::new(auth.ws().clone(), ttl, now_ms());
    state.repo.insert_upload_token(&token).await?;
    // 200, not 201: as api.video answers (contract §14.7).
    Ok(Json(UploadTokenOut::from(&token)))
}

/// List the workspace's active upload tokens.
#[utoipa::path(get, path = "/upload-tokens", tag = "Upload Tokens", operation_id = "LIST-upload-tokens",
    params(("sortBy" = Option<String>, Query, description = "createdAt or ttl"), ("sortOrder" = Option<String>, Query),
           ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of UploadToken objects: {data, pagination}", body = crate::page::Page<UploadTokenOut>), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<UploadTokenOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let sort = sort(&q, &[("createdAt", UploadTokenSort::CreatedAt), ("ttl", UploadTokenSort::Ttl)], false)?;
    let (tokens, total) =
        state.repo.list_upload_tokens(auth.ws(), sort.by.unwrap_or_default(), sort.descending, req, now_ms()).await?;
    let data = tokens.iter().map(UploadTokenOut::from).collect();
    Ok(Json(page("/upload-tokens", &q, req, total, data)))
}

/// Show an upload token (an expired one is not found).
#[utoipa::path(get, path = "/upload-tokens/{uploadToken}", tag = "Upload Tokens", operation_id = "GET_upload-tokens-uploadToken",
    params(("uploadToken" = String, Path)),
    responses((status = 200, body = UploadTokenOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<UploadTokenOut>> {
    let t = state.repo.get_upload_token(auth.ws(), &token_id(&id)?, now_ms()).await.or_404("uploadToken")?;
    Ok(Json(UploadTokenOut::from(&t)))
}

/// Delete an upload token: uploads on it are refused from now on, including the later parts of
/// an upload in progress.
#[utoipa::path(delete, path = "/upload-tokens/{uploadToken}", tag = "Upload Tokens", operation_id = "DELETE_upload-tokens-uploadToken",
    params(("uploadToken" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.repo.delete_upload_token(auth.ws(), &token_id(&id)?).await.or_404("uploadToken")?;
    Ok(StatusCode::NO_CONTENT)
}
