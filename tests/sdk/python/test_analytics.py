"""Player analytics through api.video 1.3.0 (api-contract.md rows 45-47, §12): the three "raw
statistics" operations over real sessions, reported by this test through Vidi's collector as a
player would (docs/analytics.md). The client builds VideoSession, LiveStreamSession and
PlayerSessionEvent strictly, so every successful call also checks the 2023 shapes."""

import datetime
import json
import os
import urllib.request

import pytest

from apivideo.api.live_streams_api import LiveStreamsApi
from apivideo.api.raw_statistics_api import RawStatisticsApi
from apivideo.api.videos_api import VideosApi
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.live_stream_creation_payload import LiveStreamCreationPayload
from apivideo.model.video_creation_payload import VideoCreationPayload


def collect(path, body):
    request = urllib.request.Request(
        os.environ["VIDI_URL"].rstrip("/") + "/collect" + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"},
        method="POST",
    )
    with urllib.request.urlopen(request) as r:
        assert r.status in (201, 204)
        return json.loads(r.read()) if r.status == 201 else None


def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


@pytest.fixture(scope="module")
def stats(api_client):
    return RawStatisticsApi(api_client)


def test_video_sessions_metadata_filter_and_events(api_client, stats, marker):
    videos = VideosApi(api_client)
    video = videos.create(VideoCreationPayload(title=f"{marker} analytics"))
    try:
        mine = collect("/sessions", {"videoId": video.video_id, "metadata": [{"key": "plan", "value": "pro"}],
                                     "referrer": "https://www.google.com/search?q=cats"})["sessionId"]
        collect("/sessions", {"videoId": video.video_id, "metadata": [{"key": "plan", "value": "free"}]})
        collect(f"/sessions/{mine}/events", {"events": [
            {"seq": 0, "type": "ready", "ts": 1, "at": 0},
            {"seq": 1, "type": "play", "ts": 2, "at": 0},
            {"seq": 2, "type": "seek.backward", "ts": 3, "from": 40, "to": 12.5},
            {"seq": 3, "type": "resume", "ts": 4, "at": 12},
        ]})

        every = stats.list_video_sessions(video.video_id, today())
        assert every.pagination.items_total == 2
        pro = stats.list_video_sessions(video.video_id, today(), metadata={"plan": "pro"})
        assert [s.session.session_id for s in pro.data] == [mine]
        s = pro.data[0]
        assert [(m.key, m.value) for m in s.session.metadata] == [("plan", "pro")]
        assert (s.referrer.medium, s.referrer.search_term) == ("organic", "cats")
        assert (s.client.name, s.os.name, s.device.type) == ("Firefox", "Linux", "desktop")
        assert s.session.ended_at >= s.session.loaded_at

        events = stats.list_session_events(mine)
        got = [(e.type, e.get("at"), e.get("_from"), e.get("to")) for e in events.data]
        assert got == [("ready", 0, None, None), ("play", 0, None, None),
                       ("seek.backward", None, 40, 12), ("resume", 12, None, None)]
        assert events.pagination.items_total == 4

        with pytest.raises(ApiException) as e:
            stats.list_video_sessions(video.video_id, "2026-13")
        assert e.value.status == 400
        with pytest.raises(NotFoundException):
            stats.list_session_events("psNoSuchSession0000000000")
    finally:
        videos.delete(video.video_id)


def test_live_stream_sessions(api_client, stats, marker):
    lives = LiveStreamsApi(api_client)
    live = lives.create(LiveStreamCreationPayload(name=f"{marker} analytics"))
    try:
        session = collect("/sessions", {"liveStreamId": live.live_stream_id})["sessionId"]
        r = stats.list_live_stream_sessions(live.live_stream_id, f"{today()}/{today()}")
        assert [s.session.session_id for s in r.data] == [session]
        assert r.data[0].location.city == "unknown"
        with pytest.raises(NotFoundException):
            stats.list_live_stream_sessions("liNoSuchStream00000000000", today())
    finally:
        lives.delete(live.live_stream_id)
