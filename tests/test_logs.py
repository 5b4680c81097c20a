"""Logs carry ids and codes, never secrets; responses never carry a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from coop.app import build_app
from coop.config import Settings
from coop.logs import REDACTED, JsonFormatter


def formatted(**extra: object) -> dict[str, object]:
    record = logging.LogRecord("coop.test", logging.INFO, __file__, 1, "event %s", ("x",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    body: dict[str, object] = json.loads(JsonFormatter().format(record))
    return body


def test_log_lines_are_json_with_level_logger_and_message() -> None:
    body = formatted(request_id="abc", status=200)
    assert body["level"] == "info" and body["logger"] == "coop.test"
    assert body["msg"] == "event x"
    assert (body["request_id"], body["status"]) == ("abc", 200)


@pytest.mark.parametrize(
    "name",
    ["password", "access_token", "client_secret", "api_key", "email", "cookie", "Authorization"],
)
def test_secret_looking_extras_are_redacted(name: str) -> None:
    assert formatted(**{name: "hunter2"})[name] == REDACTED


def test_key_ids_are_not_mistaken_for_keys() -> None:
    assert formatted(kek="k-1234", kek_id="k-1234")["kek"] == "k-1234"


def test_nested_secrets_are_redacted_and_bytes_are_never_printed() -> None:
    body = formatted(headers={"authorization": "Bearer abc", "accept": "text/html"}, blob=b"\x01k")
    assert body["headers"] == {"authorization": REDACTED, "accept": "text/html"}
    assert body["blob"] == "[2 bytes]"


@pytest.fixture
async def boom_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus one route that fails unexpectedly."""

    async def boom(request: Request) -> Response:
        raise RuntimeError("member secret: alice@example.org")

    app = build_app(settings, manage_db=False)
    app.router.routes.append(Route("/boom", boom))
    # Starlette re-raises after rendering the 500 page (so servers log it): do not re-raise here.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


async def test_request_log_has_the_path_without_its_query_string(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="coop.http"):
        response = await client.get("/healthz?code=s3cr3t-code&token=t0ken")
    (record,) = [r for r in caplog.records if r.name == "coop.http" and r.msg == "request"]
    line = JsonFormatter().format(record)
    assert json.loads(line)["path"] == "/healthz"
    assert json.loads(line)["request_id"] == response.headers["x-request-id"]
    assert "s3cr3t-code" not in line and "t0ken" not in line


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_unexpected_error_shows_a_generic_page_with_the_request_id(
    boom_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, accept: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="coop.errors"):
        response = await boom_client.get("/boom", headers={"accept": accept})
    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert "alice@example.org" not in response.text
    (record,) = [r for r in caplog.records if r.name == "coop.errors"]
    request_id = getattr(record, "request_id", None)
    assert request_id and f"Reference: {request_id}" in response.text
    if accept == "application/json":
        assert response.json()["error"] == "internal_error"


def test_outbound_http_urls_are_not_logged_at_info() -> None:
    """httpx logs each request URL at INFO; those carry member hosts and upstream logins."""
    from coop.config import Settings
    from coop.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(Settings())
        for name in ("httpx", "httpcore", "uvicorn.access"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        root.handlers[:], root.level = saved


def test_job_queue_lines_keep_the_job_and_drop_its_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """procrastinate logs every job with its call string and a `job` extra holding its
    arguments (member ids): the line keeps the task, id and status, never the arguments."""
    from procrastinate.jobs import Job

    from coop.logs import configure_logging

    member = "5d0c1f9e-erased-member"
    job = Job(
        id=12,
        queue="default",
        lock=None,
        queueing_lock=None,
        task_name="coop.score",
        task_kwargs={"member_id": member, "scorer": "reach"},
    )
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(Settings())
        logging.getLogger("procrastinate.worker").error(
            "Job %s ended with status: Error",
            job.call_string,
            extra={"action": "job_error", "job": job.log_context()},
        )
    finally:
        root.handlers[:], root.level = saved
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "Job coop.score[12](…) ended with status: Error"
    assert line["job"]["id"] == 12 and line["job"]["task_name"] == "coop.score"
    assert member not in json.dumps(line)
