"""Webhooks through api.video 1.3.0 (api-contract.md rows 41-44, §9): create, list (with the
`events` filter and pagination), get and delete. The client deserialises strictly, so each
successful call also checks that the body holds only the 2023 fields (no signatureSecret)."""

import json
import secrets

import pytest

from apivideo.api.webhooks_api import WebhooksApi
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.webhooks_creation_payload import WebhooksCreationPayload


@pytest.fixture(scope="module")
def webhooks_api(api_client):
    return WebhooksApi(api_client)


@pytest.fixture(scope="module")
def hook_url():
    # `.invalid` never resolves (RFC 2606): these webhooks receive nothing.
    host = f"pyhook{secrets.token_hex(4)}.invalid"
    return lambda name: f"https://{host}/{name}"


@pytest.fixture(scope="module")
def created(webhooks_api):
    ids = []
    yield ids
    for webhook_id in ids:
        try:
            webhooks_api.delete(webhook_id)
        except NotFoundException:
            pass


def test_create_get_list_delete(webhooks_api, hook_url, created):
    quality = webhooks_api.create(WebhooksCreationPayload(
        events=["video.encoding.quality.completed"], url=hook_url("quality")))
    created.append(quality.webhook_id)
    assert quality.webhook_id.startswith("webhook_") and len(quality.webhook_id) == 30
    assert quality.events == ["video.encoding.quality.completed"]
    assert quality.url == hook_url("quality")

    recorded = webhooks_api.create(WebhooksCreationPayload(
        events=["video.source.recorded"], url=hook_url("recorded")))
    created.append(recorded.webhook_id)

    got = webhooks_api.get(recorded.webhook_id)
    assert got.webhook_id == recorded.webhook_id
    assert got.events == ["video.source.recorded"]

    filtered = webhooks_api.list(events="video.source.recorded", page_size=100)
    ids = [w.webhook_id for w in filtered.data]
    assert recorded.webhook_id in ids and quality.webhook_id not in ids

    page = webhooks_api.list(current_page=1, page_size=1)
    assert len(page.data) == 1 and page.pagination.page_size == 1
    assert page.pagination.items_total >= 2

    webhooks_api.delete(quality.webhook_id)
    with pytest.raises(NotFoundException):
        webhooks_api.get(quality.webhook_id)
    with pytest.raises(NotFoundException):
        webhooks_api.delete(quality.webhook_id)


def test_unknown_event_is_refused(webhooks_api, hook_url):
    with pytest.raises(ApiException) as e:
        webhooks_api.create(WebhooksCreationPayload(events=["video.deleted"], url=hook_url("x")))
    assert e.value.status == 400
    assert json.loads(e.value.body)["name"] == "events"
