//! Credentials: API keys (HTTP Basic, the key as user name), access tokens (JWT, HS256) and
//! refresh tokens (opaque, stored hashed, rotated on use). Keys are high-entropy secrets, so a
//! SHA-256 lookup is as safe as a slow KDF and fast enough for every request; recent lookups are
//! cached for a short while because every API call authenticates. An access token names its key,
//! and the key may be revoked before the token expires, so each use also checks the key, through
//! the same kind of cache: a revocation takes effect on every node within the cache's lifetime.

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

/// The longest a node may act on what it read about a key: a revoked key (and every access token
/// issued for it) stops working everywhere within this. `ApiConfig::key_cache_ttl` can only
/// shorten it.
pub const MAX_KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Entries per cache. Basic credentials come from the network, so the caches must not grow with
/// whatever callers send.
const KEY_CACHE_CAP: usize = 10_000;

/// A map whose entries expire: what this node remembers of the database's answers about keys.
struct TtlCache<K, V> {
    ttl: Duration,
    cap: usize,
    map: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration, cap: usize) -> Self {
        TtlCache { ttl, cap, map: RwLock::new(HashMap::new()) }
    }

    fn get<Q: std::hash::Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let map = self.map.read().expect("cache lock");
        map.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    /// `read_at` is when the database was asked, not when it answered, so an entry never outlives
    /// the fact it records by more than the TTL.
    fn insert(&self, key: K, value: V, read_at: Instant) {
        let mut map = self.map.write().expect("cache lock");
        if map.len() >= self.cap && !map.contains_key(&key) {
            map.retain(|_, (_, at)| at.elapsed() < self.ttl);
            // Every entry still fresh: start over rather than track use order. A miss costs one
            // indexed lookup, and a full cache of live keys is not what this is sized for.
            if map.len() >= self.cap {
                map.clear();
            }
        }
        map.insert(key, (value, read_at));
    }
}

pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Key digest → owner (Basic auth and `POST /auth/api-key`). Only found keys are kept. Keyed
    /// by the raw digest: a hit, which every API call is, then costs no hex string.
    owners: TtlCache<[u8; 32], KeyOwner>,
    /// Key id → not revoked (access tokens). Revocation is final, so `false` is kept too: a client
    /// still sending a revoked key's token costs no lookup per request.
    active: TtlCache<String, bool>,
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
    pub async fn load(repo: &dyn Repo, cfg: &ApiConfig) -> CoreResult<Self> {
        // Shared by every node through the database, so any node verifies any node's tokens.
        let secret = repo.setting_or_init("jwt_secret", &random_secret()).await?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let ttl = cfg.key_cache_ttl.min(MAX_KEY_CACHE_TTL);
        Ok(Authenticator {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            owners: TtlCache::new(ttl, KEY_CACHE_CAP),
            active: TtlCache::new(ttl, KEY_CACHE_CAP),
        })
    }

    /// The owner of an API key, unless the key is unknown or revoked.
    pub async fn owner_of_key(&self, repo: &dyn Repo, key: &str) -> CoreResult<Option<KeyOwner>> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(owner) = self.owners.get(&digest) {
            return Ok(Some(owner));
        }
        let read_at = Instant::now();
        let owner = repo.find_api_key(&hex::encode(digest)).await?;
        if let Some(o) = &owner {
            self.owners.insert(digest, o.clone(), read_at);
        }
        Ok(owner)
    }

    async fn key_active(&self, repo: &dyn Repo, key_id: &ApiKeyId) -> CoreResult<bool> {
        if let Some(active) = self.active.get(key_id.as_str()) {
            return Ok(active);
        }
        let read_at = Instant::now();
        let active = repo.api_key_active(key_id).await?;
        self.active.insert(key_id.as_str().to_string(), active, read_at);
        Ok(active)
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

    /// The owner named by a valid, unexpired access token whose key is not revoked.
    pub async fn verify_access(&self, repo: &dyn Repo, token: &str) -> CoreResult<Option<KeyOwner>> {
        let Ok(data) = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) else {
            return Ok(None);
        };
        let owner = KeyOwner {
            key_id: ApiKeyId::from_trusted(data.claims.sub),
            workspace_id: WorkspaceId::from_trusted(data.claims.ws),
        };
        Ok(self.key_active(repo, &owner.key_id).await?.then_some(owner))
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

/// What [`authenticate_early`] found, for the extractor: a request is authenticated once.
#[derive(Clone)]
struct Authenticated(Result<KeyOwner, ApiError>);

/// Authenticates a request that presents credentials before its handler runs (the rate limiter
/// counts it against its key), keeping the outcome for the handler's [`Auth`]. `None` when it
/// presents none, or invalid ones: such a request is counted by address, and its handler (if it
/// needs credentials) refuses it with the outcome kept here.
pub(crate) async fn authenticate_early(state: &AppState, req: &mut axum::extract::Request) -> Option<ApiKeyId> {
    req.headers().get(AUTHORIZATION)?;
    let outcome = authenticate(state, req.headers()).await;
    let key = outcome.as_ref().ok().map(|o| o.key_id.clone());
    req.extensions_mut().insert(Authenticated(outcome));
    key
}

/// The owner of the credentials in `headers` (Basic with an API key, or Bearer with an access
/// token), or the problem to answer.
async fn authenticate(state: &AppState, headers: &axum::http::HeaderMap) -> Result<KeyOwner, ApiError> {
    let value = headers.get(AUTHORIZATION).map(|v| v.to_str().map(str::trim));
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
        state.auth.owner_of_key(state.repo.as_ref(), key).await?.ok_or_else(invalid)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        // A revoked key's token is refused like an expired one: the client's remedy is the same.
        state.auth.verify_access(state.repo.as_ref(), cred).await?.ok_or_else(|| {
            ApiError::unauthorized("authentication-invalid-access-token", "The access token is invalid or expired.")
        })
    } else {
        Err(bad_header())
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.remove::<Authenticated>() {
            Some(Authenticated(outcome)) => outcome.map(Auth),
            None => authenticate(state, &parts.headers).await.map(Auth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_answers_only_while_fresh() {
        let c: TtlCache<String, i32> = TtlCache::new(Duration::from_secs(30), 10);
        c.insert("a".into(), 1, Instant::now());
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("b"), None);
        // Read from the database 31 s ago: too old to act on, however recently it was stored.
        c.insert("old".into(), 2, Instant::now() - Duration::from_secs(31));
        assert_eq!(c.get("old"), None);
    }

    #[test]
    fn cache_stays_bounded() {
        let c: TtlCache<String, i32> = TtlCache::new(Duration::from_secs(30), 3);
        let stale = Instant::now() - Duration::from_secs(31);
        c.insert("s1".into(), 0, stale);
        c.insert("s2".into(), 0, stale);
        c.insert("f1".into(), 1, Instant::now());
        // Full: the expired entries make room, the fresh one stays.
        c.insert("f2".into(), 2, Instant::now());
        assert_eq!(c.map.read().unwrap().len(), 2);
        assert_eq!((c.get("f1"), c.get("f2")), (Some(1), Some(2)));
        c.insert("f3".into(), 3, Instant::now());
        // Full of fresh entries: it starts over rather than grow.
        c.insert("f4".into(), 4, Instant::now());
        assert!(c.map.read().unwrap().len() <= 3);
        assert_eq!(c.get("f4"), Some(4));
    }

    #[test]
    fn key_cache_lifetime_is_at_most_30_s() {
        assert!(ApiConfig::default().key_cache_ttl <= MAX_KEY_CACHE_TTL);
        assert_eq!(MAX_KEY_CACHE_TTL, Duration::from_secs(30));
    }
}
