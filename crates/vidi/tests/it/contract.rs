//! The served `/openapi.json` against api.video's own 2023 OpenAPI file
//! (`tests/contract/apivideo-openapi-2023.json`), path by path: which operations exist, their
//! path and query parameters, their request body's content types and fields, their status codes
//! and the fields of their success bodies. Every difference must be in [`ALLOWED`] with the reason
//! Vidi differs (docs/contract.md says the same in prose); a new one fails the test, and so does an
//! entry that no longer matches anything, so the list stays exactly what Vidi differs in.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;
use serde_json::Value;

/// Each deliberate difference and why. The key is the difference as [`differences`] words it.
const ALLOWED: &[(&str, &str)] = &[
    // Operations api.video has and Vidi does not serve.
    ("GET /watermarks: not served", "watermarks are not supported (docs/contract.md)"),
    ("POST /watermarks: not served", "watermarks are not supported"),
    ("DELETE /watermarks/{watermarkId}: not served", "watermarks are not supported"),
    ("GET /analytics/videos/plays: not served", "analytics are not served yet (issue 23)"),
    ("GET /analytics/videos/{videoId}: not served", "analytics are not served yet (issue 23)"),
    ("GET /analytics/live-streams/plays: not served", "analytics are not served yet (issue 23)"),
    ("GET /analytics/live-streams/{liveStreamId}: not served", "analytics are not served yet (issue 23)"),
    ("GET /analytics/sessions/{sessionId}/events: not served", "analytics are not served yet (issue 23)"),
    // Operations Vidi adds.
    ("GET /account: not in api.video", "api.video's 2021 account operation, kept for older clients"),
    ("GET /webhooks/{webhookId}/secret: not in api.video", "Vidi extension: the signing secret (docs/webhooks.md)"),
    ("GET /webhooks/{webhookId}/deliveries: not in api.video", "Vidi extension: delivery log (docs/webhooks.md)"),
    (
        "GET /webhooks/{webhookId}/deliveries/{deliveryId}: not in api.video",
        "Vidi extension: one delivery (docs/webhooks.md)",
    ),
    (
        "POST /webhooks/{webhookId}/deliveries/{deliveryId}/replay: not in api.video",
        "Vidi extension: replay a delivery (docs/webhooks.md)",
    ),
    // Error statuses Vidi documents and api.video's file leaves out (its servers answer them too).
    ("GET /live-streams: status 400 only in Vidi", "a bad query parameter is a 400 problem"),
    ("GET /upload-tokens: status 400 only in Vidi", "a bad query parameter is a 400 problem"),
    ("GET /webhooks: status 400 only in Vidi", "a bad query parameter is a 400 problem"),
    ("GET /videos/{videoId}/captions: status 400 only in Vidi", "a bad query parameter is a 400 problem"),
    ("GET /videos/{videoId}/chapters: status 400 only in Vidi", "a bad query parameter is a 400 problem"),
    ("GET /videos/{videoId}/captions/{language}: status 400 only in Vidi", "a language that is not BCP 47"),
    ("GET /videos/{videoId}/chapters/{language}: status 400 only in Vidi", "a language that is not BCP 47"),
    ("DELETE /videos/{videoId}/captions/{language}: status 400 only in Vidi", "a language that is not BCP 47"),
    ("DELETE /videos/{videoId}/chapters/{language}: status 400 only in Vidi", "a language that is not BCP 47"),
    ("PATCH /videos/{videoId}/thumbnail: status 400 only in Vidi", "a timecode outside the video"),
    ("POST /players: status 400 only in Vidi", "a colour outside the colour grammar, a name too long"),
    ("PATCH /players/{playerId}: status 400 only in Vidi", "a colour outside the colour grammar, a name too long"),
    ("GET /live-streams/{liveStreamId}: status 404 only in Vidi", "unknown ids"),
    ("PATCH /live-streams/{liveStreamId}: status 404 only in Vidi", "unknown ids"),
    ("DELETE /live-streams/{liveStreamId}: status 404 only in Vidi", "unknown ids"),
    ("GET /webhooks/{webhookId}: status 404 only in Vidi", "unknown ids"),
    ("POST /upload: status 401 only in Vidi", "an unknown or expired upload token"),
    ("POST /upload: status 404 only in Vidi", "a videoId outside the token's workspace"),
];

/// An operation: its object and the parameters its path item declares for every method.
struct Op<'a> {
    op: &'a Value,
    common: &'a [Value],
}

fn operations(doc: &Value) -> BTreeMap<String, Op<'_>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let common = item.get("parameters").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for m in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(m) {
                out.insert(format!("{} {path}", m.to_uppercase()), Op { op, common });
            }
        }
    }
    out
}

/// Follows a local `$ref` (`#/components/<kind>/<name>`) as many times as it takes.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else { return v };
        let mut at = doc;
        for part in r.trim_start_matches("#/").split('/') {
            at = &at[part];
        }
        v = at;
    }
    v
}

/// The property names of an object schema, through `$ref` and `allOf`.
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let s = resolve(doc, schema);
    let mut out: BTreeSet<String> =
        s.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for part in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

fn parameters(doc: &Value, op: &Op, location: &str) -> BTreeSet<String> {
    let own = op.op.get("parameters").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    op.common
        .iter()
        .chain(own)
        .map(|p| resolve(doc, p))
        .filter(|p| p["in"] == location)
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The request body's content types, and the fields of its JSON form.
fn request(doc: &Value, op: &Op) -> (BTreeSet<String>, BTreeSet<String>) {
    let Some(body) = op.op.get("requestBody") else { return Default::default() };
    let content = resolve(doc, body).get("content").and_then(Value::as_object);
    let types = content.map(|c| c.keys().cloned().collect()).unwrap_or_default();
    let fields = content
        .and_then(|c| c.get("application/json"))
        .and_then(|j| j.get("schema"))
        .map(|s| properties(doc, s))
        .unwrap_or_default();
    (types, fields)
}

/// The documented status codes, and the fields of the JSON bodies of the 2xx ones.
fn responses(doc: &Value, op: &Op) -> (BTreeSet<String>, BTreeSet<String>) {
    let Some(r) = op.op.get("responses").and_then(Value::as_object) else { return Default::default() };
    let mut fields = BTreeSet::new();
    for (_, resp) in r.iter().filter(|(c, _)| c.starts_with('2')) {
        if let Some(s) = resolve(doc, resp).pointer("/content/application~1json/schema") {
            fields.extend(properties(doc, s));
        }
    }
    (r.keys().cloned().collect(), fields)
}

/// One line per difference between api.video's document (`theirs`) and Vidi's (`ours`).
fn differences(theirs: &Value, ours: &Value) -> Vec<String> {
    let (a, v) = (operations(theirs), operations(ours));
    let mut out = Vec::new();
    let names: BTreeSet<&String> = a.keys().chain(v.keys()).collect();
    for key in names {
        let (ao, vo) = match (a.get(key), v.get(key)) {
            (Some(_), None) => {
                out.push(format!("{key}: not served"));
                continue;
            }
            (None, Some(_)) => {
                out.push(format!("{key}: not in api.video"));
                continue;
            }
            (Some(ao), Some(vo)) => (ao, vo),
            (None, None) => unreachable!(),
        };
        let mut side = |what: &str, theirs: BTreeSet<String>, ours: BTreeSet<String>| {
            for x in theirs.difference(&ours) {
                out.push(format!("{key}: {what} {x} only in api.video"));
            }
            for x in ours.difference(&theirs) {
                out.push(format!("{key}: {what} {x} only in Vidi"));
            }
        };
        side("path parameter", parameters(theirs, ao, "path"), parameters(ours, vo, "path"));
        side("query parameter", parameters(theirs, ao, "query"), parameters(ours, vo, "query"));
        let ((at, af), (vt, vf)) = (request(theirs, ao), request(ours, vo));
        side("request type", at, vt);
        side("request field", af, vf);
        let ((ac, ar), (vc, vr)) = (responses(theirs, ao), responses(ours, vo));
        side("status", ac, vc);
        side("response field", ar, vr);
    }
    out
}

#[tokio::test]
async fn openapi_json_differs_from_api_video_only_where_documented() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let ours: Value = t.get("/openapi.json").await.json().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/contract/apivideo-openapi-2023.json");
    let theirs: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let found = differences(&theirs, &ours);
    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    assert_eq!(allowed.len(), ALLOWED.len(), "an entry of ALLOWED is listed twice");
    let new: Vec<&String> = found.iter().filter(|d| !allowed.contains_key(d.as_str())).collect();
    let stale: Vec<&&str> = allowed.keys().filter(|k| !found.iter().any(|d| d == *k)).collect();
    assert!(
        new.is_empty() && stale.is_empty(),
        "/openapi.json against api.video's 2023 file:\nundocumented differences (fix them, or add each to \
         ALLOWED and docs/contract.md with its reason):\n  {}\nentries of ALLOWED that no longer differ (remove \
         them):\n  {}",
        new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
        stale.iter().map(|s| **s).collect::<Vec<_>>().join("\n  "),
    );
    // The comparison sees what it should: the shared operations are most of both documents.
    let shared = operations(&ours).keys().filter(|k| operations(&theirs).contains_key(*k)).count();
    assert!(shared >= 40, "only {shared} operations in common: is the comparison reading both documents?");
}

backend_test!(nulls_empty_patches_and_shapes_follow_docs_contract_md);
/// What docs/contract.md decides about `null`, empty PATCH bodies and body shapes, as a client
/// sees it.
async fn nulls_empty_patches_and_shapes_follow_docs_contract_md(b: Backend) {
    use serde_json::json;
    let t = TestServer::start(&b).await;
    let label = b.label.as_str();
    let invalid = |r: reqwest::Response, name: &'static str| async move {
        let p = problem(r, 400, "invalid-attribute").await;
        assert_eq!(p["name"], name, "{p}");
    };
    // Refused where it means nothing.
    invalid(t.post_json("/players", json!({ "forceLoop": null })).await, "forceLoop").await;
    invalid(t.post_json("/players", json!({ "text": null })).await, "text").await;
    invalid(t.post_json("/upload-tokens", json!({ "ttl": null })).await, "ttl").await;
    invalid(t.post_json("/videos", json!({ "title": "t", "clip": [null, null] })).await, "clip").await;
    let player: Value = t.post_json("/players", json!({ "name": "p" })).await.json().await.unwrap();
    let pid = player["playerId"].as_str().unwrap();
    invalid(t.patch_json(&format!("/players/{pid}"), json!({ "name": null })).await, "name").await;
    // An integer without a fraction is an integer.
    let r = t.post_json("/upload-tokens", json!({ "ttl": 60.0 })).await;
    assert!(r.status().is_success(), "{label}: {}", r.status());
    assert_eq!(r.json::<Value>().await.unwrap()["ttl"], 60);

    // Empty PATCH bodies change nothing and answer the object as it is.
    let video = t.create_video("v").await;
    let before: Value = t.get(&format!("/videos/{video}")).await.json().await.unwrap();
    let same: Value = t.patch_json(&format!("/videos/{video}"), json!({})).await.json().await.unwrap();
    assert_eq!((&same["title"], &same["updatedAt"]), (&before["title"], &before["updatedAt"]), "{label}");
    let same: Value = t.patch_json(&format!("/players/{pid}"), json!({})).await.json().await.unwrap();
    assert_eq!(same, player, "{label}");
    let live: Value = t.post_json("/live-streams", json!({ "name": "l" })).await.json().await.unwrap();
    let lid = live["liveStreamId"].as_str().unwrap();
    let r = t.patch_json(&format!("/live-streams/{lid}"), json!({})).await;
    assert_eq!(r.status(), 200, "{label}");
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "l");

    // `playerId: null` detaches: kept, it means something.
    let r = t.patch_json(&format!("/videos/{video}"), json!({ "playerId": pid })).await;
    assert_eq!(r.status(), 200, "{label}");
    let r: Value = t.patch_json(&format!("/videos/{video}"), json!({ "playerId": null })).await.json().await.unwrap();
    assert!(r.get("playerId").is_none(), "{label}: {r}");
}
