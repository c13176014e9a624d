"""Encoding, delivery and thumbnails through api.video 1.3.0
(api-contract.md §2 VideoStatus, §6 private videos and asset URLs, §11 thumbnails).

A real 4 s 640x360 H.264/AAC clip is uploaded, get_status is polled until every quality is
encoded, and the asset URLs of get() are then fetched with plain HTTP GETs, as a player would:
the delivery side takes no API credentials.
"""

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.quality import Quality
from apivideo.model.video_status import VideoStatus
from apivideo.model.video_status_encoding_metadata import VideoStatusEncodingMetadata
from apivideo.model.video_thumbnail_pick_payload import VideoThumbnailPickPayload

from conftest import make_video

ENCODING_TIMEOUT_S = 120
POLL_INTERVAL_S = 0.5
UNKNOWN_VIDEO_ID = "vi0000000000000000000000"
TOKEN_PART = re.compile(r"/token/[^/]+")


def fully_encoded(status):
    qualities = status.encoding.qualities
    return (status.encoding.playable is True and len(qualities) > 0
            and all(q.status == "encoded" for q in qualities))


def wait_until_encoded(videos_api, video_id):
    """Polls get_status until the video is playable and every quality is encoded; returns the
    last status. A failed quality ends the wait at once."""
    deadline = time.monotonic() + ENCODING_TIMEOUT_S
    while True:
        status = videos_api.get_status(video_id)
        if fully_encoded(status):
            return status
        failed = [q.quality for q in status.encoding.qualities if q.status == "failed"]
        assert not failed, f"qualities failed to encode: {failed}"
        assert time.monotonic() < deadline, \
            f"not encoded after {ENCODING_TIMEOUT_S} s: {status.to_dict()}"
        time.sleep(POLL_INTERVAL_S)


def http_get(url, headers=None):
    """A plain GET, as a player would make it (no API key). Returns (status, headers, body);
    urllib raises on 4xx/5xx, so those are caught and returned like the others."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def is_jpeg(data):
    return data[:3] == b"\xff\xd8\xff"


def playlist_uris(text):
    """The URI lines (rendition playlists or segments) of an HLS playlist."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 4 s 640x360 H.264/AAC MP4."""
    path = tmp_path_factory.mktemp("playback") / "clip.mp4"
    make_video(path, seconds=4, size="640x360", bitrate_k=800)
    return path


@pytest.fixture(scope="module")
def public_video(create_video, videos_api, marker, clip):
    """A public video whose source is uploaded (not necessarily encoded yet)."""
    video = create_video("playback public", tags=[marker])
    with open(clip, "rb") as file:
        videos_api.upload(video.video_id, file)
    return video


@pytest.fixture
def encoded_video(videos_api, public_video):
    """The public video once encoded; returns (video, last status)."""
    return public_video, wait_until_encoded(videos_api, public_video.video_id)


def test_status_reports_every_quality_encoded_and_the_metadata(encoded_video):
    _, status = encoded_video
    # The client deserialises strictly: enum values and types were already checked on the way in.
    assert isinstance(status, VideoStatus)
    assert status.ingest.status == "uploaded"
    assert status.encoding.playable is True

    qualities = status.encoding.qualities
    for quality in qualities:
        assert isinstance(quality, Quality)
        assert quality.type in Quality.allowed_values[("type",)].values()
        assert quality.quality in Quality.allowed_values[("quality",)].values()
        assert quality.status == "encoded"
    # The HLS ladder runs from 240p up to the source's 360p; one MP4 at the source quality.
    hls = sorted(q.quality for q in qualities if q.type == "hls")
    mp4 = sorted(q.quality for q in qualities if q.type == "mp4")
    assert "360p" in hls
    assert set(hls) <= {"240p", "360p"}
    assert mp4 == ["360p"]

    metadata = status.encoding.metadata
    assert isinstance(metadata, VideoStatusEncodingMetadata)
    assert metadata.width == 640
    assert metadata.height == 360
    assert metadata.video_codec == "h264"
    assert metadata.audio_codec == "aac"
    assert isinstance(metadata.duration, int)  # whole seconds in this client's model
    assert abs(metadata.duration - 4) <= 1
    assert metadata.aspect_ratio == "16:9"


def test_asset_urls_serve_the_media_without_credentials(videos_api, encoded_video):
    video, status = encoded_video
    assets = videos_api.get(video.video_id).assets

    code, headers, body = http_get(assets.hls)
    assert code == 200
    assert headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    master = body.decode()
    assert master.startswith("#EXTM3U")
    assert "RESOLUTION=640x360" in master
    # One rendition per encoded HLS quality, each a playlist a player can follow.
    hls_qualities = [q for q in status.encoding.qualities if q.type == "hls"]
    renditions = playlist_uris(master)
    assert master.count("#EXT-X-STREAM-INF") == len(hls_qualities)
    assert len(renditions) == len(hls_qualities)
    for uri in renditions:
        rendition_url = urllib.parse.urljoin(assets.hls, uri)
        code, _, body = http_get(rendition_url)
        assert code == 200, uri
        playlist = body.decode()
        assert "#EXTINF" in playlist
        assert "#EXT-X-ENDLIST" in playlist, f"{uri} is complete once encoded"
        code, _, segment = http_get(urllib.parse.urljoin(rendition_url, playlist_uris(playlist)[0]))
        assert code == 200, f"first segment of {uri}"
        assert segment

    code, headers, body = http_get(assets.mp4, {"Range": "bytes=0-99"})
    assert code == 206
    assert len(body) == 100
    assert re.fullmatch(r"bytes 0-99/\d+", headers["Content-Range"])
    assert headers["Content-Type"].startswith("video/mp4")
    assert body[4:8] == b"ftyp"

    code, headers, body = http_get(assets.thumbnail)
    assert code == 200
    assert headers["Content-Type"].startswith("image/jpeg")
    assert is_jpeg(body)

    code, headers, _ = http_get(assets.player)
    assert code == 200
    assert headers["Content-Type"].startswith("text/html")


def test_pick_and_upload_thumbnail_replace_the_served_thumbnail(videos_api, encoded_video, tmp_path):
    video, _ = encoded_video
    thumbnail_url = videos_api.get(video.video_id).assets.thumbnail
    _, _, initial = http_get(thumbnail_url)
    assert is_jpeg(initial)

    # The frame chosen at encoding time is not specified; 3 s is away from the start and from
    # a quarter of the clip, the usual automatic picks.
    picked = videos_api.pick_thumbnail(video.video_id,
                                       VideoThumbnailPickPayload(timecode="00:00:03.000"))
    assert picked.video_id == video.video_id
    assert picked.assets.thumbnail == thumbnail_url
    code, _, after_pick = http_get(thumbnail_url)
    assert code == 200
    assert is_jpeg(after_pick)
    assert after_pick != initial, "the thumbnail did not change after pick_thumbnail"

    jpeg = tmp_path / "poster.jpg"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "color=c=red:size=320x180", "-frames:v", "1", str(jpeg)],
        check=True,
    )
    # The client sends the part as "file", named after the file's base name, with the type
    # mimetypes guesses from that name; it reads the file to the end and closes it.
    with open(jpeg, "rb") as file:
        uploaded = videos_api.upload_thumbnail(video.video_id, file)
    assert uploaded.video_id == video.video_id
    assert uploaded.title == video.title
    code, headers, after_upload = http_get(thumbnail_url)
    assert code == 200
    assert headers["Content-Type"].startswith("image/jpeg")
    assert is_jpeg(after_upload)
    assert after_upload != after_pick, "the thumbnail did not change after upload_thumbnail"


def test_upload_thumbnail_that_is_not_an_image_is_400(videos_api, public_video, tmp_path):
    fake = tmp_path / "poster.gif"
    fake.write_text("this is not an image\n")
    # Sent as image/gif (guessed from the name); the client does not look at the content.
    with pytest.raises(ApiException) as raised, open(fake, "rb") as file:
        videos_api.upload_thumbnail(public_video.video_id, file)
    assert raised.value.status == 400
    assert json.loads(raised.value.body)["type"] \
        == "https://docs.api.video/reference/uploaded-file-extension-invalid"


def test_pick_thumbnail_of_unknown_video_is_404(videos_api):
    with pytest.raises(NotFoundException):
        videos_api.pick_thumbnail(UNKNOWN_VIDEO_ID, VideoThumbnailPickPayload(timecode="00:00:01.000"))


def test_private_video_is_served_only_under_its_token(create_video, videos_api, marker, clip):
    video = create_video("playback private", public=False, tags=[marker])
    with open(clip, "rb") as file:
        videos_api.upload(video.video_id, file)
    wait_until_encoded(videos_api, video.video_id)

    fetched = videos_api.get(video.video_id)
    assert fetched.public is False
    assets = fetched.assets
    for field in ("hls", "thumbnail", "mp4"):
        assert TOKEN_PART.search(assets[field]), f"assets.{field}: {assets[field]}"
    assert re.search(r"[?&]token=", assets.player)

    code, headers, body = http_get(assets.hls)
    assert code == 200
    # The token is single-use (contract §6): the first request opened a playback session, named
    # in a cookie and in `avh` on every URI the playlists hand out, as a player follows them.
    rendition = playlist_uris(body.decode())[0]
    assert "?avh=" in rendition
    assert http_get(urllib.parse.urljoin(assets.hls, rendition))[0] == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("vidi_playback=")
    assert http_get(assets.thumbnail, {"Cookie": cookie})[0] == 200
    assert http_get(assets.mp4, {"Range": "bytes=0-99", "Cookie": cookie})[0] == 206
    assert http_get(assets.player, {"Cookie": cookie})[0] == 200
    # Without the session, the used token opens nothing.
    assert http_get(assets.hls)[0] == 403
    assert http_get(assets.thumbnail)[0] == 403

    for field in ("hls", "thumbnail", "mp4"):
        bare = TOKEN_PART.sub("", assets[field], count=1)
        assert bare != assets[field]
        assert http_get(bare)[0] == 403, f"{field} without the token: {bare}"
