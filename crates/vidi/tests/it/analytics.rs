//! Player analytics (issue 22): the collector refuses abuse, each refusal a problem body counted
//! by reason, without affecting other clients; what it accepts comes back from the three
//! session endpoints in order, with §12's `period` grammar, on both databases. The player page's
//! own report runs in Chromium: tests/browser/analytics.test.mjs.

use std::time::Duration;

use crate::common::{Backend, TestServer, backend_test, problem};
use reqwest::Response;
use serde_json::{Value, json};
use vidi_api::collect::limit::Refusal;
use vidi_core::analytics::{Agent, EventKind, Period, PlayerEvent, PlayerSession, Referrer};
use vidi_core::id::{LiveStreamId, MediaId, PlayerSessionId, VideoId, WorkspaceId};

async fn collect(t: &TestServer, path: &str, body: impl Into<reqwest::Body>, forwarded: Option<&str>) -> Response {
    let mut r = t.http.post(format!("{}/collect{path}", t.url)).header("content-type", "application/json").body(body);
    if let Some(ip) = forwarded {
        r = r.header("x-forwarded-for", ip);
    }
    r.send().await.unwrap()
}

async fn mint(t: &TestServer, body: Value) -> Response {
    collect(t, "/sessions", body.to_string(), None).await
}

fn refused(t: &TestServer, r: Refusal) -> u64 {
    t.server.state.collector.stats().refused(r)
}

/// The configuration the player page gives its scripts (`#vidi-config`).
async fn page_config(t: &TestServer, url: &str) -> Value {
    let r = t.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let html = r.text().await.unwrap();
    let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).expect("config script");
    serde_json::from_str(data.split("</script>").next().unwrap()).unwrap()
}

backend_test!(the_collector_refuses_abuse_counts_it_and_keeps_what_it_takes);
async fn the_collector_refuses_abuse_counts_it_and_keeps_what_it_takes(b: Backend) {
    let t = TestServer::start(&b).await;
    let label = b.label.as_str();
    let video = t.create_video("watched").await;

    // Malformed: not JSON, an unknown field, neither or both subjects.
    let r = collect(&t, "/sessions", "{not json", None).await;
    problem(r, 400, "invalid-payload").await;
    problem(mint(&t, json!({"videoId": video, "admin": true})).await, 400, "invalid-payload").await;
    problem(mint(&t, json!({})).await, 400, "invalid-payload").await;
    problem(mint(&t, json!({"videoId": video, "liveStreamId": "li1"})).await, 400, "invalid-payload").await;
    assert_eq!(refused(&t, Refusal::Malformed), 4, "{label}");

    // Unknown subjects, well-formed or not.
    let body = problem(mint(&t, json!({"videoId": VideoId::generate()})).await, 404, "resource-not-found").await;
    assert_eq!(body["name"], "videoId", "{label}");
    problem(mint(&t, json!({"videoId": "vi../../x"})).await, 404, "resource-not-found").await;
    let body =
        problem(mint(&t, json!({"liveStreamId": LiveStreamId::generate()})).await, 404, "resource-not-found").await;
    assert_eq!(body["name"], "liveStreamId", "{label}");
    assert_eq!(refused(&t, Refusal::UnknownSubject), 3, "{label}");

    // Oversized: a body past the bound, too many metadata pairs, a batch of too many events.
    let big = json!({"videoId": video, "referrer": "x".repeat(20_000)}).to_string();
    problem(collect(&t, "/sessions", big, None).await, 413, "payload-too-large").await;
    let many: Vec<Value> = (0..40).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
    problem(mint(&t, json!({"videoId": video, "metadata": many})).await, 400, "invalid-attribute").await;

    // A good session, with metadata and a referrer.
    let r = mint(
        &t,
        json!({"videoId": video, "referrer": "https://www.google.com/search?q=cats", "metadata": [{"key": "plan", "value": "pro"}]}),
    )
    .await;
    assert_eq!(r.status(), 201, "{label}");
    let ps = r.json::<Value>().await.unwrap()["sessionId"].as_str().unwrap().to_string();
    assert!(ps.starts_with("ps") && ps.len() == 24, "{label}: {ps}");
    let events_path = format!("/sessions/{ps}/events");
    let huge: Vec<Value> = (0..201).map(|i| json!({"seq": i, "type": "play", "ts": 0, "at": 0})).collect();
    problem(collect(&t, &events_path, json!({"events": huge}).to_string(), None).await, 400, "invalid-attribute").await;
    assert_eq!(refused(&t, Refusal::TooLarge), 3, "{label}");

    // Events out of bounds, each refused whole: nothing of its batch is stored.
    let bad = [
        json!({"seq": 0, "type": "rewind", "ts": 0, "at": 0}),
        json!({"seq": 0, "type": "play", "ts": 0, "at": -1}),
        json!({"seq": 0, "type": "play", "ts": 0, "at": 1e12}),
        json!({"seq": 0, "type": "play", "ts": 3_600_000, "at": 0}),
        json!({"seq": 0, "type": "play", "ts": -5, "at": 0}),
        json!({"seq": 0, "type": "seek.forward", "ts": 0, "from": 9, "to": 3}),
        json!({"seq": 0, "type": "seek.backward", "ts": 0, "at": 3}),
        json!({"seq": 0, "type": "pause", "ts": 0}),
        json!({"seq": -1, "type": "pause", "ts": 0, "at": 0}),
        json!({"seq": 0, "type": "qoe.ttff", "ts": 0, "value": -3}),
    ];
    for (i, e) in bad.iter().enumerate() {
        let batch = json!({"events": [{"seq": 50, "type": "ready", "ts": 0, "at": 0}, e]});
        let body = problem(collect(&t, &events_path, batch.to_string(), None).await, 400, "invalid-attribute").await;
        assert_eq!(body["name"], "events[1]", "{label}: case {i}: {body}");
    }
    assert_eq!(refused(&t, Refusal::InvalidEvent), bad.len() as u64, "{label}");

    // An unknown session.
    let r = collect(&t, &format!("/sessions/{}/events", PlayerSessionId::generate()), r#"{"events":[]}"#, None).await;
    assert_eq!(problem(r, 404, "resource-not-found").await["name"], "sessionId", "{label}");
    assert_eq!(refused(&t, Refusal::UnknownSession), 1, "{label}");

    // A private video: outside its playback session, refused; within it (the player page's), taken.
    let private = t.create_video("private").await;
    assert_eq!(t.patch_json(&format!("/videos/{private}"), json!({"public": false})).await.status(), 200);
    problem(mint(&t, json!({"videoId": private})).await, 403, "video-private-token-invalid").await;
    problem(mint(&t, json!({"videoId": private, "avh": "not-a-session"})).await, 403, "video-private-token-invalid")
        .await;
    let v: Value = t.get(&format!("/videos/{private}")).await.json().await.unwrap();
    let config = page_config(&t, v["assets"]["player"].as_str().unwrap()).await;
    let avh = config["collector"]["avh"].as_str().expect("the page of a private video names its session");
    assert_eq!(mint(&t, json!({"videoId": private, "avh": avh})).await.status(), 201, "{label}");
    // That session is not a key to another private video.
    let other = t.create_video("other private").await;
    assert_eq!(t.patch_json(&format!("/videos/{other}"), json!({"public": false})).await.status(), 200);
    problem(mint(&t, json!({"videoId": other, "avh": avh})).await, 403, "video-private-token-invalid").await;
    assert_eq!(refused(&t, Refusal::Private), 3, "{label}");

    // What it takes: a batch in one request, sent twice (a retried beacon) and stored once.
    let batch = json!({"events": [
        {"seq": 0, "type": "ready", "ts": 10, "at": 0},
        {"seq": 1, "type": "play", "ts": 20, "at": 0},
        {"seq": 2, "type": "qoe.ttff", "ts": 25, "value": 180},
        {"seq": 3, "type": "seek.forward", "ts": 30, "from": 1, "to": 7.9},
        {"seq": 4, "type": "pause", "ts": 40, "at": 8.2},
        {"seq": 5, "type": "resume", "ts": 50, "at": 8},
        {"seq": 6, "type": "seek.backward", "ts": 60, "from": 9, "to": 2},
        {"seq": 7, "type": "end", "ts": 70, "at": 10},
    ]})
    .to_string();
    for _ in 0..2 {
        let r = collect(&t, &events_path, batch.clone(), None).await;
        assert_eq!(r.status(), 204, "{label}: {}", r.text().await.unwrap());
    }
    let stats = t.server.state.collector.stats();
    assert_eq!((stats.sessions, stats.events), (2, 8), "{label}");
    let period = time::OffsetDateTime::now_utc().date().to_string();
    let list: Value = t.get(&format!("/analytics/videos/{video}?period={period}")).await.json().await.unwrap();
    assert_eq!(list["pagination"]["itemsTotal"], 1, "{label}: {list}");
    let s = &list["data"][0];
    assert_eq!(s["session"]["sessionId"], ps.as_str(), "{label}");
    assert_eq!(s["session"]["metadata"], json!([{"key": "plan", "value": "pro"}]), "{label}");
    assert_eq!(
        s["referrer"],
        json!({"url": "https://www.google.com/search?q=cats", "medium": "organic", "source": "https://www.google.com", "searchTerm": "cats"}),
        "{label}"
    );
    assert_eq!(s["location"], json!({"country": "unknown", "city": "unknown"}), "{label}");
    // reqwest names no browser: the client is not known.
    assert_eq!(s["device"]["type"], "unknown", "{label}: {s}");
    let loaded = time::OffsetDateTime::parse(
        s["session"]["loadedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ended = time::OffsetDateTime::parse(
        s["session"]["endedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((ended - loaded).whole_milliseconds(), 70, "{label}: the last event's time");
    // Quality of experience (Vidi extension), on the same report.
    let qoe: Value = t.get(&format!("/analytics/videos/{video}/qoe?period={period}")).await.json().await.unwrap();
    assert_eq!(
        (&qoe["sessions"], &qoe["views"], &qoe["errorRate"], &qoe["timeToFirstFrame"]),
        (&json!(1), &json!(1), &json!(0.0), &json!({"count": 1, "median": 180, "p95": 180})),
        "{label}: {qoe}"
    );
    let events: Value = t.get(&format!("/analytics/sessions/{ps}/events")).await.json().await.unwrap();
    let got: Vec<Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("emittedAt");
            e
        })
        .collect();
    // In order, playheads in whole seconds, QoE kept apart from api.video's seven types.
    assert_eq!(
        got,
        vec![
            json!({"type": "ready", "at": 0}),
            json!({"type": "play", "at": 0}),
            json!({"type": "seek.forward", "from": 1, "to": 7}),
            json!({"type": "pause", "at": 8}),
            json!({"type": "resume", "at": 8}),
            json!({"type": "seek.backward", "from": 9, "to": 2}),
            json!({"type": "end", "at": 10}),
        ],
        "{label}"
    );
}

backend_test!(a_flood_from_one_address_is_refused_and_other_clients_are_not);
async fn a_flood_from_one_address_is_refused_and_other_clients_are_not(b: Backend) {
    // Behind a trusted proxy, each client is its `X-Forwarded-For` address.
    let t = TestServer::start_with(&b, |c| {
        c.analytics.collect_rate = 2;
        c.analytics.trusted_proxy = true;
    })
    .await;
    let label = b.label.as_str();
    let video = t.create_video("flooded").await;
    let body = json!({"videoId": video}).to_string();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(collect(&t, "/sessions", body.clone(), Some("198.51.100.1, 203.0.113.7")).await);
    }
    let (mut ok, mut limited) = (0, 0);
    for r in statuses {
        match r.status().as_u16() {
            201 => ok += 1,
            429 => {
                assert!(r.headers().contains_key("retry-after"), "{label}");
                problem(r, 429, "too-many-requests").await;
                limited += 1;
            }
            s => panic!("{label}: unexpected {s}"),
        }
    }
    // A burst of five seconds' worth (10), and about what refilled meanwhile.
    // (Refills while the requests run: a few more on a slow machine.)
    assert!(ok >= 10 && limited >= 20 && ok + limited == 40, "{label}: {ok} taken, {limited} refused");
    assert_eq!(refused(&t, Refusal::RateLimited), limited, "{label}");
    // Another client behind the same proxy is unaffected, and so is the API.
    assert_eq!(collect(&t, "/sessions", body.clone(), Some("203.0.113.8")).await.status(), 201, "{label}");
    assert_eq!(t.get(&format!("/videos/{video}")).await.status(), 200, "{label}");
    // The flooding address gets through again once its bucket refills.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(collect(&t, "/sessions", body.clone(), Some("203.0.113.7")).await.status(), 201, "{label}");

    // Without a trusted proxy the header is the client's word, and changes nothing.
    let t = TestServer::start_with(&b, |c| c.analytics.collect_rate = 1).await;
    let video = t.create_video("direct").await;
    let body = json!({"videoId": video}).to_string();
    let mut limited = 0;
    for i in 0..8 {
        let r = collect(&t, "/sessions", body.clone(), Some(&format!("192.0.2.{i}"))).await;
        limited += u32::from(r.status() == 429);
    }
    assert!(limited >= 2, "{label}: a forged X-Forwarded-For bypassed the limit");
}

fn session_at(ws: &WorkspaceId, media: MediaId, loaded_at: i64, metadata: &[(&str, &str)]) -> PlayerSession {
    PlayerSession {
        id: PlayerSessionId::generate(),
        workspace_id: ws.clone(),
        media,
        loaded_at,
        ended_at: loaded_at,
        metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        referrer: Referrer {
            url: None,
            medium: "direct".into(),
            source: "unknown".into(),
            search_term: "unknown".into(),
        },
        agent: Agent::unknown(),
        country: "unknown".into(),
        city: None,
        viewer: None,
    }
}

fn at(day: &str, hour: i64) -> i64 {
    Period::parse(day, false).unwrap().start_ms + hour * 3_600_000
}

backend_test!(periods_metadata_pages_and_workspaces_on_the_database);
async fn periods_metadata_pages_and_workspaces_on_the_database(b: Backend) {
    let t = TestServer::start(&b).await;
    let label = b.label.as_str();
    let repo = t.server.state.repo.clone();
    let ws = t.ws().await;
    let video = t.create_video("periods").await;
    let vid = MediaId::Video(VideoId::parse(&video).unwrap());
    // Around the turn of 2020 (2020-W53 runs from Monday 2020-12-28 to Sunday 2021-01-03).
    let times = [
        ("2020-12-27", 23, "a"),
        ("2020-12-28", 0, "b"),
        ("2020-12-31", 12, "a"),
        ("2021-01-03", 23, "b"),
        ("2021-01-04", 0, "a"),
        ("2021-02-01", 5, "a"),
    ];
    let mut ids = Vec::new();
    for (day, hour, plan) in times {
        let s = session_at(&ws, vid.clone(), at(day, hour), &[("plan", plan)]);
        repo.insert_player_session(&s).await.unwrap();
        ids.push(s.id);
    }
    let oldest_event = PlayerEvent {
        session_id: ids[0].clone(),
        seq: 0,
        kind: EventKind::Play,
        emitted_at: at("2020-12-27", 23) + 5,
        at: Some(0),
        from: None,
        to: None,
        value: None,
        height: None,
        bitrate: None,
    };
    assert_eq!(repo.append_player_events(&vid, vec![oldest_event.clone()]).await.unwrap(), 1, "{label}");
    // The export streams raw events by keyset pages, in time order.
    let mut more = oldest_event.clone();
    more.seq = 1;
    more.kind = EventKind::Pause;
    more.emitted_at += 1000;
    repo.append_player_events(&vid, vec![more.clone()]).await.unwrap();
    let year = Period::parse("2020", false).unwrap();
    let first = repo.export_player_events(year, None, 1).await.unwrap();
    assert_eq!(first.len(), 1, "{label}");
    assert_eq!((&first[0].event, &first[0].media, &first[0].workspace_id), (&oldest_event, &vid, &ws), "{label}");
    let e = &first[0].event;
    let rest = repo.export_player_events(year, Some((e.emitted_at, e.session_id.clone(), e.seq)), 10).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.event.clone()).collect::<Vec<_>>(), vec![more.clone()], "{label}");
    assert!(repo.export_player_events(Period::parse("2021", false).unwrap(), None, 10).await.unwrap().is_empty());
    assert_eq!(
        vidi::export_line(&first[0], true),
        format!("2020-12-27T23:00:00.005Z,{ws},{video},{},0,play,0,,,,,", ids[0]),
        "{label}"
    );
    let count = |q: String| {
        let t = &t;
        let video = &video;
        async move {
            let r = t.get(&format!("/analytics/videos/{video}?{q}")).await;
            assert_eq!(r.status(), 200, "{q}");
            let v: Value = r.json().await.unwrap();
            v["pagination"]["itemsTotal"].as_u64().unwrap()
        }
    };
    for (period, want) in [
        ("2020-W53", 3),
        ("2020-W52", 1),
        ("2021-W01", 1),
        ("2020-12-31", 1),
        ("2020-12", 3),
        ("2020", 3),
        ("2021", 3),
        ("2020-12-28/2021-01-03", 3),
        ("2020-12-27/2021-01-04", 5),
        ("2021-02", 1),
        ("2019", 0),
    ] {
        assert_eq!(count(format!("period={period}")).await, want, "{label}: {period}");
    }
    assert_eq!(count("period=2020-W53&metadata[plan]=a".into()).await, 1, "{label}");
    assert_eq!(count("period=2020&metadata%5Bplan%5D=b".into()).await, 1, "{label}");
    assert_eq!(count("period=2020&metadata[plan]=b&metadata[other]=x".into()).await, 0, "{label}");

    // Newest first, paged.
    let r: Value =
        t.get(&format!("/analytics/videos/{video}?period=2020&pageSize=2&currentPage=2")).await.json().await.unwrap();
    assert_eq!((r["pagination"]["pagesTotal"].as_u64(), r["data"].as_array().unwrap().len()), (Some(2), 1), "{label}");
    let first = r["data"][0]["session"]["loadedAt"].as_str().unwrap();
    assert_eq!(first, "2020-12-27T23:00:00.000Z", "{label}");
    // Its end is its last event's time, found for the page's rows once the page is cut.
    assert_eq!(r["data"][0]["session"]["endedAt"], "2020-12-27T23:00:01.005Z", "{label}");
    let links = r["pagination"]["links"].to_string();
    assert!(links.contains("period=2020"), "{label}: {links}");

    // §12's errors.
    for q in ["", "period=", "period=2020-W54", "period=2021-01-05/2021-01-04", "period=2020-12-31T00:00:00Z"] {
        let r = t.get(&format!("/analytics/videos/{video}?{q}")).await;
        let body = problem(r, 400, "request-invalid-query-parameter").await;
        assert_eq!(body["name"], "period", "{label}: {q}");
    }
    problem(t.get(&format!("/analytics/videos/{}?period=2020", VideoId::generate())).await, 404, "resource-not-found")
        .await;

    // A live stream's period may be an instant, its day.
    let live: Value = t.post_json("/live-streams", json!({"name": "live"})).await.json().await.unwrap();
    let live_id = live["liveStreamId"].as_str().unwrap();
    let lid = MediaId::LiveStream(LiveStreamId::parse(live_id).unwrap());
    repo.insert_player_session(&session_at(&ws, lid, at("2019-01-01", 10), &[])).await.unwrap();
    let r: Value = t
        .get(&format!("/analytics/live-streams/{live_id}?period=2019-01-01T00:00:00.000Z"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["pagination"]["itemsTotal"], 1, "{label}: {r}");
    let s = &r["data"][0];
    assert!(s["session"].get("metadata").is_none(), "{label}: live sessions have no metadata");
    // Not nullable there: spelled `unknown`.
    assert_eq!((s["referrer"]["url"].as_str(), s["location"]["city"].as_str()), (Some("unknown"), Some("unknown")));

    // Another workspace's ids are not found.
    let other = repo.create_workspace("other").await.unwrap();
    let stranger = session_at(&other, vid.clone(), at("2020-12-31", 1), &[]);
    repo.insert_player_session(&stranger).await.unwrap();
    assert_eq!(count("period=2020-12-31".into()).await, 1, "{label}: another workspace's session is not listed");
    let r = t.get(&format!("/analytics/sessions/{}/events", stranger.id)).await;
    assert_eq!(problem(r, 404, "resource-not-found").await["name"], "sessionId", "{label}");

    // Retention: the sessions loaded before 2021 go, oldest first, a batch at a time, with their
    // events; the later ones stay.
    let events: Value = t.get(&format!("/analytics/sessions/{}/events", ids[0])).await.json().await.unwrap();
    assert_eq!(events["pagination"]["itemsTotal"], 2, "{label}");
    let before = at("2021-01-01", 0);
    assert_eq!(repo.prune_player_sessions(before, 2).await.unwrap(), 2, "{label}");
    assert_eq!(repo.prune_player_sessions(before, 10).await.unwrap(), 3, "{label}");
    assert_eq!(repo.prune_player_sessions(before, 10).await.unwrap(), 0, "{label}");
    assert_eq!((count("period=2020".into()).await, count("period=2021".into()).await), (0, 3), "{label}");
    let r = t.get(&format!("/analytics/sessions/{}/events", ids[0])).await;
    problem(r, 404, "resource-not-found").await;
}

/// Mints a session through the collector and sends its events in one batch.
async fn watched(t: &TestServer, subject: Value, events: Value) -> String {
    let r = mint(t, subject).await;
    assert_eq!(r.status(), 201);
    let ps = r.json::<Value>().await.unwrap()["sessionId"].as_str().unwrap().to_string();
    let r = collect(t, &format!("/sessions/{ps}/events"), json!({ "events": events }).to_string(), None).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    ps
}

backend_test!(unique_viewers_watch_time_renditions_and_live_sessions);
async fn unique_viewers_watch_time_renditions_and_live_sessions(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.analytics.collect_rate = 1000).await;
    let label = b.label.as_str();
    let video = t.create_video("qoe").await;
    let one = json!({"videoId": video, "viewerId": "viewer-AAAA_1"});
    // The new fields are bounded like the others: a batch with one bad event is refused whole.
    let r = mint(&t, json!({"videoId": video, "viewerId": "not an id"})).await;
    assert_eq!(problem(r, 400, "invalid-attribute").await["name"], "viewerId", "{label}");
    let ps = mint(&t, one.clone()).await.json::<Value>().await.unwrap()["sessionId"].as_str().unwrap().to_string();
    let bad = [
        json!({"seq": 1, "type": "qoe.rendition", "ts": 0, "at": 0, "bitrate": 800_000}),
        json!({"seq": 1, "type": "qoe.rendition", "ts": 0, "height": 360, "bitrate": 800_000, "value": 3}),
        json!({"seq": 1, "type": "qoe.rendition", "ts": 0, "height": 0, "bitrate": 800_000}),
        json!({"seq": 1, "type": "qoe.rendition", "ts": 0, "height": 360, "bitrate": 2_000_000_000i64}),
        json!({"seq": 1, "type": "qoe.watch", "ts": 100, "value": 101}),
        json!({"seq": 1, "type": "qoe.watch", "ts": 100, "value": 50, "height": 360}),
        json!({"seq": 1, "type": "qoe.watch", "ts": 100}),
        json!({"seq": 1, "type": "play", "ts": 0, "at": 0, "bitrate": 800_000}),
        json!({"seq": 1, "type": "qoe.ttff", "ts": 0, "value": 3, "height": 360}),
    ];
    for (i, e) in bad.iter().enumerate() {
        let batch = json!({"events": [{"seq": 0, "type": "play", "ts": 0, "at": 0}, e]});
        let r = collect(&t, &format!("/sessions/{ps}/events"), batch.to_string(), None).await;
        assert_eq!(problem(r, 400, "invalid-attribute").await["name"], "events[1]", "{label}: case {i}");
    }

    // One viewer (by the id the page keeps) watches twice; another, whose player sends no id,
    // twice too (the same address and browser the same day: one viewer); a third only loads.
    let rendition = |seq: i64, ts: i64, height: i64, bitrate: i64| json!({"seq": seq, "type": "qoe.rendition", "ts": ts, "at": 0, "height": height, "bitrate": bitrate});
    let first = watched(
        &t,
        one.clone(),
        json!([
            {"seq": 0, "type": "play", "ts": 100, "at": 0},
            rendition(1, 150, 360, 800_000),
            {"seq": 2, "type": "qoe.watch", "ts": 2200, "at": 2, "value": 2000, "bitrate": 800_000},
            rendition(3, 2200, 720, 2_500_000),
            {"seq": 4, "type": "qoe.watch", "ts": 3300, "at": 3, "value": 1000, "bitrate": 2_500_000},
            {"seq": 5, "type": "end", "ts": 3300, "at": 3},
        ]),
    )
    .await;
    watched(
        &t,
        one.clone(),
        json!([
            {"seq": 0, "type": "play", "ts": 10, "at": 0},
            rendition(1, 20, 360, 800_000),
            {"seq": 2, "type": "qoe.watch", "ts": 600, "value": 500},
        ]),
    )
    .await;
    // Two watch events, each within its own `ts`, that together claim more than the session
    // lasted (its last event, 3.1 s after it was minted): counted as 3.1 s.
    watched(
        &t,
        json!({"videoId": video}),
        json!([
            {"seq": 0, "type": "play", "ts": 0, "at": 0},
            {"seq": 1, "type": "qoe.watch", "ts": 3000, "value": 3000},
            {"seq": 2, "type": "qoe.watch", "ts": 3100, "value": 3000},
        ]),
    )
    .await;
    watched(&t, json!({"videoId": video}), json!([{"seq": 0, "type": "play", "ts": 0, "at": 0}])).await;
    watched(
        &t,
        json!({"videoId": video, "viewerId": "viewer-BBBB_2"}),
        json!([{"seq": 0, "type": "ready", "ts": 0, "at": 0}]),
    )
    .await;

    let day = time::OffsetDateTime::now_utc().date().to_string();
    let qoe: Value = t.get(&format!("/analytics/videos/{video}/qoe?period={day}")).await.json().await.unwrap();
    assert_eq!(
        (&qoe["sessions"], &qoe["views"], &qoe["uniqueViewers"], &qoe["watchTimeMs"]),
        // Six sessions: the five above and the one the refused batches went to (no view).
        (&json!(6), &json!(4), &json!(2), &json!(3000 + 500 + 3100)),
        "{label}: {qoe}"
    );
    // One switch (the first session's second rendition); the bitrate weighed by time played at
    // it: (2 s × 800 kb/s + 1 s × 2500 kb/s) / 3 s.
    assert_eq!(
        qoe["renditions"],
        json!({"switches": 1, "switchesPerView": 0.25, "timeWeightedBitrate": 1_366_667}),
        "{label}"
    );
    // The 2023 events endpoint still lists only its seven types.
    let events: Value = t.get(&format!("/analytics/sessions/{first}/events")).await.json().await.unwrap();
    let types: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["play", "end"], "{label}");
    // The CLI's report, from the same figures.
    let media = MediaId::Video(VideoId::parse(&video).unwrap());
    let span = Period::parse(&day, false).unwrap();
    let q = t.server.state.repo.qoe_summary(&t.ws().await, &media, span).await.unwrap();
    let table = vidi::qoe_table(&media, &day, &q);
    let row = |name: &str| {
        let line = table.lines().find(|l| l.starts_with(&format!("{name}  "))).unwrap_or_else(|| panic!("{name}"));
        line[name.len()..].trim().to_string()
    };
    assert_eq!(
        (row("unique viewers"), row("watch time"), row("rendition switches"), row("bitrate, time-weighted")),
        ("2".into(), "0:00:06 (6600 ms)".into(), "1".into(), "1367 kb/s".into()),
        "{label}: {table}"
    );

    // A live stream's sessions, as its player page reports them (tests/browser/live.test.mjs
    // drives the page itself).
    let live: Value = t.post_json("/live-streams", json!({"name": "on air"})).await.json().await.unwrap();
    let live_id = live["liveStreamId"].as_str().unwrap();
    let config = page_config(&t, live["assets"]["player"].as_str().unwrap()).await;
    assert_eq!((&config["live"], &config["collector"]["sessions"]), (&json!(true), &json!("/collect/sessions")));
    let subject = json!({"liveStreamId": live_id, "viewerId": "viewer-AAAA_1"});
    let ps = watched(
        &t,
        subject,
        json!([
            {"seq": 0, "type": "ready", "ts": 5, "at": 12},
            {"seq": 1, "type": "play", "ts": 10, "at": 12},
            rendition(2, 20, 720, 2_500_000),
            {"seq": 3, "type": "qoe.watch", "ts": 1500, "at": 13, "value": 1400, "bitrate": 2_500_000},
            {"seq": 4, "type": "end", "ts": 1500, "at": 13},
        ]),
    )
    .await;
    let list: Value = t.get(&format!("/analytics/live-streams/{live_id}?period={day}")).await.json().await.unwrap();
    assert_eq!((&list["pagination"]["itemsTotal"], &list["data"][0]["session"]["sessionId"]), (&json!(1), &json!(ps)));
    let events: Value = t.get(&format!("/analytics/sessions/{ps}/events")).await.json().await.unwrap();
    let types: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ready", "play", "end"], "{label}");
    let qoe: Value = t.get(&format!("/analytics/live-streams/{live_id}/qoe?period={day}")).await.json().await.unwrap();
    assert_eq!(
        (&qoe["views"], &qoe["uniqueViewers"], &qoe["watchTimeMs"], &qoe["renditions"]["timeWeightedBitrate"]),
        (&json!(1), &json!(1), &json!(1400), &json!(2_500_000)),
        "{label}: {qoe}"
    );
}

backend_test!(concurrent_batches_are_committed_together_and_counted_once);
/// The collector's batches are committed in groups (crates/vidi-db/src/appends.rs): many at once,
/// some of them sent twice (retried beacons) while the first is still in flight, are all stored,
/// each row once, every call returns after its rows are committed, and the counts the calls
/// return add up to the rows stored.
async fn concurrent_batches_are_committed_together_and_counted_once(b: Backend) {
    let t = TestServer::start(&b).await;
    let label = b.label.as_str();
    let repo = t.server.state.repo.clone();
    let ws = t.ws().await;
    let video = t.create_video("groups").await;
    let vid = MediaId::Video(VideoId::parse(&video).unwrap());
    let day = at("2021-03-02", 10);
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let s = session_at(&ws, vid.clone(), day, &[]);
        repo.insert_player_session(&s).await.unwrap();
        sessions.push(s.id);
    }
    let batch = |s: &PlayerSessionId, first: i64| -> Vec<PlayerEvent> {
        (first..first + 25)
            .map(|seq| PlayerEvent {
                session_id: s.clone(),
                seq,
                kind: EventKind::Play,
                emitted_at: day + seq * 10,
                at: Some(seq),
                from: None,
                to: None,
                value: None,
                height: None,
                bitrate: None,
            })
            .collect()
    };
    // 8 sessions × 6 batches of 25, and the first two batches of each session twice.
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..6 {
        for s in &sessions {
            let sends = if round < 2 { 2 } else { 1 };
            for _ in 0..sends {
                let (repo, vid, events) = (repo.clone(), vid.clone(), batch(s, round * 25));
                calls.spawn(async move { repo.append_player_events(&vid, events).await.unwrap() });
            }
        }
    }
    let mut counted = 0;
    while let Some(n) = calls.join_next().await {
        counted += n.unwrap();
    }
    assert_eq!(counted, 8 * 6 * 25, "{label}");
    let page = vidi_core::model::PageRequest { page: 1, size: 100 };
    for s in &sessions {
        let (events, total) = repo.list_player_events(&ws, s, page).await.unwrap();
        assert_eq!(total, 150, "{label}");
        assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq), "{label}: in order, each once");
    }
    // Sent again once all is stored: nothing new.
    assert_eq!(repo.append_player_events(&vid, batch(&sessions[0], 0)).await.unwrap(), 0, "{label}");
}
