"""Video source uploads through api.video 1.3.0 (api-contract.md §4).

How this client uploads (§4.5), with the 5 MiB chunk size used here:
  - upload(): always `Content-Range: part i/N`, N = ceil(size / chunk), even `part 1/1` for a
    file smaller than one chunk; the multipart field is named "file";
  - a progressive session: `part i/*` for uploadPart(), `part i/i` for uploadLastPart().
    Non-last answers are deserialised as the VideoId model, which accepts only `videoId`.
"""

import json
import math

import pytest

from apivideo.exceptions import ApiException, NotFoundException

from conftest import CHUNK_SIZE


def parts(n):
    return list(range(1, n + 1))


def test_large_file_is_sent_in_parts(create_video, videos_api, large_video):
    path, size = large_video
    expected_parts = math.ceil(size / CHUNK_SIZE)
    video = create_video("chunked")

    # The listener is called before each part with the byte offset the part ends at.
    offsets = []
    with open(path, "rb") as file:
        uploaded = videos_api.upload(video.video_id, file,
                                     _progress_listener=lambda offset, total: offsets.append(offset))
    assert len(offsets) == expected_parts

    # The answer to the completing part is the full video.
    assert uploaded.video_id == video.video_id
    assert uploaded.title == video.title
    assert uploaded.source.uri == f"/videos/{video.video_id}/source"

    status = videos_api.get_status(video.video_id)
    assert status.ingest.status == "uploaded"
    assert status.ingest.filesize == size
    assert status.ingest.received_parts.parts == parts(expected_parts)
    assert status.ingest.received_parts.total == expected_parts


def test_progressive_session_sends_5_mib_parts_then_the_remainder(
        create_video, videos_api, large_video, tmp_path):
    path, size = large_video
    full_parts, remainder = divmod(size, CHUNK_SIZE)
    assert remainder > 0, "the fixture must not be a multiple of the chunk size"
    video = create_video("progressive")
    session = videos_api.create_upload_progressive_session(video.video_id)

    # The session uploads whole file objects (it reads them to the end), so each slice is
    # written to its own file first.
    with open(path, "rb") as source:
        for part in parts(full_parts):
            slice_path = tmp_path / f"part-{part}.mp4"
            slice_path.write_bytes(source.read(CHUNK_SIZE))
            with open(slice_path, "rb") as chunk:
                answer = session.uploadPart(chunk)
            assert answer.video_id == video.video_id

            status = videos_api.get_status(video.video_id)
            assert status.ingest.status == "uploading", f"after part {part}"
            assert status.ingest.received_parts.parts == parts(part), f"after part {part}"
            # Unknown until the last part: null, or left out.
            assert status.ingest.received_parts.get("total") is None, f"after part {part}"

        last_path = tmp_path / "part-last.mp4"
        last_path.write_bytes(source.read())
    assert last_path.stat().st_size == remainder

    with open(last_path, "rb") as chunk:
        uploaded = session.uploadLastPart(chunk)
    assert uploaded.video_id == video.video_id
    assert uploaded.title == video.title

    status = videos_api.get_status(video.video_id)
    assert status.ingest.status == "uploaded"
    assert status.ingest.filesize == size
    assert status.ingest.received_parts.parts == parts(full_parts + 1)
    assert status.ingest.received_parts.total == full_parts + 1


def test_small_file_goes_in_one_request(create_video, videos_api, small_video):
    path, size = small_video
    video = create_video("small")

    offsets = []
    with open(path, "rb") as file:
        uploaded = videos_api.upload(video.video_id, file,
                                     _progress_listener=lambda offset, total: offsets.append(offset))
    assert offsets == [size]  # a single `part 1/1` request
    assert uploaded.video_id == video.video_id

    status = videos_api.get_status(video.video_id)
    assert status.ingest.status == "uploaded"
    assert status.ingest.filesize == size
    assert status.ingest.received_parts.parts == [1]
    assert status.ingest.received_parts.total == 1


def test_second_upload_to_a_complete_source_is_400(create_video, videos_api, small_video):
    path, _ = small_video
    video = create_video("twice")
    with open(path, "rb") as file:
        videos_api.upload(video.video_id, file)
    with pytest.raises(ApiException) as raised, open(path, "rb") as file:
        videos_api.upload(video.video_id, file)
    assert raised.value.status == 400
    assert json.loads(raised.value.body)["type"] \
        == "https://docs.api.video/reference/video-source-already-uploaded"


def test_upload_to_unknown_video_is_404(videos_api, small_video):
    path, _ = small_video
    with pytest.raises(NotFoundException), open(path, "rb") as file:
        videos_api.upload("vi0000000000000000000000", file)
