"""Delegated upload tokens through api.video 1.3.0 (api-contract.md rows 14-17): generate with
and without a ttl, get, list sorted by ttl (only active tokens), expiry, delete. The client
builds UploadToken strictly, so each answer is also a check of its shape. Uploading with a
token is in test_token_upload.py."""

import time
from datetime import timedelta

import pytest

from apivideo.api.upload_tokens_api import UploadTokensApi
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.token_creation_payload import TokenCreationPayload


@pytest.fixture(scope="module")
def tokens_api(api_client):
    return UploadTokensApi(api_client)


@pytest.fixture(scope="module")
def tokens(tokens_api):
    created = []

    def create(**fields):
        t = tokens_api.create_token(TokenCreationPayload(**fields))
        created.append(t.token)
        return t

    yield create
    for token in created:
        try:
            tokens_api.delete_token(token)
        except NotFoundException:
            pass


def test_generate_get_list_delete(tokens_api, tokens):
    forever = tokens()
    assert forever.token.startswith("to") and len(forever.token) == 24
    assert forever.ttl == 0
    assert "expires_at" not in forever, "a token without ttl never expires"
    hour = tokens(ttl=3600)
    assert hour.ttl == 3600
    assert abs((hour.expires_at - hour.created_at) - timedelta(seconds=3600)) <= timedelta(seconds=1)

    got = tokens_api.get_token(hour.token)
    assert got.token == hour.token and got.ttl == 3600

    page = tokens_api.list(sort_by="ttl", sort_order="asc", page_size=100)
    ttls = [t.ttl for t in page.data]
    assert ttls == sorted(ttls)
    mine = [t.token for t in page.data if t.token in (forever.token, hour.token)]
    assert mine == [forever.token, hour.token]

    tokens_api.delete_token(hour.token)
    with pytest.raises(NotFoundException):
        tokens_api.get_token(hour.token)
    with pytest.raises(NotFoundException):
        tokens_api.delete_token(hour.token)


def test_an_expired_token_is_neither_listed_nor_found(tokens_api, tokens):
    short = tokens(ttl=1)
    time.sleep(2.1)
    with pytest.raises(NotFoundException):
        tokens_api.get_token(short.token)
    listed = [t.token for t in tokens_api.list(page_size=100).data]
    assert short.token not in listed


def test_bad_input(tokens_api, make_client):
    with pytest.raises(NotFoundException):
        tokens_api.get_token("to1tcmSFHeYY5KzyhOqVKMKb")
    # A token delegates uploads only: exchanging it as an API key fails.
    token = tokens_api.create_token(TokenCreationPayload(ttl=60)).token
    try:
        with pytest.raises(ApiException) as e:
            make_client(token).connect()
        assert e.value.status == 400
    finally:
        tokens_api.delete_token(token)
