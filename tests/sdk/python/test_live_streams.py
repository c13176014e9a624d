"""Live streams through api.video 1.3.0 (api-contract.md rows 18-24, §2, §7): all seven
operations. The client builds LiveStream strictly (it requires `liveStreamId` and `restreams`
and refuses any field outside the 2023 schema), so every successful call checks the shape."""

import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from apivideo.api.live_streams_api import LiveStreamsApi
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.live_stream_creation_payload import LiveStreamCreationPayload
from apivideo.model.live_stream_update_payload import LiveStreamUpdatePayload
from apivideo.model.restreams_request_object import RestreamsRequestObject


@pytest.fixture(scope="module")
def live_api(api_client):
    return LiveStreamsApi(api_client)


@pytest.fixture(scope="module")
def lives(live_api, marker):
    created = []

    def create(name, **fields):
        l = live_api.create(LiveStreamCreationPayload(name=f"{marker} {name}", **fields))
        created.append(l.live_stream_id)
        return l

    yield create
    for live_stream_id in created:
        try:
            live_api.delete(live_stream_id)
        except NotFoundException:
            pass


def test_create_get_list_update_delete(live_api, lives, marker):
    yt = RestreamsRequestObject(name="YouTube", server_url="rtmp://a.rtmp.youtube.com/live2", stream_key="yt")
    a = lives("b", record=True, restreams=[yt])
    assert a.live_stream_id.startswith("li")
    assert uuid.UUID(a.stream_key).version == 4
    assert a.record is True and a.public is True and a.broadcasting is False
    assert [(r.name, r.server_url, r.stream_key) for r in a.restreams] == [
        ("YouTube", "rtmp://a.rtmp.youtube.com/live2", "yt")
    ]
    assert a.assets.hls.endswith(f"/live/{a.live_stream_id}.m3u8")
    assert a.assets.thumbnail.endswith(f"/live/{a.live_stream_id}/thumbnail.jpg")
    b = lives("a")
    assert b.restreams == []

    assert live_api.get(a.live_stream_id).name == f"{marker} b"
    page = live_api.list(name=marker, sort_by="name", sort_order="asc", page_size=100)
    assert [l.name for l in page.data] == [f"{marker} a", f"{marker} b"]
    assert page.pagination.items_total == 2
    assert [l.live_stream_id for l in live_api.list(stream_key=a.stream_key).data] == [a.live_stream_id]

    tw = RestreamsRequestObject(name="Twitch", server_url="rtmp://live.twitch.tv/app", stream_key="tw")
    up = live_api.update(a.live_stream_id, LiveStreamUpdatePayload(name=f"{marker} c", restreams=[tw]))
    assert up.name == f"{marker} c" and up.record is True
    assert [r.name for r in up.restreams] == ["Twitch"]
    up = live_api.update(a.live_stream_id, LiveStreamUpdatePayload(public=False))
    assert up.public is False and "?token=" in up.assets.player and "/token/" in up.assets.hls

    live_api.delete(b.live_stream_id)
    with pytest.raises(NotFoundException):
        live_api.get(b.live_stream_id)


def test_thumbnail_upload_and_delete(live_api, lives, tmp_path):
    l = lives("thumb")
    poster = tmp_path / "poster.jpg"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=320x180", "-frames:v", "1", str(poster)],
        check=True,
    )
    with open(poster, "rb") as f:
        up = live_api.upload_thumbnail(l.live_stream_id, f)
    assert up.live_stream_id == l.live_stream_id
    with urllib.request.urlopen(up.assets.thumbnail) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
    down = live_api.delete_thumbnail(l.live_stream_id)
    assert down.live_stream_id == l.live_stream_id
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(down.assets.thumbnail)
    assert e.value.code == 404


def test_restream_validation(live_api, marker):
    bad = RestreamsRequestObject(name="x", server_url="http://host.example/app", stream_key="k")
    with pytest.raises(ApiException) as e:
        live_api.create(LiveStreamCreationPayload(name=f"{marker} bad", restreams=[bad]))
    assert e.value.status == 400
    assert "restreams[0][serverUrl]" in str(e.value.body)
