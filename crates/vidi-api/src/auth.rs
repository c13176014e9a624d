//! Credentials: API keys (HTTP Basic, the key as user name), access tokens (JWT, HS256) and
//! refresh tokens (opaque, stored hashed, rotated on use). Keys are high-entropy secrets, so a
//! SHA-256 lookup is as safe as a slow KDF and fast enough for every request; recent lookups are
//! cached for a short while because every API call authenticates.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vidi_core::id::{ApiKeyId, WorkspaceId};
use vidi_core::model::KeyOwner;
use vidi_core::{CoreResult, Repo};

use crate::{ApiConfig, ApiError, AppState};

const CACHE_TTL: Duration = Duration::from_secs(30);

pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    cache: RwLock<HashMap<String, (KeyOwner, Instant)>>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The API key the token was issued for.
    sub: String,
    ws: String,
    iat: i64,
    exp: i64,
    /// Makes every token distinct, even two issued in the same second.
    jti: String,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A new random secret: 32 bytes, hex.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Creates an API key in `ws` and returns the key itself (shown once, never stored).
pub async fn create_api_key(repo: &dyn Repo, ws: &WorkspaceId, name: &str) -> CoreResult<String> {
    let key = random_secret();
    repo.create_api_key(ws, name, &sha256_hex(&key)).await?;
    Ok(key)
}

impl Authenticator {
    pub async fn load(repo: &dyn Repo, _cfg: &ApiConfig) -> CoreResult<Self> {
        // Shared by every node through the database, so any node verifies any node's tokens.
        let secret = repo.setting_or_init("jwt_secret", &random_secret()).await?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Authenticator {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            cache: RwLock::new(HashMap::new()),
        })
    }

    pub async fn owner_of_key(&self, repo: &dyn Repo, key: &str) -> CoreResult<Option<KeyOwner>> {
        let hash = sha256_hex(key);
        if let Some((owner, at)) = self.cache.read().expect("cache lock").get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(owner.clone()));
        }
        let owner = repo.find_api_key(&hash).await?;
        if let Some(o) = &owner {
            let mut cache = self.cache.write().expect("cache lock");
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (o.clone(), Instant::now()));
        }
        Ok(owner)
    }

    pub fn issue_access(&self, owner: &KeyOwner, now_s: i64, ttl_s: i64) -> String {
        let claims = Claims {
            sub: owner.key_id.to_string(),
            ws: owner.workspace_id.to_string(),
            iat: now_s,
            exp: now_s + ttl_s,
            jti: vidi_core::id::random_body(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    pub fn verify_access(&self, token: &str) -> Option<KeyOwner> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        Some(KeyOwner {
            key_id: ApiKeyId::from_trusted(data.claims.sub),
            workspace_id: WorkspaceId::from_trusted(data.claims.ws),
        })
    }
}

/// The authenticated caller. Extracting it is what makes a route require credentials.
pub struct Auth(pub KeyOwner);

impl Auth {
    pub fn ws(&self) -> &WorkspaceId {
        &self.0.workspace_id
    }
}

fn missing_header() -> ApiError {
    ApiError::unauthorized("authentication-missing-authorization-header", "The \"Authorization\" header is missing.")
}

fn bad_header() -> ApiError {
    ApiError::unauthorized(
        "authentication-invalid-authorization-header-value",
        "The \"Authorization\" header value is invalid.",
    )
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(AUTHORIZATION).map(|v| v.to_str().map(str::trim));
        // Node 2.5 sends an empty Authorization header when it has no key: same as none.
        let value = match value {
            None | Some(Ok("")) => return Err(missing_header()),
            Some(Err(_)) => return Err(bad_header()),
            Some(Ok(v)) => v,
        };
        let (scheme, cred) = value.split_once(' ').ok_or_else(bad_header)?;
        let cred = cred.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(cred).map_err(|_| bad_header())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad_header())?;
            let key = decoded.split_once(':').map_or(decoded.as_str(), |(k, _)| k);
            let invalid = || ApiError::unauthorized("authentication-invalid-api-key", "The API key is invalid.");
            if key.is_empty() {
                return Err(invalid());
            }
            let owner = state.auth.owner_of_key(state.repo.as_ref(), key).await?.ok_or_else(invalid)?;
            Ok(Auth(owner))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let owner = state.auth.verify_access(cred).ok_or_else(|| {
                ApiError::unauthorized("authentication-invalid-access-token", "The access token is invalid or expired.")
            })?;
            Ok(Auth(owner))
        } else {
            Err(bad_header())
        }
    }
}
