"""Player themes through api.video 1.3.0 (api-contract.md rows 34-40, §2, §8). The client
builds PlayerTheme strictly: any field outside the 2023 schema would raise here."""

import subprocess
import urllib.request

import pytest

from apivideo.api.player_themes_api import PlayerThemesApi
from apivideo.exceptions import ApiException, NotFoundException
from apivideo.model.player_theme_creation_payload import PlayerThemeCreationPayload
from apivideo.model.player_theme_update_payload import PlayerThemeUpdatePayload
from apivideo.model.video_creation_payload import VideoCreationPayload


@pytest.fixture(scope="module")
def players_api(api_client):
    return PlayerThemesApi(api_client)


@pytest.fixture(scope="module")
def themes(players_api, marker):
    created = []

    def create(name, **fields):
        p = players_api.create(PlayerThemeCreationPayload(name=f"{marker} {name}", **fields))
        created.append(p.player_id)
        return p

    yield create
    for player_id in created:
        try:
            players_api.delete(player_id)
        except NotFoundException:
            pass


def test_create_get_update_list_delete(players_api, themes, marker):
    a = themes("b", text="#00ff00", force_autoplay=True)
    assert a.player_id.startswith("pt")
    assert a.text == "#00ff00" and a.force_autoplay is True
    assert a.background_bottom == "rgba(0, 0, 0, .7)"
    b = themes("a")
    assert players_api.get(a.player_id).name == f"{marker} b"
    up = players_api.update(a.player_id, PlayerThemeUpdatePayload(hide_title=True, track_played="#123456"))
    assert up.hide_title is True and up.track_played == "#123456" and up.text == "#00ff00"
    page = players_api.list(sort_by="name", sort_order="asc", page_size=100)
    mine = [p.name for p in page.data if p.get("name", "").startswith(marker)]
    assert mine == [f"{marker} a", f"{marker} b"]
    with pytest.raises(ApiException) as e:
        players_api.create(PlayerThemeCreationPayload(link="url(javascript:x)"))
    assert e.value.status == 400
    players_api.delete(b.player_id)
    with pytest.raises(NotFoundException):
        players_api.get(b.player_id)


def test_logo_upload_and_delete(players_api, themes, tmp_path):
    p = themes("logo")
    logo = tmp_path / "logo.jpg"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=green:s=200x100",
                    "-frames:v", "1", str(logo)], check=True)
    with open(logo, "rb") as f:
        with_logo = players_api.upload_logo(p.player_id, f, link="https://example.com/x")
    assert with_logo.assets.link == "https://example.com/x"
    with urllib.request.urlopen(with_logo.assets.logo) as r:
        assert r.headers["content-type"] == "image/jpeg"
        assert r.read() == logo.read_bytes()
    players_api.delete_logo(p.player_id)
    assert "logo" not in players_api.get(p.player_id).assets


def test_video_detached_when_its_theme_is_deleted(players_api, themes, create_video, videos_api):
    p = themes("attached")
    v = create_video("attached", player_id=p.player_id)
    assert v.player_id == p.player_id
    players_api.delete(p.player_id)
    assert "player_id" not in videos_api.get(v.video_id)
