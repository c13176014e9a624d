"""Authentication as seen by api.video 1.3.0 (api-contract.md §1.2).

The Python client never sends the API key on API calls: connect() trades it for a bearer
token at POST /auth/api-key, and refresh_token() trades the refresh token for a new pair at
POST /auth/refresh. The token state lives in private attributes, read here to check it.
"""

import json
import time

import pytest

from apivideo.api.videos_api import VideosApi
from apivideo.exceptions import ApiException, UnauthorizedException


def test_connect_gets_an_access_token(make_client, api_key):
    client = make_client(api_key)
    before = time.time()
    client.connect()

    assert client._access_token
    assert client._refresh_token
    # The client puts token_type verbatim in front of the token: it must be "Bearer".
    assert client.token_type == "Bearer"
    # next_refresh = now + expires_in - 10, and expires_in must be 3600.
    assert before + 3590 - 5 <= client.next_refresh <= time.time() + 3590 + 5

    page = VideosApi(client).list(page_size=1)
    assert page.pagination.page_size == 1


def test_refresh_token_gives_a_new_pair(make_client, api_key):
    client = make_client(api_key)
    client.connect()
    old_refresh = client._refresh_token

    client.refresh_token()

    # The access token is not compared with the old one: a token minted from the same
    # claims within the same second may legitimately be byte-identical.
    assert client._access_token
    # Refresh tokens rotate on every refresh (api-contract.md §1.2).
    assert client._refresh_token and client._refresh_token != old_refresh
    assert client.token_type == "Bearer"
    # The new access token works.
    VideosApi(client).list(page_size=1)


def test_unknown_api_key_is_refused_with_400(make_client):
    client = make_client("not-a-valid-key")
    with pytest.raises(ApiException) as raised:
        client.connect()
    assert raised.value.status == 400
    problem = json.loads(raised.value.body)
    assert problem["status"] == 400
    assert problem["type"] == "https://docs.api.video/reference/authentication-invalid-user-credentials"


def test_invalid_access_token_is_refused_with_401(make_client, api_key):
    client = make_client(api_key)
    client.connect()
    client._access_token = "not-a-valid-token"
    with pytest.raises(UnauthorizedException) as raised:
        VideosApi(client).list(page_size=1)
    assert raised.value.status == 401
