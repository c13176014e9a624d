//! `GET /account` (from the 2021 spec; no 2023 client calls it): quota and features.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::Auth;
use crate::{ApiResult, AppState};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Account {
    pub quota: AccountQuota,
    pub features: Vec<String>,
    pub environment: String,
}

/// Storage quota, in bytes: used by complete video sources, remaining, and the configured total.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountQuota {
    pub quota_used: u64,
    pub quota_remaining: u64,
    pub quota_total: u64,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/account", get(account))
}

/// Get the account's quota and features.
#[utoipa::path(get, path = "/account", tag = "Account", operation_id = "GET_account",
    responses((status = 200, body = Account), (status = 401, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn account(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Account>> {
    let used = state.repo.stored_bytes(auth.ws()).await?;
    let total = state.cfg.quota_bytes;
    Ok(Json(Account {
        quota: AccountQuota { quota_used: used, quota_remaining: total.saturating_sub(used), quota_total: total },
        // What this server does today; grows as features land.
        features: vec!["app.dynamic_metadata".into()],
        environment: "production".into(),
    }))
}
