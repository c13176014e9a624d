"""Shared fixtures for the Python SDK suite.

The suite drives the official, unmodified `api.video` 1.3.0 client against a running Vidi
server. That client deserialises every response strictly (api-contract.md §1.8): an unknown
key, a null in a non-nullable field or an out-of-enum value raises, so each successful call
here is also a check of the response shape.

Required environment:
  VIDI_URL      base URL of the server, e.g. http://127.0.0.1:8080
  VIDI_API_KEY  an API key created with `vidi api-key create`
"""

import math
import os
import secrets
import subprocess
import time

import pytest

from apivideo import AuthenticatedApiClient
from apivideo.api.videos_api import VideosApi
from apivideo.configuration import Configuration
from apivideo.exceptions import NotFoundException
from apivideo.model.video_creation_payload import VideoCreationPayload

# The smallest chunk size the client accepts: small test files, still several parts.
CHUNK_SIZE = 5 * 1024 * 1024
MIN_LARGE_VIDEO_SIZE = 11 * 1024 * 1024


def _require_env(name):
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} must be set (see tests/sdk/run.sh)", returncode=2)
    return value


@pytest.fixture(scope="session")
def vidi_url():
    # The client builds URLs as host + "/videos": no trailing slash.
    return _require_env("VIDI_URL").rstrip("/")


@pytest.fixture(scope="session")
def api_key():
    return _require_env("VIDI_API_KEY")


@pytest.fixture(scope="session")
def make_client(vidi_url):
    """Returns a factory of clients aimed at Vidi; the caller connects them."""
    clients = []

    def make(key):
        # chunk_size is a Configuration setting; AuthenticatedApiClient has no such argument.
        client = AuthenticatedApiClient(key, configuration=Configuration(chunk_size=CHUNK_SIZE))
        # The constructor overwrites configuration.host with https://ws.api.video (it ignores
        # any host in the Configuration passed in), so the base URL can only be set here,
        # after construction and before connect() fetches a token from it.
        client.configuration.host = vidi_url
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def api_client(make_client, api_key):
    """A connected client: connect() exchanged the API key for a bearer token at
    POST /auth/api-key, which is then sent on every call. Used without `with`, so no
    background refresh thread runs."""
    client = make_client(api_key)
    client.connect()
    return client


@pytest.fixture(scope="session")
def videos_api(api_client):
    return VideosApi(api_client)


@pytest.fixture(scope="session")
def marker():
    """A marker unique to this run. Videos carry it in their title, tags and metadata, so
    list assertions ignore whatever else the server holds."""
    return f"pyvid{int(time.time()):x}{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def create_video(videos_api, marker):
    """Creates videos (title prefixed with the run marker) and deletes them at the end."""
    created = []

    def create(title, **fields):
        video = videos_api.create(VideoCreationPayload(title=f"{marker} {title}", **fields))
        created.append(video.video_id)
        return video

    yield create
    for video_id in created:
        try:
            videos_api.delete(video_id)
        except NotFoundException:
            pass  # a test deleted it already


def make_video(path, *, seconds, size, bitrate_k, min_size=0):
    """Makes a real H.264/AAC MP4 from ffmpeg's synthetic sources and returns its size.

    Temporal noise defeats compression so the file really carries the requested bitrate;
    if it still comes out smaller than `min_size`, the bitrate is doubled and it is redone.
    """
    rate = bitrate_k
    while True:
        subprocess.run(
            [
                "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
                "-f", "lavfi", "-i", "sine=frequency=440",
                "-t", str(seconds),
                "-vf", "noise=alls=60:allf=t",
                "-c:v", "libx264", "-preset", "ultrafast", "-b:v", f"{rate}k",
                "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-shortest",
                str(path),
            ],
            check=True,
        )
        file_size = path.stat().st_size
        if file_size >= min_size:
            return file_size
        if rate > 64 * bitrate_k:
            raise RuntimeError(f"ffmpeg output stays below {min_size} bytes ({file_size} at {rate}k)")
        rate *= 2


@pytest.fixture(scope="session")
def large_video(tmp_path_factory):
    """About 15 MiB: 3 full 5 MiB parts and a short 4th. Returns (path, size)."""
    path = tmp_path_factory.mktemp("media") / "large.mp4"
    size = make_video(path, seconds=20, size="1280x720", bitrate_k=6000,
                      min_size=MIN_LARGE_VIDEO_SIZE)
    assert math.ceil(size / CHUNK_SIZE) >= 3
    return path, size


@pytest.fixture(scope="session")
def small_video(tmp_path_factory):
    """Well under one chunk. Returns (path, size)."""
    path = tmp_path_factory.mktemp("media") / "small.mp4"
    size = make_video(path, seconds=2, size="320x240", bitrate_k=500)
    assert size < CHUNK_SIZE
    return path, size
