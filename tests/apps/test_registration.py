"""App registration: redirect URI rules (OA-02), client information, hashed secrets."""

from __future__ import annotations

import pytest

from coop.apps import service as apps
from coop.apps.models import App
from coop.errors import (
    InvalidClientError,
    InvalidInputError,
    InvalidRedirectUriError,
    NotFoundError,
)
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


async def all_rows_as_text() -> str:
    """Every row of every table, as text: what a copy of the database holds."""
    from tortoise import Tortoise

    models = Tortoise.apps["models"].values()  # type: ignore[index]
    return repr([await model.all().values() for model in models])


async def test_an_app_with_a_webhook_url_is_shown_a_webhook_secret_once(vault: Vault) -> None:
    registered = await apps.create_app(
        name="A",
        redirect_uris=["https://a.example/cb"],
        webhook_url="https://a.example/hook",
        vault=vault,
    )
    info = registered.client_information()
    assert info["webhook_secret"].startswith("coop_whsec_")
    assert info["webhook_url"] == "https://a.example/hook"
    assert info["client_secret"].startswith("coop_cs_")  # RFC 7591 fields are all kept
    assert info["token_endpoint_auth_method"] == "client_secret_basic"
    assert info["webhook_secret"] != info["client_secret"]
    row = await App.get(id=registered.app.id)
    assert apps.webhook_secret_of(vault, row) == info["webhook_secret"]


async def test_nothing_stored_reveals_the_webhook_secret(vault: Vault) -> None:
    registered = await apps.create_app(
        name="A",
        redirect_uris=["https://a.example/cb"],
        webhook_url="https://a.example/hook",
        vault=vault,
    )
    secret = registered.webhook_secret
    assert secret
    stored = await all_rows_as_text()
    body = secret.removeprefix("coop_whsec_")
    for form in (secret, body, Vault.token_hash(secret), Vault.token_hash(body)):
        assert form not in stored
    row = await App.get(id=registered.app.id)
    assert row.webhook_salt and row.webhook_salt not in secret


async def test_a_public_client_with_a_webhook_url_gets_a_webhook_secret(vault: Vault) -> None:
    registered = await apps.create_app(
        name="A",
        redirect_uris=["http://127.0.0.1:9000/cb"],
        public=True,
        webhook_url="https://a.example/hook",
        vault=vault,
    )
    info = registered.client_information()
    assert "client_secret" not in info
    assert info["webhook_secret"].startswith("coop_whsec_")


async def test_an_app_without_a_webhook_url_has_no_webhook_secret(vault: Vault) -> None:
    registered = await apps.create_app(
        name="A", redirect_uris=["https://a.example/cb"], vault=vault
    )
    assert "webhook_secret" not in registered.client_information()
    assert apps.webhook_secret_of(vault, registered.app) is None


async def test_rotating_the_webhook_secret_replaces_it(vault: Vault) -> None:
    registered = await apps.create_app(
        name="A",
        redirect_uris=["https://a.example/cb"],
        webhook_url="https://a.example/hook",
        vault=vault,
    )
    new = await apps.rotate_webhook_secret(vault=vault, client_id=registered.app.client_id)
    assert new.startswith("coop_whsec_") and new != registered.webhook_secret
    row = await App.get(id=registered.app.id)
    assert apps.webhook_secret_of(vault, row) == new
    assert new not in await all_rows_as_text()
    # The client secret is untouched.
    assert row.secret_hash == Vault.token_hash(registered.client_secret or "")


async def test_rotating_needs_a_known_app_with_a_webhook_url(vault: Vault) -> None:
    with pytest.raises(NotFoundError) as unknown:
        await apps.rotate_webhook_secret(vault=vault, client_id="coop_nobody")
    assert unknown.value.code == "not_found"
    plain = await apps.create_app(name="A", redirect_uris=["https://a.example/cb"])
    with pytest.raises(InvalidInputError) as no_hook:
        await apps.rotate_webhook_secret(vault=vault, client_id=plain.app.client_id)
    assert no_hook.value.code == "invalid_input"
