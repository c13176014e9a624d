//! `POST /videos/{id}/source` as clients use it: whole files, `part n/N`, `part n/*` and
//! `bytes a-b/T` chunks, concurrent and out of order, every §4.6 refusal, and the stored source
//! compared byte for byte with the original, on every configured backend.

use crate::common::{Backend, MIB, TestServer, backend_test, big_video, problem, sha256, small_video};
use reqwest::Method;
use serde_json::{Value, json};
use vidi_core::model::ProbeOutcome;

const M5: usize = 5 * MIB;

backend_test!(whole_file_in_one_request);
async fn whole_file_in_one_request(b: Backend) {
    let t = TestServer::start(&b).await;
    let bytes = small_video();
    let id = t.create_video("whole").await;
    let r = t.upload(&id, None, bytes.clone()).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["videoId"], id);
    assert_eq!(v["title"], "whole");
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
    // The probe lands in the status' encoding metadata.
    let st = t.wait_status(&id, 30, |s| s["encoding"]["metadata"]["width"] == 320).await;
    assert_eq!(st["ingest"]["status"], "uploaded");
    assert_eq!(st["ingest"]["filesize"], bytes.len());
    let m = &st["encoding"]["metadata"];
    assert_eq!(
        (m["height"].as_u64(), m["videoCodec"].as_str(), m["audioCodec"].as_str()),
        (Some(240), Some("h264"), Some("aac"))
    );
    assert_eq!(
        (m["framerate"].as_u64(), m["duration"].as_u64(), m["aspectRatio"].as_str()),
        (Some(25), Some(2), Some("4:3"))
    );
    // Once complete, a video takes no more uploads.
    problem(t.upload(&id, None, bytes.clone()).await, 400, "video-source-already-uploaded").await;
    problem(t.upload(&id, Some("part 1/1"), bytes).await, 400, "video-source-already-uploaded").await;
}

#[tokio::test]
async fn the_file_part_is_found_whatever_its_name() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let bytes = small_video();
    let id = t.create_video("node-style").await;
    // Node 2.5.4 names the field after the file, and puts text fields around it.
    let form = reqwest::multipart::Form::new()
        .text("before", "x")
        .part("my video.mp4", reqwest::multipart::Part::bytes(bytes.clone()).file_name("my video.mp4"))
        .text("after", "y");
    let r = t.req(Method::POST, &format!("/videos/{id}/source")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
}

backend_test!(parts_in_order_out_of_order_and_concurrently);
async fn parts_in_order_out_of_order_and_concurrently(b: Backend) {
    let t = TestServer::start(&b).await;
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(M5).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    assert!(n >= 3);

    // In order, as every official client sends them.
    let id = t.create_video("in order").await;
    for (i, p) in parts.iter().enumerate() {
        let r = t.upload(&id, Some(&format!("part {}/{n}", i + 1)), p.clone()).await;
        assert_eq!(r.status(), 201, "{}", b.label);
        let body: Value = r.json().await.unwrap();
        if i + 1 < n {
            assert_eq!(body, json!({ "videoId": id }), "intermediate answers hold only the id");
        } else {
            assert_eq!(body["title"], "in order");
        }
    }
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
    let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["receivedParts"], json!({"parts": (1..=n).collect::<Vec<_>>(), "total": n}));

    // Reversed: the last part first, then the others.
    let id = t.create_video("reversed").await;
    for i in (0..n).rev() {
        let r = t.upload(&id, Some(&format!("part {}/{n}", i + 1)), parts[i].clone()).await;
        assert_eq!(r.status(), 201);
    }
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));

    // All at once.
    let id = t.create_video("concurrent").await;
    let sends = parts.iter().enumerate().map(|(i, p)| t.upload(&id, Some(&format!("part {}/{n}", i + 1)), p.clone()));
    let answers = futures::future::join_all(sends).await;
    assert!(answers.iter().all(|r| r.status() == 201));
    let complete = t.wait_status(&id, 10, |s| s["ingest"]["status"] == "uploaded").await;
    assert_eq!(complete["ingest"]["filesize"], bytes.len());
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
}

backend_test!(progressive_upload_with_unknown_total);
async fn progressive_upload_with_unknown_total(b: Backend) {
    let t = TestServer::start(&b).await;
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(M5).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    let id = t.create_video("progressive").await;
    for (i, p) in parts.iter().enumerate().take(n - 1) {
        assert_eq!(t.upload(&id, Some(&format!("part {}/*", i + 1)), p.clone()).await.status(), 201);
    }
    let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["status"], "uploading");
    assert_eq!(st["ingest"]["receivedParts"]["total"], Value::Null);
    // The last part names itself as the total.
    let r = t.upload(&id, Some(&format!("part {n}/{n}")), parts[n - 1].clone()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
}

backend_test!(byte_ranges_in_any_order);
async fn byte_ranges_in_any_order(b: Backend) {
    let t = TestServer::start(&b).await;
    let bytes = big_video();
    let total = bytes.len();
    let id = t.create_video("bytes").await;
    let ranges = [(M5, 2 * M5 - 1), (2 * M5, total - 1), (0, M5 - 1)];
    for (k, (f, to)) in ranges.iter().enumerate() {
        let r = t.upload(&id, Some(&format!("bytes {f}-{to}/{total}")), bytes[*f..=*to].to_vec()).await;
        assert_eq!(r.status(), 201, "{}", b.label);
        if k == 0 {
            let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
            assert_eq!(st["ingest"]["receivedBytes"], json!([{"from": M5, "to": 2 * M5 - 1, "total": total}]));
            assert_eq!(st["ingest"]["filesize"], total);
        }
    }
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
    let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["receivedBytes"], json!([{"from": 0, "to": total - 1, "total": total}]));
}

backend_test!(content_range_refusals_lose_nothing);
async fn content_range_refusals_lose_nothing(b: Backend) {
    let t = TestServer::start(&b).await;
    let bytes = big_video();
    let p1 = bytes[..M5].to_vec();
    let small = vec![7u8; 1000];
    let id = t.create_video("rules").await;
    let up = |cr: &str, body: Vec<u8>| t.upload(&id, Some(cr), body);
    problem(up("parts 1/2", small.clone()).await, 400, "video-content-range-malformed").await;
    problem(up("part 0/2", small.clone()).await, 400, "video-content-range-by-part-part-zero").await;
    problem(up("part 1/0", small.clone()).await, 400, "video-content-range-by-part-total-parts-zero").await;
    problem(up("part 3/2", small.clone()).await, 400, "video-content-range-by-part-part-too-high-total").await;
    problem(up("part 10001/*", small.clone()).await, 400, "video-content-range-by-part-part-too-high-allowed").await;
    problem(up("part 1/10001", small.clone()).await, 400, "video-content-range-by-part-total-parts-too-high").await;
    // A non-last part under 5 MiB is refused after it is read, and its slot stays free.
    problem(up("part 1/3", small.clone()).await, 400, "video-content-range-by-part-uploaded-file-too-small").await;
    assert_eq!(up("part 1/3", p1.clone()).await.status(), 201);
    problem(up("part 1/3", p1.clone()).await, 400, "video-content-range-by-part-part-already-sent").await;
    problem(up("part 2/4", p1.clone()).await, 400, "video-content-range-by-part-different-total-parts").await;
    problem(up("bytes 0-9/10", small.clone()).await, 400, "video-content-range-started-with-part").await;
    problem(t.upload(&id, None, small.clone()).await, 400, "video-content-range-already-initiated").await;
    // The part accepted before all those refusals is intact.
    let rest = &bytes[M5..];
    assert_eq!(up("part 2/3", rest[..M5].to_vec()).await.status(), 201);
    assert_eq!(up("part 3/3", rest[M5..].to_vec()).await.status(), 201);
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));

    let id2 = t.create_video("bytes rules").await;
    let up2 = |cr: &str, body: Vec<u8>| t.upload(&id2, Some(cr), body);
    let total = bytes.len();
    problem(up2("bytes 0-9/0", small.clone()).await, 400, "video-content-range-by-bytes-total-bytes-zero").await;
    problem(up2("bytes 9-0/10", small.clone()).await, 400, "video-content-range-by-bytes-from-byte-too-high").await;
    problem(up2("bytes 0-10/10", small.clone()).await, 400, "video-content-range-by-bytes-to-byte-too-high-total")
        .await;
    problem(
        up2("bytes 0-99/60000000000", small.clone()).await,
        400,
        "video-content-range-by-bytes-total-bytes-too-high",
    )
    .await;
    problem(
        up2(&format!("bytes 0-999/{total}"), small.clone()).await,
        400,
        "video-content-range-by-bytes-range-too-small",
    )
    .await;
    // A lying range: the body is shorter than announced (a truncated chunk).
    let lie = format!("bytes 0-{}/{total}", M5 - 1);
    problem(up2(&lie, bytes[..M5 - 10].to_vec()).await, 400, "video-content-range-by-bytes-range-mismatch").await;
    assert_eq!(up2(&lie, p1.clone()).await.status(), 201);
    problem(
        up2(&format!("bytes 100-{}/{total}", M5 + 100), p1.clone()).await,
        400,
        "video-content-range-by-bytes-range-overlap",
    )
    .await;
    problem(
        up2(&format!("bytes {M5}-{}/{}", total - 1, total + 1), vec![0; total - M5]).await,
        400,
        "video-content-range-by-bytes-different-total-bytes",
    )
    .await;
    problem(up2("part 2/2", p1.clone()).await, 400, "video-content-range-started-with-bytes").await;
    assert_eq!(up2(&format!("bytes {M5}-{}/{total}", total - 1), bytes[M5..].to_vec()).await.status(), 201);
    assert_eq!(t.stored_source_sha(&id2).await, sha256(&bytes));
}

backend_test!(file_refusals);
async fn file_refusals(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.uploads.max_request_bytes = 6 * MIB as u64).await;
    let id = t.create_video("files").await;
    problem(t.upload(&id, None, Vec::new()).await, 400, "uploaded-file-empty").await;
    problem(t.upload(&id, Some("part 1/1"), Vec::new()).await, 400, "uploaded-file-empty").await;
    problem(t.upload(&id, None, vec![1; 7 * MIB]).await, 400, "uploaded-file-too-large").await;
    problem(t.upload(&id, Some("part 1/2"), vec![1; 7 * MIB]).await, 400, "uploaded-file-too-large").await;
    problem(
        t.upload(&id, Some(&format!("bytes 0-{}/{}", 7 * MIB - 1, 8 * MIB)), vec![1; 7 * MIB]).await,
        400,
        "video-content-range-by-bytes-range-too-large",
    )
    .await;
    let two = reqwest::multipart::Form::new()
        .part("a", reqwest::multipart::Part::bytes(vec![1; 10]).file_name("a.mp4"))
        .part("b", reqwest::multipart::Part::bytes(vec![2; 10]).file_name("b.mp4"));
    let r = t.req(Method::POST, &format!("/videos/{id}/source")).multipart(two).send().await.unwrap();
    problem(r, 400, "uploaded-file-multiple-files").await;
    let none = reqwest::multipart::Form::new().text("title", "x");
    let r = t.req(Method::POST, &format!("/videos/{id}/source")).multipart(none).send().await.unwrap();
    problem(r, 400, "uploaded-file-no-file").await;
    let r = t.req(Method::POST, &format!("/videos/{id}/source")).body("raw bytes").send().await.unwrap();
    problem(r, 400, "uploaded-file-no-file").await;
    problem(t.upload("vi0000000000000000000000", None, vec![1; 10]).await, 404, "resource-not-found").await;
    // After all that the video still takes its upload.
    let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["status"], "missing");
    assert_eq!(t.upload(&id, None, small_video()).await.status(), 201);
}

backend_test!(a_file_that_is_not_a_video_is_marked_failed);
async fn a_file_that_is_not_a_video_is_marked_failed(b: Backend) {
    let t = TestServer::start(&b).await;
    let id = t.create_video("junk").await;
    assert_eq!(t.upload(&id, None, b"this is not a video at all".repeat(100)).await.status(), 201);
    let ws = t.server.state.repo.default_workspace().await.unwrap().unwrap();
    let vid = vidi_core::id::VideoId::parse(&id).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = t.server.state.repo.get_video(&ws, &vid).await.unwrap();
        if let Some(p) = v.ingest.probe {
            assert!(matches!(p, ProbeOutcome::Failed(_)), "{p:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never probed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The server is still fine.
    assert_eq!(t.get(&format!("/videos/{id}/status")).await.status(), 200);
}

backend_test!(delete_removes_the_media);
async fn delete_removes_the_media(b: Backend) {
    let t = TestServer::start(&b).await;
    let id = t.create_video("gone").await;
    assert_eq!(t.upload(&id, None, small_video()).await.status(), 201);
    let ws = t.server.state.repo.default_workspace().await.unwrap().unwrap();
    let v = t.server.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&id).unwrap()).await.unwrap();
    let key = v.ingest.source_key.unwrap();
    assert!(t.server.state.blobs.size(&key).await.unwrap().is_some());
    assert_eq!(t.req(Method::DELETE, &format!("/videos/{id}")).send().await.unwrap().status(), 204);
    assert_eq!(t.server.state.blobs.size(&key).await.unwrap(), None, "{}", b.label);
}

backend_test!(source_from_a_url_and_from_a_clone);
async fn source_from_a_url_and_from_a_clone(b: Backend) {
    use axum::routing::get;
    let bytes = small_video();
    let served = bytes.clone();
    let app = axum::Router::new().route("/clip.mp4", get(move || async move { served.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The origin is on loopback, which the outbound guard refuses unless told otherwise.
    let t = TestServer::start_with(&b, |c| c.outbound.allow_private = true).await;
    let r = t.post_json("/videos", json!({"title": "fetched", "source": format!("http://{origin}/clip.mp4")})).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["source"]["type"], "download");
    let id = v["videoId"].as_str().unwrap().to_string();
    t.wait_status(&id, 20, |s| s["ingest"]["status"] == "uploaded").await;
    assert_eq!(t.stored_source_sha(&id).await, sha256(&bytes));
    problem(t.upload(&id, None, bytes.clone()).await, 400, "video-source-already-downloaded").await;

    let r = t.post_json("/videos", json!({"title": "copy", "source": id})).await;
    assert_eq!(r.status(), 202);
    let c: Value = r.json().await.unwrap();
    let cid = c["videoId"].as_str().unwrap().to_string();
    assert_eq!(c["source"]["type"], "clone");
    t.wait_status(&cid, 20, |s| s["ingest"]["status"] == "uploaded").await;
    assert_eq!(t.stored_source_sha(&cid).await, sha256(&bytes));
    problem(t.upload(&cid, None, bytes.clone()).await, 400, "video-source-already-copied").await;
    problem(
        t.post_json("/videos", json!({"title": "x", "source": "vi0000000000000000000000"})).await,
        400,
        "invalid-attribute",
    )
    .await;
}
