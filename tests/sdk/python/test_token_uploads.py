"""Delegated uploads through api.video 1.3.0 (api-contract.md row 13, §4.5, §5).

What this client sends to `POST /upload?token=`, with the 5 MiB chunk size used here:
  - upload_with_upload_token(): `part i/N` for every part, the field named after the file
    argument ("file"), and never a `videoId`: against api.video a file over one chunk makes one
    broken video per part (issue #216); Vidi attaches parts 2..N to the upload the first began;
  - a progressive session: `part 1/*` without `videoId`, then `videoId` (a form field put before
    the file) with every later part, `part n/n` for the last.
The token client has no API key: it is a plain ApiClient, whose Configuration host is honoured.
"""

import json
import math
import shutil

import pytest

from apivideo.api.upload_tokens_api import UploadTokensApi
from apivideo.api.videos_api import VideosApi
from apivideo.api_client import ApiClient
from apivideo.configuration import Configuration
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.token_creation_payload import TokenCreationPayload

from conftest import CHUNK_SIZE


def parts(n):
    return list(range(1, n + 1))


@pytest.fixture(scope="module")
def tokens_api(api_client):
    return UploadTokensApi(api_client)


@pytest.fixture(scope="module")
def token_client(vidi_url):
    """Videos API of a client that holds no API key, only what a browser would."""
    client = ApiClient(Configuration(host=vidi_url, chunk_size=CHUNK_SIZE))
    yield VideosApi(client)
    client.close()


@pytest.fixture
def token(tokens_api):
    made = tokens_api.create_token(TokenCreationPayload(ttl=3600))
    yield made.token
    try:
        tokens_api.delete_token(made.token)
    except NotFoundException:
        pass


@pytest.fixture
def cleanup(videos_api):
    ids = []
    yield ids
    for video_id in ids:
        try:
            videos_api.delete(video_id)
        except NotFoundException:
            pass


def titled(videos_api, title):
    """The videos whose title contains `title` (the marker makes it unique to this run)."""
    return videos_api.list(title=title, page_size=100).data


def test_one_call_upload_of_a_large_file_makes_one_video(
        videos_api, token_client, token, large_video, marker, tmp_path, cleanup):
    path, size = large_video
    expected_parts = math.ceil(size / CHUNK_SIZE)
    assert expected_parts >= 3
    named = tmp_path / f"{marker}-onecall.mp4"
    shutil.copyfile(path, named)

    offsets = []
    with open(named, "rb") as file:
        video = token_client.upload_with_upload_token(
            token, file, _progress_listener=lambda offset, total: offsets.append(offset))
    assert len(offsets) == expected_parts
    cleanup.append(video.video_id)
    # Titled after the file, without its extension.
    assert video.title == f"{marker}-onecall"

    found = titled(videos_api, f"{marker}-onecall")
    assert [v.video_id for v in found] == [video.video_id]
    status = videos_api.get_status(video.video_id)
    assert status.ingest.status == "uploaded"
    assert status.ingest.filesize == size
    assert status.ingest.received_parts.parts == parts(expected_parts)
    assert status.ingest.received_parts.total == expected_parts


def test_one_call_upload_of_a_small_file(videos_api, token_client, token, small_video, marker, tmp_path, cleanup):
    path, size = small_video
    named = tmp_path / f"{marker}-small.mp4"
    shutil.copyfile(path, named)
    with open(named, "rb") as file:
        video = token_client.upload_with_upload_token(token, file)
    cleanup.append(video.video_id)
    assert video.title == f"{marker}-small"
    assert [v.video_id for v in titled(videos_api, f"{marker}-small")] == [video.video_id]
    status = videos_api.get_status(video.video_id)
    assert status.ingest.status == "uploaded"
    assert status.ingest.filesize == size


def test_progressive_session_with_a_token_makes_one_video(
        videos_api, token_client, token, large_video, marker, tmp_path, cleanup):
    path, size = large_video
    full_parts, remainder = divmod(size, CHUNK_SIZE)
    assert remainder > 0
    session = token_client.create_upload_with_upload_token_progressive_session(token)
    video_id = None
    with open(path, "rb") as source:
        for part in parts(full_parts):
            # The first part names the video: every part file carries the run's marker.
            slice_path = tmp_path / f"{marker}-session.mp4"
            slice_path.write_bytes(source.read(CHUNK_SIZE))
            with open(slice_path, "rb") as chunk:
                answer = session.uploadPart(chunk)
            # Non-last answers are the strict VideoId model: only `videoId`.
            if video_id is None:
                video_id = answer.video_id
                cleanup.append(video_id)
            assert answer.video_id == video_id
            status = videos_api.get_status(video_id)
            assert status.ingest.status == "uploading"
            assert status.ingest.received_parts.parts == parts(part)
        last_path = tmp_path / f"{marker}-session-last.mp4"
        last_path.write_bytes(source.read())
    with open(last_path, "rb") as chunk:
        video = session.uploadLastPart(chunk)
    assert video.video_id == video_id
    assert video.title == f"{marker}-session"

    assert [v.video_id for v in titled(videos_api, f"{marker}-session")] == [video_id]
    status = videos_api.get_status(video_id)
    assert status.ingest.status == "uploaded"
    assert status.ingest.filesize == size
    assert status.ingest.received_parts.parts == parts(full_parts + 1)


def test_invalid_and_deleted_tokens_are_401(tokens_api, token_client, small_video):
    path, _ = small_video
    with pytest.raises(ApiException) as raised, open(path, "rb") as file:
        token_client.upload_with_upload_token("to0000000000000000000000", file)
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["type"] \
        == "https://docs.api.video/reference/authentication-invalid-upload-token"

    made = tokens_api.create_token(TokenCreationPayload())
    tokens_api.delete_token(made.token)
    with pytest.raises(ApiException) as raised, open(path, "rb") as file:
        token_client.upload_with_upload_token(made.token, file)
    assert raised.value.status == 401
