//! `POST /upload?token=` (contract row 13, §4.5, §5) on every configured backend: whole files and
//! chunks into new videos titled after the file, `videoId` before or after the file, the one-call
//! uploads of the Node and Python clients (parts without `videoId`) making exactly one video even
//! when their parts race, two uploads on one token kept apart, every token refusal, tenancy, and
//! bad forms refused without leaving videos behind.

use crate::common::{Backend, MIB, TestServer, backend_test, big_video, problem, sha256, small_video};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use vidi_core::id::{UploadTokenId, VideoId};
use vidi_core::repo::{TokenUploadKey, TokenUploadSlot};

const M5: usize = 5 * MIB;

/// Where a form puts its `videoId` field.
#[derive(Clone, Copy)]
enum Field {
    None,
    Before(&'static str),
    After(&'static str),
}

/// One token upload request, sent with no credential but the token.
async fn send(t: &TestServer, token: &str, range: Option<&str>, name: &str, bytes: Vec<u8>, video: Field) -> Response {
    let file = || reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string());
    let form = reqwest::multipart::Form::new();
    // Node names the file field after the file, Python calls it `file`: either works.
    let form = match video {
        Field::None => form.part(name.to_string(), file()),
        Field::Before(v) => form.text("videoId", v).part("file", file()),
        Field::After(v) => form.part(name.to_string(), file()).text("videoId", v),
    };
    let mut r = t.http.post(format!("{}/upload?token={token}", t.url)).multipart(form);
    if let Some(cr) = range {
        r = r.header("Content-Range", cr);
    }
    r.send().await.unwrap()
}

/// `send` with a `videoId` only known at run time.
async fn send_to(
    t: &TestServer,
    token: &str,
    range: &str,
    name: &str,
    bytes: Vec<u8>,
    video: &str,
    after: bool,
) -> Response {
    let file = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new();
    let form = if after {
        form.part(name.to_string(), file).text("videoId", video.to_string())
    } else {
        form.text("videoId", video.to_string()).part("file", file)
    };
    let r = t.http.post(format!("{}/upload?token={token}", t.url)).header("Content-Range", range).multipart(form);
    r.send().await.unwrap()
}

async fn new_token(t: &TestServer, ttl: u64) -> String {
    let r = t.post_json("/upload-tokens", json!({ "ttl": ttl })).await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

async fn videos(t: &TestServer) -> Vec<Value> {
    let l: Value = t.get("/videos?pageSize=100").await.json().await.unwrap();
    l["data"].as_array().unwrap().clone()
}

async fn created_id(r: Response) -> String {
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string()
}

backend_test!(whole_files_and_single_parts_make_videos_titled_after_the_file);
async fn whole_files_and_single_parts_make_videos_titled_after_the_file(b: Backend) {
    let t = TestServer::start(&b).await;
    let token = new_token(&t, 0).await;
    let bytes = small_video();
    // Node and Go for a small file: no Content-Range. Any Authorization is ignored.
    let form = reqwest::multipart::Form::new()
        .part("holiday clip.mp4", reqwest::multipart::Part::bytes(bytes.clone()).file_name("holiday clip.mp4"));
    let r = t
        .http
        .post(format!("{}/upload?token={token}", t.url))
        .header("Authorization", "Basic bm9wZTo=")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", b.label);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["title"], "holiday clip", "{v}");
    let whole = v["videoId"].as_str().unwrap().to_string();
    assert_eq!(t.stored_source_sha(&whole).await, sha256(&bytes));
    let st = t.wait_status(&whole, 30, |s| s["encoding"]["metadata"]["width"] == 320).await;
    assert_eq!(st["ingest"]["status"], "uploaded");

    // Python always sends `part 1/1`, with a path-like name from some browsers.
    let r = send(&t, &token, Some("part 1/1"), "C:\\fakepath\\Take 2.MOV", bytes.clone(), Field::None).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["title"], "Take 2", "{v}");
    let one = v["videoId"].as_str().unwrap().to_string();
    assert_eq!(t.stored_source_sha(&one).await, sha256(&bytes));

    // Byte ranges work too: one range, the whole file.
    let range = format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len());
    let r = send(&t, &token, Some(&range), "ranged", bytes.clone(), Field::None).await;
    let ranged = created_id(r).await;
    assert_eq!(t.stored_source_sha(&ranged).await, sha256(&bytes));

    let all = videos(&t).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().any(|v| v["title"] == "ranged"));
}

backend_test!(video_id_before_or_after_the_file_continues_an_upload);
async fn video_id_before_or_after_the_file_continues_an_upload(b: Backend) {
    let t = TestServer::start(&b).await;
    let token = new_token(&t, 3600).await;
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(M5).map(<[u8]>::to_vec).collect();
    let n = parts.len();

    // A progressive session: `part 1/*` makes the video and answers only its id; Node sends
    // `videoId` after the file, Python before it.
    let r = send(&t, &token, Some("part 1/*"), "session.mp4", parts[0].clone(), Field::None).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    let first: Value = r.json().await.unwrap();
    let id = first["videoId"].as_str().unwrap().to_string();
    assert_eq!(first, json!({ "videoId": id }));
    for (i, p) in parts.iter().enumerate().skip(1) {
        let range = if i + 1 == n { format!("part {n}/{n}") } else { format!("part {}/*", i + 1) };
        let r = send_to(&t, &token, &range, "session.mp4", p.clone(), &id, i % 2 == 1).await;
        assert_eq!(r.status(), 201, "{}", b.label);
        let body: Value = r.json().await.unwrap();
        if i + 1 == n {
            assert_eq!(body["title"], "session");
            assert_eq!(body["videoId"], id.as_str());
        } else {
            assert_eq!(body, json!({ "videoId": id }));
        }
    }
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
    assert_eq!(videos(&t).await.len(), 1);

    // Into a video made beforehand (the browser uploader's "existing video"): its title stays.
    let pre = t.create_video("made first").await;
    let small = small_video();
    let r = send_to(&t, &token, "part 1/1", "whatever.mp4", small.clone(), &pre, true).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "made first");
    assert_eq!(t.stored_source_sha(&pre).await, sha256(&small));
    // Once complete, it takes nothing more.
    let r = send_to(&t, &token, "part 1/1", "whatever.mp4", small.clone(), &pre, false).await;
    problem(r, 400, "video-source-already-uploaded").await;
    // Byte ranges with `videoId`, in two requests.
    let (a, rest) = bytes.split_at(M5);
    let r =
        send(&t, &token, Some(&format!("bytes 0-{}/{}", M5 - 1, bytes.len())), "b.mp4", a.to_vec(), Field::None).await;
    let bid = created_id(r).await;
    let range = format!("bytes {M5}-{}/{}", bytes.len() - 1, bytes.len());
    assert_eq!(send_to(&t, &token, &range, "b.mp4", rest.to_vec(), &bid, true).await.status(), 201);
    assert_eq!(t.stored_source_sha(&bid).await, sha256(&bytes));
}

backend_test!(one_call_uploads_without_video_id_make_one_video);
async fn one_call_uploads_without_video_id_make_one_video(b: Backend) {
    let t = TestServer::start(&b).await;
    let token = new_token(&t, 0).await;
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(M5).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    assert!(n >= 3);

    // What Node's and Python's `uploadWithUploadToken` send: `part i/N`, same file, no videoId.
    let mut ids = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = send(&t, &token, Some(&format!("part {}/{n}", i + 1)), "big.mp4", p.clone(), Field::None).await;
        assert_eq!(r.status(), 201, "{}", b.label);
        let body: Value = r.json().await.unwrap();
        ids.push(body["videoId"].as_str().unwrap().to_string());
        if i + 1 == n {
            assert_eq!(body["title"], "big");
        }
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(t.stored_source_sha(&ids[0]).await, sha256(&bytes));
    assert_eq!(videos(&t).await.len(), 1);
    // Complete: the token keeps no upload in progress for it.
    let ws = t.ws().await;
    let tid = UploadTokenId::parse(&token).unwrap();
    let key = TokenUploadKey { token: &tid, file_name: "big.mp4", parts_total: n as u32 };
    assert_eq!(t.server.state.repo.token_upload_slot(&ws, key, 1).await.unwrap(), TokenUploadSlot::Free);

    // The same file again: a new video, not the complete one.
    let r = send(&t, &token, Some(&format!("part 1/{n}")), "big.mp4", parts[0].clone(), Field::None).await;
    let again = created_id(r).await;
    assert_ne!(again, ids[0]);

    // Two uploads in flight on one token, interleaved, different files: kept apart. The
    // unfinished `big.mp4` above is a third one, left alone.
    let other: Vec<u8> = bytes.iter().rev().copied().collect();
    let other_parts: Vec<Vec<u8>> = other.chunks(M5).map(<[u8]>::to_vec).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let range = format!("part {}/{n}", i + 1);
        x.push(created_id(send(&t, &token, Some(&range), "x.mp4", parts[i].clone(), Field::None).await).await);
        y.push(created_id(send(&t, &token, Some(&range), "y.mp4", other_parts[i].clone(), Field::None).await).await);
    }
    assert!(x.iter().all(|i| *i == x[0]) && y.iter().all(|i| *i == y[0]) && x[0] != y[0]);
    assert_eq!(t.stored_source_sha(&x[0]).await, sha256(&bytes));
    assert_eq!(t.stored_source_sha(&y[0]).await, sha256(&other));
    let st: Value = t.get(&format!("/videos/{again}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["receivedParts"]["parts"], json!([1]));

    // A later part that matches nothing starts a video of its own.
    let r = send(&t, &token, Some(&format!("part 2/{n}")), "stray.mp4", parts[1].clone(), Field::None).await;
    let stray = created_id(r).await;
    let st: Value = t.get(&format!("/videos/{stray}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["status"], "uploading");
    // … which its part 1 then joins.
    let r = send(&t, &token, Some(&format!("part 1/{n}")), "stray.mp4", parts[0].clone(), Field::None).await;
    assert_eq!(created_id(r).await, stray);

    // Another token with the same file name is another upload.
    let token2 = new_token(&t, 0).await;
    let r = send(&t, &token2, Some(&format!("part 2/{n}")), "stray.mp4", parts[1].clone(), Field::None).await;
    assert_ne!(created_id(r).await, stray);
    assert_eq!(videos(&t).await.len(), 6);
}

backend_test!(racing_parts_without_video_id_make_one_video);
async fn racing_parts_without_video_id_make_one_video(b: Backend) {
    let t = TestServer::start(&b).await;
    let token = new_token(&t, 0).await;
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(M5).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    for round in 0..2 {
        let name = format!("race{round}.mp4");
        let ranges: Vec<String> = (1..=n).map(|i| format!("part {i}/{n}")).collect();
        let sends = parts.iter().zip(&ranges).map(|(p, r)| send(&t, &token, Some(r), &name, p.clone(), Field::None));
        let answers = futures::future::join_all(sends).await;
        let mut ids = Vec::new();
        for r in answers {
            ids.push(created_id(r).await);
        }
        assert!(ids.iter().all(|i| *i == ids[0]), "{}: {ids:?}", b.label);
        let st = t.wait_status(&ids[0], 30, |s| s["ingest"]["status"] == "uploaded").await;
        assert_eq!(st["ingest"]["filesize"], bytes.len());
        assert_eq!(t.stored_source_sha(&ids[0]).await, sha256(&bytes));
    }
    // One video per round, none left over by the losers of the races.
    assert_eq!(videos(&t).await.len(), 2, "{}", b.label);
}

backend_test!(token_refusals);
async fn token_refusals(b: Backend) {
    let t = TestServer::start(&b).await;
    let small = small_video();
    let post = |q: &str| t.http.post(format!("{}/upload{q}", t.url));
    let form = || {
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(small.clone()).file_name("a.mp4"))
    };
    // Missing or empty: missing; an API key is no substitute.
    problem(post("").multipart(form()).send().await.unwrap(), 401, "authentication-missing-upload-token").await;
    let r = post("?token=").basic_auth(&t.key, Some("")).multipart(form()).send().await.unwrap();
    problem(r, 401, "authentication-missing-upload-token").await;
    // Unknown or malformed.
    let fake = UploadTokenId::generate_secret();
    let r = post(&format!("?token={fake}")).multipart(form()).send().await.unwrap();
    problem(r, 401, "authentication-invalid-upload-token").await;
    problem(
        post("?token=%27%3B--").multipart(form()).send().await.unwrap(),
        401,
        "authentication-invalid-upload-token",
    )
    .await;
    let r = post(&format!("?token={}", "t".repeat(5000))).multipart(form()).send().await.unwrap();
    problem(r, 401, "authentication-invalid-upload-token").await;
    // Expired.
    let short = new_token(&t, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    problem(
        send(&t, &short, None, "a.mp4", small.clone(), Field::None).await,
        401,
        "authentication-invalid-upload-token",
    )
    .await;

    // Deleted mid-upload: the next part is refused, and the token's uploads are forgotten.
    let token = new_token(&t, 0).await;
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(M5).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    let r = send(&t, &token, Some(&format!("part 1/{n}")), "cut.mp4", parts[0].clone(), Field::None).await;
    let id = created_id(r).await;
    assert_eq!(t.req(Method::DELETE, &format!("/upload-tokens/{token}")).send().await.unwrap().status(), 204);
    let r = send(&t, &token, Some(&format!("part 2/{n}")), "cut.mp4", parts[1].clone(), Field::None).await;
    problem(r, 401, "authentication-invalid-upload-token").await;
    let r = send_to(&t, &token, &format!("part 2/{n}"), "cut.mp4", parts[1].clone(), &id, true).await;
    problem(r, 401, "authentication-invalid-upload-token").await;
    let ws = t.ws().await;
    let tid = UploadTokenId::parse(&token).unwrap();
    let key = TokenUploadKey { token: &tid, file_name: "cut.mp4", parts_total: n as u32 };
    assert_eq!(t.server.state.repo.token_upload_slot(&ws, key, 2).await.unwrap(), TokenUploadSlot::Free);
    let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["receivedParts"]["parts"], json!([1]));

    // A token is accepted nowhere else, as Basic or Bearer.
    let live = new_token(&t, 0).await;
    let r = t.http.get(format!("{}/videos", t.url)).basic_auth(&live, Some("")).send().await.unwrap();
    problem(r, 401, "authentication-invalid-api-key").await;
    let r = t.http.get(format!("{}/videos", t.url)).bearer_auth(&live).send().await.unwrap();
    problem(r, 401, "authentication-invalid-access-token").await;
    let r =
        t.http.post(format!("{}/videos/{id}/source", t.url)).bearer_auth(&live).multipart(form()).send().await.unwrap();
    problem(r, 401, "authentication-invalid-access-token").await;
    let r = t.http.post(format!("{}/videos/{id}/source?token={live}", t.url)).multipart(form()).send().await.unwrap();
    problem(r, 401, "authentication-missing-authorization-header").await;
    // Only the upload made before the deletion exists.
    assert_eq!(videos(&t).await.len(), 1, "{}", b.label);
}

backend_test!(tenancy_and_bad_forms);
async fn tenancy_and_bad_forms(b: Backend) {
    let t = TestServer::start(&b).await;
    let token = new_token(&t, 0).await;
    let small = small_video();
    // Another workspace's video, through this workspace's token: not found, untouched.
    let repo = t.server.state.repo.clone();
    let other_ws = repo.create_workspace("other").await.unwrap();
    let other_key = vidi_api::auth::create_api_key(repo.as_ref(), &other_ws, "k").await.unwrap();
    let r = t
        .http
        .post(format!("{}/videos", t.url))
        .basic_auth(&other_key, Some(""))
        .json(&json!({ "title": "theirs" }))
        .send()
        .await
        .unwrap();
    let theirs = created_id(r).await;
    let body = problem(
        send_to(&t, &token, "part 1/1", "a.mp4", small.clone(), &theirs, true).await,
        404,
        "resource-not-found",
    )
    .await;
    assert_eq!(body["name"], "videoId");
    let v = repo.get_video(&other_ws, &VideoId::parse(&theirs).unwrap()).await.unwrap();
    assert_eq!(v.ingest.state, vidi_core::model::IngestState::Missing);
    // A token of the other workspace uploads there, and sees nothing here.
    let r = t
        .http
        .post(format!("{}/upload-tokens", t.url))
        .basic_auth(&other_key, Some(""))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let their_token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let mine = t.create_video("mine").await;
    problem(
        send_to(&t, &their_token, "part 1/1", "a.mp4", small.clone(), &mine, false).await,
        404,
        "resource-not-found",
    )
    .await;
    let r = send(&t, &their_token, None, "for them.mp4", small.clone(), Field::None).await;
    let made = created_id(r).await;
    assert_eq!(repo.get_video(&other_ws, &VideoId::parse(&made).unwrap()).await.unwrap().title, "for them");
    assert_eq!(videos(&t).await.len(), 1);

    // Bad forms: each refused, no video left behind.
    problem(send(&t, &token, None, "a.mp4", Vec::new(), Field::None).await, 400, "uploaded-file-empty").await;
    problem(
        send(&t, &token, Some("parts 1/2"), "a.mp4", small.clone(), Field::None).await,
        400,
        "video-content-range-malformed",
    )
    .await;
    problem(
        send(&t, &token, Some("part 0/2"), "a.mp4", small.clone(), Field::None).await,
        400,
        "video-content-range-by-part-part-zero",
    )
    .await;
    problem(
        send(&t, &token, Some("part 3/2"), "a.mp4", small.clone(), Field::None).await,
        400,
        "video-content-range-by-part-part-too-high-total",
    )
    .await;
    // A first part under 5 MiB of a larger file.
    problem(
        send(&t, &token, Some("part 1/2"), "a.mp4", small.clone(), Field::None).await,
        400,
        "video-content-range-by-part-uploaded-file-too-small",
    )
    .await;
    problem(
        send(&t, &token, None, "a.mp4", small.clone(), Field::Before("not-an-id")).await,
        404,
        "resource-not-found",
    )
    .await;
    problem(
        send(&t, &token, None, "a.mp4", small.clone(), Field::After("vi0000000000000000000000")).await,
        404,
        "resource-not-found",
    )
    .await;
    let no_file = reqwest::multipart::Form::new().text("videoId", mine.clone());
    let r = t.http.post(format!("{}/upload?token={token}", t.url)).multipart(no_file).send().await.unwrap();
    problem(r, 400, "uploaded-file-no-file").await;
    let two = reqwest::multipart::Form::new()
        .part("a", reqwest::multipart::Part::bytes(small.clone()).file_name("a.mp4"))
        .part("b", reqwest::multipart::Part::bytes(small.clone()).file_name("b.mp4"));
    let r = t.http.post(format!("{}/upload?token={token}", t.url)).multipart(two).send().await.unwrap();
    problem(r, 400, "uploaded-file-multiple-files").await;
    let r = t.http.post(format!("{}/upload?token={token}", t.url)).body("not a form").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let huge = reqwest::multipart::Form::new()
        .text("videoId", "x".repeat(100 * 1024))
        .part("file", reqwest::multipart::Part::bytes(small.clone()).file_name("a.mp4"));
    let r = t.http.post(format!("{}/upload?token={token}", t.url)).multipart(huge).send().await.unwrap();
    problem(r, 400, "invalid-payload").await;
    assert_eq!(videos(&t).await.len(), 1, "{}", b.label);
    // No spooled parts are left on disk.
    let scratch = t.dir.path().join(".scratch");
    let left: Vec<_> = std::fs::read_dir(&scratch).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.iter().all(|e| !e.file_name().to_string_lossy().starts_with("upload-")), "{left:?}");
}

#[tokio::test]
async fn over_large_parts_are_refused_while_spooling() {
    let b = &Backend::sqlite_local();
    let t = TestServer::start_with(b, |c| c.uploads.max_request_bytes = 2 * MIB as u64).await;
    let token = new_token(&t, 0).await;
    let big = vec![7u8; 3 * MIB];
    problem(send(&t, &token, None, "a.mp4", big.clone(), Field::None).await, 400, "uploaded-file-too-large").await;
    let r =
        send(&t, &token, Some(&format!("bytes 0-{}/{}", big.len() - 1, big.len())), "a.mp4", big, Field::None).await;
    problem(r, 400, "video-content-range-by-bytes-range-too-large").await;
    assert!(videos(&t).await.is_empty());
}
