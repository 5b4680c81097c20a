"""The /graphql transport: bearer-only authentication (GQ-03, OA-19), methods and content
types (GQ-09), headers, body limits (GQ-08 c)."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from coop.vault import Vault
from tests.api.factories import codes, gql, grant_token, make_app, make_member, personal_token

QUERY = "{ viewer { id } }"


async def test_request_without_credentials_gets_401_with_realm_and_no_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await gql(client, None, QUERY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="coop"'
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_token_gets_401_invalid_token(client: httpx.AsyncClient) -> None:
    response = await gql(client, "coop_at_nope", QUERY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="coop", error="invalid_token"'
    assert "data" not in response.json()


async def test_valid_personal_token_reads_viewer(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile", "member:manage"])
    response = await gql(client, token, "{ viewer { id handle } }")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["viewer"]["handle"].startswith("member-")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-ratelimit-limit"] == "600"


async def test_app_token_reads_viewer(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    app = await make_app(vault)
    token = await grant_token(member, app, ["score:reach"])
    response = await gql(client, token.access_token, "{ viewer { id handle } }")
    body = response.json()
    assert body["data"]["viewer"]["handle"] is None
    assert codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["required_scope"] == "profile"


async def test_session_cookie_alone_is_not_accepted(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    client.cookies.set("coop_session", "anything")
    response = await gql(client, None, QUERY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="coop"'


async def test_token_in_query_string_is_ignored(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    response = await client.post(f"/graphql?access_token={token}", json={"query": QUERY})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="coop"'


async def test_malformed_authorization_header_is_an_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer"):
        response = await client.post(
            "/graphql", json={"query": QUERY}, headers={"Authorization": value}
        )
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_get_is_refused_even_for_queries(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    headers = {"Authorization": f"Bearer {token}"}
    for query in ("mutation{setSharingPaused(paused:true){__typename}}", QUERY):
        response = await client.get("/graphql", params={"query": query}, headers=headers)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


async def test_batches_plain_text_and_multipart_are_refused(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.post(
        "/graphql", json=[{"query": QUERY}, {"query": QUERY}], headers=headers
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    response = await client.post(
        "/graphql", content=QUERY, headers={**headers, "Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unsupported content type"
    response = await client.post("/graphql", files={"operations": ("o", b"{}")}, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unsupported content type"


async def test_websocket_upgrade_is_refused(app: object) -> None:
    messages: list[dict[str, object]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, object]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect"}

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    scope = {
        "type": "websocket",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "headers": [(b"origin", b"https://evil.example")],
        "query_string": b"",
        "subprotocols": ["graphql-transport-ws"],
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    await app(scope, receive, send)  # type: ignore[operator]
    assert messages and messages[0]["type"] == "websocket.close"
    assert not any(m["type"] == "websocket.accept" for m in messages)


async def test_graphiql_only_in_dev_mode(settings: Any, db: str) -> None:
    from coop.app import build_app

    for dev, expected in ((True, 200), (False, 405)):
        app = build_app(dataclasses.replace(settings, dev=dev), manage_db=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            response = await c.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == expected
        if dev:
            assert "graphiql" in response.text.lower()


async def test_malformed_request_bodies_get_400_with_a_message(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    cases = {
        b"{not json": "Unable to parse request body as JSON",
        b"\xff\xfe": "Unable to parse request body as JSON",
        b'"{ viewer { id } }"': "The request body must be a JSON object.",
        b"42": "The request body must be a JSON object.",
        b"{}": "No GraphQL query found in the request",
        b'{"query": 7}': "`query` must be a string.",
        b'{"query": "{ viewer { id } }", "variables": []}': (
            "`variables` must be an object or null."
        ),
        b'{"query": "{ viewer { id } }", "operationName": 1}': (
            "`operationName` must be a string or null."
        ),
        b'{"query": "{ viewer { id } }", "extensions": "x"}': (
            "`extensions` must be an object or null."
        ),
    }
    for body, message in cases.items():
        response = await client.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400, body
        assert response.json()["errors"] == [
            {"message": message, "extensions": {"code": "BAD_REQUEST"}}
        ]
        assert response.headers["cache-control"] == "no-store"
    # A charset parameter is fine; the media type is what counts.
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ viewer { id } }"}',
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200 and response.json()["data"]["viewer"]["id"]


async def test_operation_name_picks_one_operation_of_several(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    document = "query A { viewer { id } } query B { viewer { handle } }"
    picked = await client.post(
        "/graphql",
        json={"query": document, "operationName": "B"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert picked.status_code == 200
    viewer = picked.json()["data"]["viewer"]
    assert list(viewer) == ["handle"] and isinstance(viewer["handle"], str)
    for name, message in (
        (None, "The document holds several operations: say which in `operationName`."),
        ("C", "The document has no operation named 'C'."),
    ):
        response = await client.post(
            "/graphql",
            json={"query": document, "operationName": name},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400
        assert response.json()["errors"][0] == {
            "message": message,
            "extensions": {"code": "BAD_REQUEST"},
        }


async def test_subscriptions_are_not_offered(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    response = await gql(client, token, "subscription { viewer { id } }")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_api_lane_keeps_request_ids_security_headers_and_error_pages(
    app: Any, client: httpx.AsyncClient, vault: Vault, caplog: Any
) -> None:
    """/graphql skips the web stack (sessions, cross-site guard, router) but keeps what every
    response needs: X-Request-Id, the security headers, the body limit, JSON error answers."""
    import logging

    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    response = await gql(client, token, QUERY, headers={"Cookie": "coop_session=stale"})
    assert response.status_code == 200
    assert len(response.headers["x-request-id"]) == 16
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "set-cookie" not in response.headers  # no session lookup on the API lane

    class Exploding:
        async def __call__(self, *args: Any) -> None:
            raise RuntimeError("SELECT secret FROM vault_member_key")

        async def aclose(self) -> None:
            pass

    app.state.runtime.graphql = Exploding()
    with caplog.at_level(logging.ERROR, logger="coop.errors"):
        broken = await gql(client, token, QUERY)
    assert broken.status_code == 500
    request_id = broken.headers["x-request-id"]
    assert broken.json() == {
        "error": "internal_error",
        "message": f"Something went wrong on our side. Reference: {request_id}.",
    }
    assert "SELECT" not in broken.text
    assert [r.request_id for r in caplog.records if r.name == "coop.errors"] == [request_id]
