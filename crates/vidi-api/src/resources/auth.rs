//! `POST /auth/api-key` and `POST /auth/refresh`: trade an API key for an access token, and a
//! refresh token for a fresh pair. Failures here are 400, not 401 (contract §1.2). Any
//! Authorization header is ignored: Node 2.5 sends Basic on these calls too.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use vidi_core::time::now_ms;

use crate::auth::{random_secret, sha256_hex};
use crate::extract::{JsonBody, de};
use crate::{ApiError, ApiResult, AppState};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatePayload {
    #[serde(default, deserialize_with = "de::string")]
    #[schema(required = true, value_type = String)]
    api_key: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokenPayload {
    #[serde(default, deserialize_with = "de::string")]
    #[schema(required = true, value_type = String)]
    refresh_token: Option<String>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/auth/api-key", post(authenticate)).route("/auth/refresh", post(refresh))
}

async fn tokens_for(state: &AppState, owner: &vidi_core::model::KeyOwner, refresh: String) -> AccessToken {
    let now_s = now_ms() / 1000;
    AccessToken {
        access_token: state.auth.issue_access(owner, now_s, state.cfg.access_ttl_s),
        token_type: "Bearer".into(),
        refresh_token: refresh,
        expires_in: state.cfg.access_ttl_s,
    }
}

/// Get a bearer token from an API key.
#[utoipa::path(post, path = "/auth/api-key", tag = "Advanced authentication", operation_id = "POST_auth-api-key",
    request_body = AuthenticatePayload,
    responses((status = 200, body = AccessToken), (status = 400, body = crate::error::Problem)))]
pub async fn authenticate(
    State(state): State<AppState>,
    body: JsonBody<AuthenticatePayload>,
) -> ApiResult<Json<AccessToken>> {
    let key = body.read()?.api_key.ok_or_else(|| ApiError::attribute_required("apiKey"))?;
    let owner = state.auth.owner_of_key(state.repo.as_ref(), &key).await?.ok_or_else(ApiError::bad_credentials)?;
    let refresh = random_secret();
    let expires = now_ms() + state.cfg.refresh_ttl_s * 1000;
    state.repo.insert_refresh_token(&owner, &sha256_hex(&refresh), expires).await?;
    Ok(Json(tokens_for(&state, &owner, refresh).await))
}

/// Trade a refresh token for a new access token and a new refresh token.
#[utoipa::path(post, path = "/auth/refresh", tag = "Advanced authentication", operation_id = "POST_auth-refresh",
    request_body = RefreshTokenPayload,
    responses((status = 200, body = AccessToken), (status = 400, body = crate::error::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    body: JsonBody<RefreshTokenPayload>,
) -> ApiResult<Json<AccessToken>> {
    let old = body.read()?.refresh_token.ok_or_else(|| ApiError::attribute_required("refreshToken"))?;
    let new = random_secret();
    let now = now_ms();
    // The old token stays usable for a minute after its rotation, so a retried refresh whose
    // first answer was lost does not lock the client out.
    let owner = state
        .repo
        .rotate_refresh_token(&sha256_hex(&old), &sha256_hex(&new), now, 60_000, now + state.cfg.refresh_ttl_s * 1000)
        .await?
        .ok_or_else(ApiError::bad_credentials)?;
    Ok(Json(tokens_for(&state, &owner, new).await))
}
