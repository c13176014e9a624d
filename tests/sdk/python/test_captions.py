"""Captions and chapters through api.video 1.3.0 (api-contract.md rows 25-33, §2, §10). The
client builds Caption and Chapter strictly, so each call also checks that nothing outside the
2023 schema comes back."""

import urllib.request

import pytest

from apivideo.api.captions_api import CaptionsApi
from apivideo.api.chapters_api import ChaptersApi
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.captions_update_payload import CaptionsUpdatePayload

EN = b"WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello from Python\n"
FR = b"WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nBonjour\n"
CHAPTERS = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOne\n\n00:00:01.000 --> 00:00:02.000\nTwo\n"


@pytest.fixture(scope="module")
def captions_api(api_client):
    return CaptionsApi(api_client)


@pytest.fixture(scope="module")
def chapters_api(api_client):
    return ChaptersApi(api_client)


def vtt(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return open(path, "rb")


def fetch(url):
    with urllib.request.urlopen(url) as r:
        return r.headers["Content-Type"], r.read()


def test_captions_upload_get_default_list_delete(captions_api, create_video, tmp_path):
    video = create_video("captions")
    vid = video.video_id
    with vtt(tmp_path, "en.vtt", EN) as f:
        en = captions_api.upload(vid, "en", f)
    assert (en.uri, en.srclang, en.default) == (f"/videos/{vid}/captions/en", "en", False)
    assert fetch(en.src) == ("text/vtt; charset=utf-8", EN)
    with vtt(tmp_path, "fr.vtt", FR) as f:
        captions_api.upload(vid, "fr-CA", f)

    assert captions_api.update(vid, "en", CaptionsUpdatePayload(default=True)).default is True
    assert captions_api.update(vid, "fr-ca", CaptionsUpdatePayload(default=True)).default is True
    assert captions_api.get(vid, "en").default is False

    page = captions_api.list(vid)
    assert [c.srclang for c in page.data] == ["en", "fr-ca"]
    assert page.pagination.items_total == 2
    assert captions_api.list(vid, page_size=1, current_page=2).data[0].srclang == "fr-ca"

    # A second upload replaces the file.
    with vtt(tmp_path, "en2.vtt", FR) as f:
        captions_api.upload(vid, "en", f)
    assert fetch(captions_api.get(vid, "en").src)[1] == FR

    captions_api.delete(vid, "en")
    with pytest.raises(NotFoundException):
        captions_api.get(vid, "en")


def test_caption_errors(captions_api, create_video, tmp_path):
    vid = create_video("caption errors").video_id
    with vtt(tmp_path, "x.vtt", EN) as f, pytest.raises(ApiException) as e:
        captions_api.upload(vid, "xx", f)
    assert e.value.status == 400 and "invalid-attribute" in str(e.value.body)
    with vtt(tmp_path, "bad.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script>\n") as f:
        with pytest.raises(ApiException) as e:
            captions_api.upload(vid, "en", f)
    assert e.value.status == 400 and "uploaded-file-invalid-file" in str(e.value.body)
    with pytest.raises(NotFoundException):
        captions_api.update(vid, "de", CaptionsUpdatePayload(default=True))
    with vtt(tmp_path, "x.vtt", EN) as f, pytest.raises(NotFoundException):
        captions_api.upload("vi0000000000000000000000", "en", f)


def test_chapters_upload_get_list_delete(chapters_api, create_video, tmp_path):
    vid = create_video("chapters").video_id
    with vtt(tmp_path, "chapters.vtt", CHAPTERS) as f:
        c = chapters_api.upload(vid, "en-GB", f)
    assert (c.uri, c.language) == (f"/videos/{vid}/chapters/en-gb", "en-gb")
    assert fetch(c.src)[1] == CHAPTERS
    assert chapters_api.get(vid, "en-gb").src == c.src
    assert [x.language for x in chapters_api.list(vid).data] == ["en-gb"]
    chapters_api.delete(vid, "en-gb")
    with pytest.raises(NotFoundException):
        chapters_api.get(vid, "en-gb")
    assert chapters_api.list(vid).pagination.items_total == 0
