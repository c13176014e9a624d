//! The embeddable player page (`/embed/vod/{id}`) and the hls.js it loads from this binary.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::access::video;
use super::{IMMUTABLE, Params, QueryMap, respond};
use crate::{ApiResult, AppState};

const HLS_JS: &[u8] = include_bytes!("../../assets/hls.min.js");

pub(super) async fn hls_js() -> Response {
    respond(StatusCode::OK, "text/javascript", IMMUTABLE, HLS_JS.into())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The embeddable player: a full-window video element, hls.js where the browser has no native
/// HLS, starting from the beginning even while the playlist is still growing.
pub(super) async fn player(
    State(state): State<AppState>,
    Path(mut p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    if let Some(t) = q.get("token") {
        p.insert("token".into(), t.clone());
    }
    // Opening the player uses the private token: the page's media requests carry the session.
    let a = video(&state, &p, &h, &q).await?;
    let v = &a.video;
    let base = match p.get("token") {
        Some(t) if !v.public => format!("/vod/{}/token/{}", v.id, escape(t)),
        _ => format!("/vod/{}", v.id),
    };
    let avh = a.avh();
    let hls = format!("{base}/hls/manifest.m3u8{avh}");
    let poster = if v.encoding.thumbnail_key.is_some() {
        format!(" poster=\"{base}/thumbnail.jpg{avh}\"")
    } else {
        String::new()
    };
    let page = Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<style>html,body{{margin:0;height:100%;background:#000}}video{{width:100%;height:100%;display:block}}</style>
</head><body>
<video id="v" controls playsinline muted autoplay{poster}></video>
<script src="/assets/hls.min.js"></script>
<script>
const video = document.getElementById("v");
const src = "{hls}";
function fail(text) {{
  document.body.insertAdjacentHTML("beforeend", '<p style="color:#fff;font:16px sans-serif;position:absolute;top:40%;width:100%;text-align:center">' + text + "</p>");
}}
function start() {{
  if (window.Hls && Hls.isSupported()) {{
    const hls = new Hls({{ startPosition: 0 }});
    let retries = 0;
    hls.on(Hls.Events.FRAG_LOADED, () => {{ retries = 0; }});
    // Recover in place (never back to the start), a bounded number of times.
    hls.on(Hls.Events.ERROR, (_, d) => {{
      if (!d.fatal) return;
      if (++retries > 10) {{ hls.destroy(); return fail("This video cannot be played right now."); }}
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else setTimeout(() => hls.startLoad(video.currentTime || -1), 1000 * retries);
    }});
    hls.loadSource(src);
    hls.attachMedia(video);
  }} else if (video.canPlayType("application/vnd.apple.mpegurl")) {{
    video.src = src;
  }}
}}
// Until the first rendition exists the manifest answers 202: wait for it, and only for that.
(async function wait(attempt) {{
  const r = await fetch(src).catch(() => null);
  if (r && r.status === 200) return start();
  if (r && r.status !== 202) return fail(r.status === 403 ? "This video is private." : "This video is not available.");
  setTimeout(() => wait(attempt + 1), Math.min(500 * (attempt + 1), 3000));
}})(0);
</script>
</body></html>
"#,
        title = escape(&v.title),
    ));
    let mut r = page.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(a.finish(r))
}
