//! Workspaces and API keys from the CLI (`vidi workspace create`, `vidi api-key create|list|revoke`),
//! and what a revocation does: the key's Basic auth, its access tokens and its refresh tokens stop
//! working on every node within the key cache's lifetime, while other keys carry on. On every
//! configured backend; the CLI is the real binary, run against the database of the server under test.

use std::time::{Duration, Instant};

use crate::common::process::Install;
use crate::common::{Backend, TestServer, backend_test, problem};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use vidi::Config;

/// The environment that points the CLI at the installation `cfg` describes.
fn env_of(cfg: &Config) -> Vec<(String, String)> {
    vec![
        ("VIDI_DATA_DIR".into(), cfg.storage.data_dir.display().to_string()),
        ("VIDI_DATABASE_URL".into(), cfg.database.url.clone().unwrap_or_default()),
        ("VIDI_DATABASE_SCHEMA".into(), cfg.database.schema.clone().unwrap_or_default()),
        ("VIDI_LOG".into(), "warn".into()),
    ]
}

/// Runs `vidi ARGS`. Asynchronously, so a server in this test's runtime keeps answering meanwhile.
async fn cli(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidi"));
    c.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    c.output().await.unwrap()
}

/// Runs `vidi ARGS`, which must succeed, and returns its stdout.
async fn cli_ok(env: &[(String, String)], args: &[&str]) -> String {
    let out = cli(env, args).await;
    assert!(out.status.success(), "vidi {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `vidi ARGS`, which must fail with a message on stderr and nothing on stdout; returns stderr.
async fn cli_fails(env: &[(String, String)], args: &[&str]) -> String {
    let out = cli(env, args).await;
    assert!(!out.status.success(), "vidi {args:?} should fail");
    assert!(out.stdout.is_empty(), "vidi {args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.trim().is_empty(), "vidi {args:?} failed silently");
    err
}

/// One line of `vidi api-key list`.
#[derive(Debug)]
struct KeyLine {
    id: String,
    workspace: String,
    name: String,
    created: String,
    state: String,
}

async fn list_keys(env: &[(String, String)]) -> (String, Vec<KeyLine>) {
    let out = cli_ok(env, &["api-key", "list"]).await;
    let lines = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l:?}");
            KeyLine {
                id: f[0].into(),
                workspace: f[1].into(),
                name: f[2].into(),
                created: f[3].into(),
                state: f[4].into(),
            }
        })
        .collect();
    (out, lines)
}

fn by_name<'a>(keys: &'a [KeyLine], name: &str) -> &'a KeyLine {
    let mut matching = keys.iter().filter(|k| k.name == name);
    let k = matching.next().unwrap_or_else(|| panic!("no key named {name} in {keys:?}"));
    assert!(matching.next().is_none(), "two keys named {name}");
    k
}

/// `2024-05-01T10:00:00+00:00`, as api.video writes times.
fn assert_rfc3339(s: &str) {
    let b = s.as_bytes();
    assert!(
        s.len() == 25 && s.ends_with("+00:00") && b[4] == b'-' && b[10] == b'T' && b[13] == b':',
        "not RFC 3339: {s:?}"
    );
}

backend_test!(workspaces_and_keys_from_the_cli);
async fn workspaces_and_keys_from_the_cli(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // Creates the default workspace and its first key, as `scripts/run.sh` would.
    let install = Install::new(&b, dir.path(), &[]);
    let env = &install.env;

    let ws = cli_ok(env, &["workspace", "create", "--name", "team"]).await;
    assert_eq!(ws.lines().count(), 1, "{ws:?}");
    let ws = ws.trim();
    assert!(ws.starts_with("ws") && ws.len() == 24, "{ws:?}");

    let alpha = cli_ok(env, &["api-key", "create", "--name", "alpha", "--workspace", ws]).await.trim().to_string();
    let beta = cli_ok(env, &["api-key", "create", "--name", "beta", "--workspace", ws]).await.trim().to_string();
    assert!(alpha.len() == 64 && alpha.bytes().all(|c| c.is_ascii_hexdigit()), "{alpha:?}");
    assert_ne!(alpha, beta);

    // A workspace that does not exist, well-formed or not, is an error, and no key is made.
    cli_fails(env, &["api-key", "create", "--name", "ghost", "--workspace", "ws0000000000000000000000"]).await;
    cli_fails(env, &["api-key", "create", "--name", "ghost", "--workspace", "nope"]).await;

    let (out, keys) = list_keys(env).await;
    assert_eq!(keys.len(), 3, "{out}");
    for secret in [&install.key, &alpha, &beta] {
        assert!(!out.contains(secret.as_str()), "the list shows a secret: {out}");
    }
    let default = by_name(&keys, "cli");
    assert_ne!(default.workspace, ws);
    for k in &keys {
        assert!(k.id.starts_with("ak"), "{k:?}");
        assert_rfc3339(&k.created);
        assert_eq!(k.state, "active", "{k:?}");
    }
    for name in ["alpha", "beta"] {
        assert_eq!(by_name(&keys, name).workspace, ws);
    }
    let alpha_id = by_name(&keys, "alpha").id.clone();
    let beta_id = by_name(&keys, "beta").id.clone();

    // By id; then by the secret itself. Each prints the id of the key it revoked.
    assert_eq!(cli_ok(env, &["api-key", "revoke", &alpha_id]).await.trim(), alpha_id);
    assert_eq!(cli_ok(env, &["api-key", "revoke", &beta]).await.trim(), beta_id);
    let (_, keys) = list_keys(env).await;
    assert_eq!(keys.len(), 3, "revoked keys stay listed");
    for name in ["alpha", "beta"] {
        let state = &by_name(&keys, name).state;
        let at = state.strip_prefix("revoked ").unwrap_or_else(|| panic!("{name} is {state:?}"));
        assert_rfc3339(at);
    }
    assert_eq!(by_name(&keys, "cli").state, "active");
    // Revoking again is not an error and keeps the first revocation's time.
    let before = by_name(&keys, "alpha").state.clone();
    assert_eq!(cli_ok(env, &["api-key", "revoke", &alpha]).await.trim(), alpha_id);
    assert_eq!(by_name(&list_keys(env).await.1, "alpha").state, before);

    // Unknown ids and keys are errors; a secret is never echoed back.
    cli_fails(env, &["api-key", "revoke", "ak0000000000000000000000"]).await;
    let unknown = "ab".repeat(32);
    let err = cli_fails(env, &["api-key", "revoke", &unknown]).await;
    assert!(!err.contains(&unknown), "{err}");

    // The revocations are in the database: a fresh server (empty caches) refuses both keys at
    // once and still takes the key that was left alone.
    let _server = install.serve().await;
    let get = |key: &str| install.http.get(format!("{}/videos", install.url)).basic_auth(key, Some("")).send();
    assert_eq!(get(&install.key).await.unwrap().status(), 200, "{}", b.label);
    for key in [&alpha, &beta] {
        problem(get(key).await.unwrap(), 401, "authentication-invalid-api-key").await;
    }
}

/// Sends `req` until it is refused with 401, failing if it is still accepted 30 s after
/// `revoked`. Anything but 200 or 401 on the way fails at once.
async fn refused_within_30s(req: RequestBuilder, revoked: Instant, what: &str) -> reqwest::Response {
    loop {
        let r = req.try_clone().expect("a request without a body").send().await.unwrap();
        match r.status() {
            StatusCode::UNAUTHORIZED => return r,
            StatusCode::OK => {}
            s => panic!("{what}: {s}"),
        }
        assert!(revoked.elapsed() < Duration::from_secs(30), "{what}: still accepted 30 s after the revocation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn tokens(t: &TestServer, key: &str) -> Value {
    let r = t.post_json("/auth/api-key", json!({ "apiKey": key })).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

backend_test!(revocation_reaches_basic_auth_tokens_and_refresh_on_every_node);
async fn revocation_reaches_basic_auth_tokens_and_refresh_on_every_node(b: Backend) {
    // A 1 s key cache keeps the test short; the default is 30 s (vidi-api checks that).
    let t = TestServer::start_with(&b, |c| c.auth.key_cache = Duration::from_secs(1)).await;
    // A second node on the same database: it verifies the first one's tokens, and its own
    // caches must learn of the revocation too.
    let node2 = vidi::start(t.cfg.clone()).await.expect("second node starts");
    let env = env_of(&t.cfg);
    let doomed = cli_ok(&env, &["api-key", "create", "--name", "doomed"]).await.trim().to_string();
    let kept = cli_ok(&env, &["api-key", "create", "--name", "kept"]).await.trim().to_string();

    let tok = tokens(&t, &doomed).await;
    let access = tok["access_token"].as_str().unwrap().to_string();
    let refresh = tok["refresh_token"].as_str().unwrap().to_string();
    // A refreshed pair: its access token and both refresh tokens (the old one is within its
    // grace minute) must fall with the key.
    let r = t.post_json("/auth/refresh", json!({ "refreshToken": refresh })).await;
    assert_eq!(r.status(), 200);
    let tok2: Value = r.json().await.unwrap();
    let access2 = tok2["access_token"].as_str().unwrap().to_string();
    let refresh2 = tok2["refresh_token"].as_str().unwrap().to_string();
    let kept_access = tokens(&t, &kept).await["access_token"].as_str().unwrap().to_string();

    let basic = |url: &str, key: &str| t.http.get(format!("{url}/videos")).basic_auth(key, Some(""));
    let bearer = |url: &str, token: &str| t.http.get(format!("{url}/videos")).bearer_auth(token);
    let urls = [t.url.clone(), node2.url.clone()];
    // Everything works on both nodes, which fills both nodes' caches.
    for url in &urls {
        for req in [basic(url, &doomed), bearer(url, &access), bearer(url, &access2), bearer(url, &kept_access)] {
            assert_eq!(req.send().await.unwrap().status(), 200, "{} {url}", b.label);
        }
    }

    let (_, keys) = list_keys(&env).await;
    let doomed_id = by_name(&keys, "doomed").id.clone();
    let revoked = Instant::now();
    assert_eq!(cli_ok(&env, &["api-key", "revoke", &doomed_id]).await.trim(), doomed_id);

    // Refresh tokens are checked in the database, so they are refused at once.
    for rt in [&refresh, &refresh2] {
        problem(
            t.post_json("/auth/refresh", json!({ "refreshToken": rt })).await,
            400,
            "authentication-invalid-user-credentials",
        )
        .await;
    }
    for url in &urls {
        let r = refused_within_30s(basic(url, &doomed), revoked, "Basic auth").await;
        problem(r, 401, "authentication-invalid-api-key").await;
        for token in [&access, &access2] {
            let r = refused_within_30s(bearer(url, token), revoked, "access token").await;
            problem(r, 401, "authentication-invalid-access-token").await;
        }
    }
    problem(
        t.post_json("/auth/api-key", json!({ "apiKey": doomed })).await,
        400,
        "authentication-invalid-user-credentials",
    )
    .await;

    // The workspace's other keys, and their tokens, carry on.
    for url in &urls {
        for req in [basic(url, &t.key), basic(url, &kept), bearer(url, &kept_access)] {
            assert_eq!(req.send().await.unwrap().status(), 200, "{} {url}", b.label);
        }
    }
    let kept_refresh = tokens(&t, &kept).await["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(t.post_json("/auth/refresh", json!({ "refreshToken": kept_refresh })).await.status(), 200);
    node2.abort();
}

backend_test!(keys_of_two_workspaces_see_only_their_own_videos);
async fn keys_of_two_workspaces_see_only_their_own_videos(b: Backend) {
    let t = TestServer::start(&b).await;
    let env = env_of(&t.cfg);
    let other_ws = cli_ok(&env, &["workspace", "create", "--name", "other"]).await.trim().to_string();
    let other = cli_ok(&env, &["api-key", "create", "--workspace", &other_ws]).await.trim().to_string();

    let mine = t.create_video("mine").await;
    let r = t.http.post(format!("{}/videos", t.url)).basic_auth(&other, Some("")).json(&json!({ "title": "theirs" }));
    let theirs: Value = r.send().await.unwrap().json().await.unwrap();
    let theirs = theirs["videoId"].as_str().unwrap().to_string();
    let other_access = tokens(&t, &other).await["access_token"].as_str().unwrap().to_string();

    let ids = |v: Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|x| x["videoId"].as_str().unwrap().to_string()).collect()
    };
    let list_mine: Value = t.get("/videos").await.json().await.unwrap();
    assert_eq!(ids(list_mine), std::slice::from_ref(&mine), "{}", b.label);
    for req in [
        t.http.get(format!("{}/videos", t.url)).basic_auth(&other, Some("")),
        t.http.get(format!("{}/videos", t.url)).bearer_auth(&other_access),
    ] {
        let list: Value = req.send().await.unwrap().json().await.unwrap();
        assert_eq!(ids(list), std::slice::from_ref(&theirs), "{}", b.label);
    }
    // Another workspace's video does not exist, whichever way one asks.
    let get_mine = t.http.get(format!("{}/videos/{mine}", t.url)).bearer_auth(&other_access);
    problem(get_mine.send().await.unwrap(), 404, "resource-not-found").await;
    problem(t.get(&format!("/videos/{theirs}")).await, 404, "resource-not-found").await;
}
