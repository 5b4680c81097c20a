"""App registration: redirect URI rules (OA-02), client information, hashed secrets."""

from __future__ import annotations

import pytest

from coop.apps import service as apps
from coop.apps.models import App
from coop.errors import InvalidClientError, InvalidInputError, InvalidRedirectUriError
from coop.vault import Vault

pytestmark = pytest.mark.usefixtures("db")


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb#fragment",
        "https://app.example/cb#",
        "https://*.app.example/cb",
        "https://app.example/*",
        "http://app.example/cb",
        "http://10.0.0.1/cb",
        "ftp://app.example/cb",
        "javascript:alert(1)",
        "app.example/cb",
        "https:///cb",
        "https://user:pass@app.example/cb",
        "https://app.example/c b",
        "",
    ],
)
async def test_bad_redirect_uri_is_refused_with_invalid_redirect_uri(uri: str) -> None:
    with pytest.raises(InvalidRedirectUriError) as caught:
        await apps.create_app(name="A", redirect_uris=[uri])
    assert caught.value.code == "invalid_redirect_uri"
    assert await App.all().count() == 0


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb",
        "https://app.example/cb?tenant=1",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth",
    ],
)
async def test_https_and_loopback_redirect_uris_are_accepted(uri: str) -> None:
    if uri.startswith("com."):
        with pytest.raises(InvalidRedirectUriError):
            await apps.create_app(name="A", redirect_uris=[uri])
        return
    registered = await apps.create_app(name="A", redirect_uris=[uri])
    assert registered.app.redirect_uris == [uri]


async def test_confidential_client_information_follows_rfc_7591() -> None:
    registered = await apps.create_app(
        name="  Reach   Ranker ",
        redirect_uris=["https://ranker.example/cb", "https://ranker.example/cb2"],
        homepage="https://ranker.example",
    )
    info = registered.client_information()
    assert info["client_id"] == registered.app.client_id
    assert info["client_secret"].startswith("coop_cs_")
    assert info["client_name"] == "Reach Ranker"
    assert info["redirect_uris"] == ["https://ranker.example/cb", "https://ranker.example/cb2"]
    assert info["token_endpoint_auth_method"] == "client_secret_basic"
    assert info["grant_types"] == ["authorization_code", "refresh_token"]
    assert info["response_types"] == ["code"]
    assert isinstance(info["client_id_issued_at"], int)


async def test_client_secret_is_stored_only_as_a_hash() -> None:
    registered = await apps.create_app(name="A", redirect_uris=["https://a.example/cb"])
    assert registered.client_secret
    row = await App.get(id=registered.app.id)
    assert row.secret_hash == Vault.token_hash(registered.client_secret)
    assert registered.client_secret not in repr(await App.all().values())


async def test_public_client_has_no_secret() -> None:
    registered = await apps.create_app(
        name="A", redirect_uris=["https://a.example/cb"], public=True
    )
    info = registered.client_information()
    assert "client_secret" not in info
    assert info["token_endpoint_auth_method"] == "none"


async def test_client_authentication_checks_the_secret() -> None:
    registered = await apps.create_app(name="A", redirect_uris=["https://a.example/cb"])
    client_id = registered.app.client_id
    app = await apps.authenticate_client(
        client_id=client_id, client_secret=registered.client_secret
    )
    assert app.id == registered.app.id
    for secret in (None, "", "wrong"):
        with pytest.raises(InvalidClientError):
            await apps.authenticate_client(client_id=client_id, client_secret=secret)
    with pytest.raises(InvalidClientError):
        await apps.authenticate_client(client_id="nobody", client_secret="x")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "x" * 101},
        {"homepage": "ftp://x.example"},
        {"homepage": "http://x.example"},
        {"webhook_url": "not a url"},
    ],
)
async def test_invalid_metadata_is_refused(kwargs: dict[str, str]) -> None:
    args = {"name": "A", "redirect_uris": ["https://a.example/cb"], **kwargs}
    with pytest.raises(InvalidInputError):
        await apps.create_app(**args)  # type: ignore[arg-type]


async def test_too_many_redirect_uris_are_refused() -> None:
    uris = [f"https://a.example/cb{i}" for i in range(11)]
    with pytest.raises(InvalidRedirectUriError):
        await apps.create_app(name="A", redirect_uris=uris)
