//! Player themes over HTTP (contract rows 34–40, §2, §8), on every configured backend: CRUD with
//! the schema's defaults, hostile colours refused, lists sorted and paged, logos checked for type
//! and limits and served byte for byte, videos attached only to players of their own workspace
//! and detached when the player goes.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Backend, TestServer, backend_test, problem};
use reqwest::Method;
use serde_json::{Value, json};

/// An image made by ffmpeg's lavfi `color` source, cached in the target folder.
fn image(name: &str, size: &str, extra: &[&str]) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    if !out.exists() {
        let tmp = dir.join(format!("{}-{name}", uuid::Uuid::new_v4().simple()));
        let src = format!("color=c=red@0.5:s={size}");
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", &src, "-frames:v", "1"])
            .args(extra)
            .arg(&tmp)
            .status()
            .expect("ffmpeg runs");
        assert!(st.success(), "ffmpeg failed for {name}");
        std::fs::rename(&tmp, &out).unwrap();
    }
    std::fs::read(out).unwrap()
}

async fn upload_logo(t: &TestServer, player: &str, file: (&str, Vec<u8>), link: Option<&str>) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    // Node 2.5.4 names the part after the file; the link may come before the file.
    if let Some(l) = link {
        form = form.text("link", l.to_string());
    }
    form = form.part(file.0.to_string(), reqwest::multipart::Part::bytes(file.1).file_name(file.0.to_string()));
    t.req(Method::POST, &format!("/players/{player}/logo")).multipart(form).send().await.unwrap()
}

backend_test!(player_themes_crud_with_defaults_and_validation);
async fn player_themes_crud_with_defaults_and_validation(b: Backend) {
    let t = TestServer::start(&b).await;
    // Everything optional: the schema's defaults come back, and nothing outside the schema.
    let r = t.post_json("/players", json!({})).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    let p: Value = r.json().await.unwrap();
    let id = p["playerId"].as_str().unwrap().to_string();
    assert!(id.starts_with("pt") && id.len() == 24, "{id}");
    assert_eq!(p["text"], "rgba(255, 255, 255, 1)");
    assert_eq!(p["trackPlayed"], "rgba(88, 131, 255, .95)");
    assert_eq!(p["backgroundTop"], "rgba(0, 0, 0, .7)");
    assert_eq!((p["enableApi"].as_bool(), p["enableControls"].as_bool()), (Some(true), Some(true)));
    assert_eq!((p["forceAutoplay"].as_bool(), p["hideTitle"].as_bool()), (Some(false), Some(false)));
    assert_eq!(p["forceLoop"], false);
    assert_eq!(p["assets"], json!({}));
    assert!(p.get("linkActive").is_none() && p.get("name").is_none(), "{p}");
    assert!(p["createdAt"].as_str().unwrap().ends_with("+00:00"));

    // The spec's own example fields are accepted and never echoed.
    let r = t
        .post_json(
            "/players",
            json!({ "name": "Brand", "link": "#ff0000", "linkActive": "rgb(1,2,3)", "hideTitle": true,
                    "shapeMargin": 10, "shapeRadius": 3, "shapeAspect": "flat", "language": "en",
                    "assets": { "logo": "x", "link": "y" } }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let brand: Value = r.json().await.unwrap();
    let brand_id = brand["playerId"].as_str().unwrap().to_string();
    assert_eq!((brand["name"].as_str(), brand["link"].as_str()), (Some("Brand"), Some("#ff0000")));
    assert_eq!(brand["linkActive"], "rgb(1,2,3)");
    assert_eq!(brand["hideTitle"], true);
    for extra in ["shapeMargin", "shapeRadius", "shapeAspect", "language"] {
        assert!(brand.get(extra).is_none(), "{extra} echoed: {brand}");
    }
    assert_eq!(brand["assets"], json!({}));

    // Hostile or wrong values: 400 with the attribute named, nothing stored.
    for (body, name) in [
        (json!({ "text": "red; background: url(//evil)" }), "text"),
        (json!({ "backgroundTop": "</style><script>alert(1)</script>" }), "backgroundTop"),
        (json!({ "trackPlayed": 12 }), "trackPlayed"),
        (json!({ "enableApi": "yes" }), "enableApi"),
        (json!({ "name": "n".repeat(101) }), "name"),
    ] {
        let body = problem(t.post_json("/players", body.clone()).await, 400, "invalid-attribute").await;
        assert_eq!(body["name"], name, "{body}");
    }

    // Update: given fields change, the rest keep their value; updatedAt moves.
    let r =
        t.patch_json(&format!("/players/{id}"), json!({ "name": "Zed", "forceLoop": true, "text": "#00ff00" })).await;
    assert_eq!(r.status(), 200);
    let up: Value = r.json().await.unwrap();
    assert_eq!(
        (up["name"].as_str(), up["text"].as_str(), up["forceLoop"].as_bool()),
        (Some("Zed"), Some("#00ff00"), Some(true))
    );
    assert_eq!(up["trackPlayed"], "rgba(88, 131, 255, .95)");
    problem(t.patch_json(&format!("/players/{id}"), json!({ "link": "url(x)" })).await, 400, "invalid-attribute").await;
    let shown: Value = t.get(&format!("/players/{id}")).await.json().await.unwrap();
    assert_eq!(shown, up, "a refused update changed nothing");

    // Lists: sorted by name both ways, paged, with a bad sort refused.
    let names = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap_or("").to_string()).collect()
    };
    let l: Value = t.get("/players?sortBy=name&sortOrder=asc").await.json().await.unwrap();
    assert_eq!(names(&l), ["Brand", "Zed"]);
    let l: Value = t.get("/players?sortBy=name&sortOrder=desc&pageSize=1&currentPage=2").await.json().await.unwrap();
    assert_eq!(names(&l), ["Brand"]);
    assert_eq!((l["pagination"]["itemsTotal"].as_u64(), l["pagination"]["pagesTotal"].as_u64()), (Some(2), Some(2)));
    problem(t.get("/players?sortBy=color").await, 400, "request-invalid-query-parameter").await;

    // Delete: 204, then 404 everywhere.
    assert_eq!(t.req(Method::DELETE, &format!("/players/{brand_id}")).send().await.unwrap().status(), 204);
    for (m, p) in [
        (Method::GET, format!("/players/{brand_id}")),
        (Method::DELETE, format!("/players/{brand_id}")),
        (Method::DELETE, format!("/players/{brand_id}/logo")),
        (Method::GET, "/players/ptnope".to_string()),
    ] {
        let r = t.req(m, &p).send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
}

backend_test!(logos_are_checked_kept_and_served);
async fn logos_are_checked_kept_and_served(b: Backend) {
    let png = image("logo-200x100.png", "200x100", &["-pix_fmt", "rgba"]);
    let jpg = image("logo-120x50.jpg", "120x50", &[]);
    let too_wide = image("logo-240x100.png", "240x100", &["-pix_fmt", "rgba"]);
    let gif = image("logo.gif", "50x50", &[]);
    // A PNG over 100 KiB within the pixel limits: random noise does not compress.
    let mut heavy = png.clone();
    heavy.extend(std::iter::repeat_with(rand_byte).take(101 * 1024));
    let t = TestServer::start(&b).await;
    let p: Value = t.post_json("/players", json!({ "name": "logo" })).await.json().await.unwrap();
    let id = p["playerId"].as_str().unwrap().to_string();

    // PNG with its link, given before the file: 201, kept byte for byte (transparency too).
    let r = upload_logo(&t, &id, ("brand logo.png", png.clone()), Some("https://example.com/brand")).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["assets"]["link"], "https://example.com/brand");
    let url = p["assets"]["logo"].as_str().unwrap().to_string();
    assert!(url.starts_with(&t.url) && url.ends_with(".png"), "{url}");
    let got = t.http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), png.as_slice());

    // Replaced by a JPEG without a link: a new URL, the old one gone, the link cleared.
    let r = upload_logo(&t, &id, ("file", jpg.clone()), None).await;
    assert_eq!(r.status(), 201);
    let p: Value = r.json().await.unwrap();
    let url2 = p["assets"]["logo"].as_str().unwrap().to_string();
    assert!(url2.ends_with(".jpg") && url2 != url, "{url2}");
    assert!(p["assets"].get("link").is_none(), "{p}");
    assert_eq!(t.http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(t.http.get(&url2).send().await.unwrap().bytes().await.unwrap().as_ref(), jpg.as_slice());

    // Wrong type, over the pixel limit, over the byte limit, a hostile link, no file: 400,
    // and the logo in place is untouched.
    problem(upload_logo(&t, &id, ("logo.gif", gif.clone()), None).await, 400, "uploaded-file-extension-invalid").await;
    let body =
        problem(upload_logo(&t, &id, ("wide.png", too_wide.clone()), None).await, 400, "uploaded-file-invalid-file")
            .await;
    assert!(body["detail"].as_str().unwrap().contains("240×100"), "{body}");
    problem(upload_logo(&t, &id, ("heavy.png", heavy.clone()), None).await, 400, "uploaded-file-too-large").await;
    problem(
        upload_logo(&t, &id, ("logo.png", png.clone()), Some("javascript:alert(1)")).await,
        400,
        "invalid-attribute",
    )
    .await;
    let long = format!("https://example.com/{}", "a".repeat(3000));
    problem(upload_logo(&t, &id, ("logo.png", png.clone()), Some(&long)).await, 400, "invalid-attribute").await;
    // Two files in one form: refused, nothing stored.
    let two = reqwest::multipart::Form::new()
        .part("a", reqwest::multipart::Part::bytes(png.clone()).file_name("a.png"))
        .part("b", reqwest::multipart::Part::bytes(png.clone()).file_name("b.png"));
    let r = t.req(Method::POST, &format!("/players/{id}/logo")).multipart(two).send().await.unwrap();
    problem(r, 400, "uploaded-file-multiple-files").await;
    let none = t
        .req(Method::POST, &format!("/players/{id}/logo"))
        .multipart(reqwest::multipart::Form::new().text("link", "x"))
        .send()
        .await
        .unwrap();
    problem(none, 400, "uploaded-file-no-file").await;
    let p: Value = t.get(&format!("/players/{id}")).await.json().await.unwrap();
    assert_eq!(p["assets"]["logo"], url2.as_str());
    // Paths that are not a stored logo's are 404, never a read elsewhere.
    for bad in ["logo-..%2F..%2Fx.png", "source", "logo-abc.gif", "logo-.png"] {
        let r = t.http.get(format!("{}/assets/players/{id}/{bad}", t.url)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }

    // Delete the logo: 204, both fields gone, the file gone.
    assert_eq!(t.req(Method::DELETE, &format!("/players/{id}/logo")).send().await.unwrap().status(), 204);
    let p: Value = t.get(&format!("/players/{id}")).await.json().await.unwrap();
    assert_eq!(p["assets"], json!({}));
    assert_eq!(t.http.get(&url2).send().await.unwrap().status(), 404);
    // Unknown player: 404 (the body is drained, not left hanging).
    let r = upload_logo(&t, "pt0000000000000000000000", ("logo.png", png.clone()), None).await;
    problem(r, 404, "resource-not-found").await;
}

fn rand_byte() -> u8 {
    (uuid::Uuid::new_v4().as_u128() & 0xFF) as u8
}

backend_test!(videos_name_only_their_workspaces_players_and_lose_deleted_ones);
async fn videos_name_only_their_workspaces_players_and_lose_deleted_ones(b: Backend) {
    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    let other_ws = repo.create_workspace("other").await.unwrap();
    let other_key = vidi_api::auth::create_api_key(repo.as_ref(), &other_ws, "k").await.unwrap();
    let theirs: Value = t
        .http
        .post(format!("{}/players", t.url))
        .basic_auth(&other_key, Some(""))
        .json(&json!({ "name": "theirs" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let theirs = theirs["playerId"].as_str().unwrap().to_string();
    let mine: Value = t.post_json("/players", json!({ "name": "mine" })).await.json().await.unwrap();
    let mine = mine["playerId"].as_str().unwrap().to_string();

    // Another workspace's player is one that does not exist, on create and on update.
    problem(t.get(&format!("/players/{theirs}")).await, 404, "resource-not-found").await;
    let body =
        problem(t.post_json("/videos", json!({ "title": "v", "playerId": theirs })).await, 400, "invalid-attribute")
            .await;
    assert_eq!(body["name"], "playerId");
    problem(t.post_json("/videos", json!({ "title": "v", "playerId": "ptmissing" })).await, 400, "invalid-attribute")
        .await;
    let r = t.post_json("/videos", json!({ "title": "v", "playerId": mine })).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let vid = v["videoId"].as_str().unwrap().to_string();
    assert_eq!(v["playerId"], mine.as_str());
    problem(t.patch_json(&format!("/videos/{vid}"), json!({ "playerId": theirs })).await, 400, "invalid-attribute")
        .await;
    let v: Value = t.get(&format!("/videos/{vid}")).await.json().await.unwrap();
    assert_eq!(v["playerId"], mine.as_str(), "a refused update changed nothing");
    let other_video = t.create_video("other").await;
    let r = t.patch_json(&format!("/videos/{other_video}"), json!({ "playerId": mine })).await;
    assert_eq!(r.status(), 200);

    // Another workspace cannot delete or change mine.
    let as_other = |m: Method, p: String| t.http.request(m, format!("{}{}", t.url, p)).basic_auth(&other_key, Some(""));
    assert_eq!(as_other(Method::DELETE, format!("/players/{mine}")).send().await.unwrap().status(), 404);
    assert_eq!(
        as_other(Method::PATCH, format!("/players/{mine}"))
            .json(&json!({ "name": "x" }))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Deleting the player detaches it from every video that used it (contract §8).
    assert_eq!(t.req(Method::DELETE, &format!("/players/{mine}")).send().await.unwrap().status(), 204);
    for v in [&vid, &other_video] {
        let v: Value = t.get(&format!("/videos/{v}")).await.json().await.unwrap();
        assert!(v.get("playerId").is_none(), "{v}");
    }
    // Their player is untouched.
    let r = as_other(Method::GET, format!("/players/{theirs}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The configuration the player page gives its script (`#vidi-config`).
async fn page_config(t: &TestServer, video: &str, query: &str) -> Value {
    let html = t.http.get(format!("{}/embed/vod/{video}{query}", t.url)).send().await.unwrap().text().await.unwrap();
    let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).expect("config script");
    serde_json::from_str(data.split("</script>").next().unwrap()).unwrap()
}

backend_test!(a_theme_shapes_the_player_page);
async fn a_theme_shapes_the_player_page(b: Backend) {
    let png = image("logo-200x100.png", "200x100", &["-pix_fmt", "rgba"]);
    let t = TestServer::start(&b).await;
    let p: Value = t
        .post_json(
            "/players",
            json!({ "trackPlayed": "#ff0000", "text": "rgb(1, 2, 3)", "hideTitle": true, "forceLoop": true,
                    "forceAutoplay": true, "enableControls": false }),
        )
        .await
        .json()
        .await
        .unwrap();
    let pid = p["playerId"].as_str().unwrap().to_string();
    let logo: Value =
        upload_logo(&t, &pid, ("logo.png", png.clone()), Some("https://example.com/")).await.json().await.unwrap();
    let themed: Value =
        t.post_json("/videos", json!({ "title": "themed", "playerId": pid })).await.json().await.unwrap();
    let plain = t.create_video("plain").await;

    // Even a query asking otherwise cannot undo what the theme forces.
    let c = page_config(&t, themed["videoId"].as_str().unwrap(), "?autoplay=false&hideTitle=false").await;
    assert_eq!(c["theme"]["--media-range-bar-color"], "#ff0000", "{}: {c}", b.label);
    assert_eq!(c["theme"]["--media-primary-color"], "rgb(1, 2, 3)");
    assert_eq!((c["hideTitle"].as_bool(), c["autoplay"].as_bool()), (Some(true), Some(true)));
    assert_eq!((c["loop"].as_bool(), c["controls"].as_bool()), (Some(true), Some(false)));
    assert_eq!(c["logo"]["src"], logo["assets"]["logo"]);
    assert_eq!(c["logo"]["link"], "https://example.com/");

    // Without a theme: the defaults, no logo.
    let c = page_config(&t, &plain, "?autoplay=false").await;
    assert_eq!(c["theme"], json!({}));
    assert_eq!(
        (c["autoplay"].as_bool(), c["controls"].as_bool(), c["loop"].as_bool()),
        (Some(false), Some(true), Some(false))
    );
    assert!(c["logo"].is_null(), "{c}");

    // A deleted theme leaves the default look.
    assert_eq!(t.req(Method::DELETE, &format!("/players/{pid}")).send().await.unwrap().status(), 204);
    let c = page_config(&t, themed["videoId"].as_str().unwrap(), "").await;
    assert_eq!(c["theme"], json!({}));
}
