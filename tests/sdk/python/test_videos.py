"""Video CRUD, listing and status through api.video 1.3.0
(api-contract.md §3 "Videos", §1.3 errors, §1.4 pagination, §1.5 query encoding)."""

import datetime
import json

import pytest

from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.metadata import Metadata
from apivideo.model.video_update_payload import VideoUpdatePayload

UNKNOWN_VIDEO_ID = "vi0000000000000000000000"


def metadata_pairs(video):
    return [(m.key, m.value) for m in video.metadata]


def titles(page):
    return [video.title for video in page.data]


def rels(pagination):
    return sorted(link.rel for link in pagination.links)


def problem(exception):
    """The problem-details body of an ApiException, as a dict."""
    return json.loads(exception.body)


def test_create_returns_every_field_sent(create_video, videos_api, marker):
    video = create_video(
        "create",
        description="Created by the Python SDK suite",
        public=False,
        tags=[marker, "sdk-python"],
        metadata=[Metadata(key="run", value=marker), Metadata(key="Author", value="John Doe")],
    )

    assert video.video_id.startswith("vi")
    assert video.title == f"{marker} create"
    assert video.description == "Created by the Python SDK suite"
    assert video.public is False
    assert video.tags == [marker, "sdk-python"]
    assert metadata_pairs(video) == [("run", marker), ("Author", "John Doe")]
    assert video.panoramic is False
    assert video.mp4_support is True
    assert isinstance(video.created_at, datetime.datetime)
    assert video.created_at.tzinfo is not None
    assert video.source.uri == f"/videos/{video.video_id}/source"
    assert "player_id" not in video  # omitted, never null, when there is no player

    fetched = videos_api.get(video.video_id)
    assert fetched.video_id == video.video_id
    assert fetched.title == video.title
    assert fetched.description == video.description
    assert fetched.public is False
    assert fetched.tags == video.tags
    assert metadata_pairs(fetched) == metadata_pairs(video)
    assert fetched.created_at == video.created_at


def test_create_with_only_a_title_applies_the_defaults(create_video):
    video = create_video("defaults")
    assert video.public is True
    assert video.panoramic is False
    assert video.mp4_support is True
    assert video.tags == []
    assert video.metadata == []


@pytest.fixture(scope="module")
def prefix(create_video, marker):
    """Three videos told apart by title, tags and metadata; returns their common title prefix."""
    create_video("list alpha", tags=[marker, "red"],
                 metadata=[Metadata(key="run", value=marker), Metadata(key="kind", value="first")])
    create_video("list beta", tags=[marker, "red", "blue"],
                 metadata=[Metadata(key="run", value=marker), Metadata(key="kind", value="second"),
                           Metadata(key="Author", value="Jane Doe")])
    create_video("list gamma", tags=[marker, "blue"],
                 metadata=[Metadata(key="run", value=marker), Metadata(key="kind", value="third")])
    return f"{marker} list"


class TestList:
    def test_title_substring(self, videos_api, prefix):
        page = videos_api.list(title=prefix, sort_by="title", sort_order="asc")
        assert titles(page) == [f"{prefix} alpha", f"{prefix} beta", f"{prefix} gamma"]
        assert page.pagination.items_total == 3

    def test_tags_must_all_match(self, videos_api, prefix, marker):
        # Sent as repeated tags[]=... parameters.
        red = videos_api.list(tags=[marker, "red"], sort_by="title", sort_order="asc")
        assert titles(red) == [f"{prefix} alpha", f"{prefix} beta"]
        both = videos_api.list(tags=[marker, "red", "blue"])
        assert titles(both) == [f"{prefix} beta"]

    def test_metadata_pairs_must_all_match(self, videos_api, prefix, marker):
        # Sent deepObject style: metadata[run]=...&metadata[kind]=...
        third = videos_api.list(metadata={"run": marker, "kind": "third"})
        assert titles(third) == [f"{prefix} gamma"]
        jane = videos_api.list(metadata={"run": marker, "Author": "Jane Doe"})
        assert titles(jane) == [f"{prefix} beta"]
        none = videos_api.list(metadata={"run": marker, "kind": "fourth"})
        assert none.data == []
        assert none.pagination.items_total == 0

    def test_sort_by_title(self, videos_api, prefix):
        asc = videos_api.list(title=prefix, sort_by="title", sort_order="asc")
        assert titles(asc) == [f"{prefix} alpha", f"{prefix} beta", f"{prefix} gamma"]
        desc = videos_api.list(title=prefix, sort_by="title", sort_order="desc")
        assert titles(desc) == [f"{prefix} gamma", f"{prefix} beta", f"{prefix} alpha"]

    def test_sort_by_created_at(self, videos_api, prefix):
        # Creation times have second precision and may tie, so only the order is checked.
        asc = videos_api.list(title=prefix, sort_by="createdAt", sort_order="asc")
        times = [video.created_at for video in asc.data]
        assert len(times) == 3
        assert times == sorted(times)
        desc = videos_api.list(title=prefix, sort_by="createdAt", sort_order="desc")
        times = [video.created_at for video in desc.data]
        assert times == sorted(times, reverse=True)

    def test_pagination(self, videos_api, prefix):
        query = dict(title=prefix, sort_by="title", sort_order="asc", page_size=2)

        first = videos_api.list(current_page=1, **query)
        assert titles(first) == [f"{prefix} alpha", f"{prefix} beta"]
        p = first.pagination
        assert (p.items_total, p.pages_total, p.page_size, p.current_page, p.current_page_items) \
            == (3, 2, 2, 1, 2)
        assert rels(p) == ["first", "last", "next", "self"]
        next_uri = next(link.uri for link in p.links if link.rel == "next")
        assert "currentPage=2" in next_uri and "pageSize=2" in next_uri

        second = videos_api.list(current_page=2, **query)
        assert titles(second) == [f"{prefix} gamma"]
        p = second.pagination
        assert (p.items_total, p.pages_total, p.page_size, p.current_page, p.current_page_items) \
            == (3, 2, 2, 2, 1)
        assert rels(p) == ["first", "last", "previous", "self"]

        # Past the last page: no items, but the real totals.
        beyond = videos_api.list(current_page=3, **query)
        assert beyond.data == []
        assert (beyond.pagination.items_total, beyond.pagination.pages_total) == (3, 2)

    def test_page_size_out_of_range_is_400(self, videos_api):
        with pytest.raises(ApiException) as raised:
            videos_api.list(page_size=101)
        assert raised.value.status == 400
        assert problem(raised.value)["name"] == "pageSize"


def test_update_replaces_tags_and_metadata(create_video, videos_api, marker):
    video = create_video(
        "update before",
        description="before",
        public=True,
        tags=[marker, "old1", "old2"],
        metadata=[Metadata(key="run", value=marker), Metadata(key="old", value="yes")],
    )

    updated = videos_api.update(video.video_id, VideoUpdatePayload(
        title=f"{marker} update after",
        description="after",
        public=False,
        tags=["new", marker],
        metadata=[Metadata(key="new", value="value")],
    ))
    assert updated.video_id == video.video_id
    assert updated.title == f"{marker} update after"
    assert updated.description == "after"
    assert updated.public is False
    assert updated.tags == ["new", marker]
    assert metadata_pairs(updated) == [("new", "value")]
    assert updated.updated_at >= video.created_at

    fetched = videos_api.get(video.video_id)
    assert fetched.title == f"{marker} update after"
    assert fetched.tags == ["new", marker]
    assert metadata_pairs(fetched) == [("new", "value")]

    # Fields left out of the PATCH body keep their values; empty arrays clear.
    cleared = videos_api.update(video.video_id, VideoUpdatePayload(tags=[], metadata=[]))
    assert cleared.title == f"{marker} update after"
    assert cleared.description == "after"
    assert cleared.public is False
    assert cleared.tags == []
    assert cleared.metadata == []


def test_status_of_a_video_without_source_is_missing(create_video, videos_api):
    video = create_video("status")
    status = videos_api.get_status(video.video_id)
    assert status.ingest.status == "missing"
    assert status.encoding.playable is False


def test_delete_then_calls_answer_404(create_video, videos_api):
    video = create_video("delete")
    assert videos_api.delete(video.video_id) is None

    with pytest.raises(NotFoundException) as raised:
        videos_api.get(video.video_id)
    assert raised.value.status == 404
    assert problem(raised.value)["name"] == "videoId"
    with pytest.raises(NotFoundException):
        videos_api.get_status(video.video_id)
    with pytest.raises(NotFoundException):
        videos_api.update(video.video_id, VideoUpdatePayload(title="x"))
    with pytest.raises(NotFoundException):
        videos_api.delete(video.video_id)


def test_get_unknown_id_raises_404(videos_api):
    with pytest.raises(NotFoundException) as raised:
        videos_api.get(UNKNOWN_VIDEO_ID)
    body = problem(raised.value)
    assert body["status"] == 404
    assert body["type"] == "https://docs.api.video/reference/resource-not-found"
    assert body["name"] == "videoId"


def test_create_without_title_raises_400(api_client):
    # VideoCreationPayload makes `title` a required constructor argument, so the typed
    # VideosApi.create() cannot even build a request without it. The request is sent
    # through the same client's call_api(), exactly as create() would send it.
    with pytest.raises(ApiException) as raised:
        api_client.call_api(
            "/videos", "POST", {}, [],
            {"Accept": "application/json", "Content-Type": "application/json"},
            body={},
            response_type=None,
            _return_http_data_only=True,
        )
    assert raised.value.status == 400
    body = problem(raised.value)
    assert body["type"] == "https://docs.api.video/reference/attribute-required"
    assert body["name"] == "title"
