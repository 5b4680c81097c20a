"""The one mapping of upstream HTTP answers to the connector contract's errors (all the
built-in connectors use rest.raise_for_status)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from coop.connectors import spec
from coop.connectors.builtin import rest

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text="")


@pytest.mark.parametrize(
    ("response", "error", "wait"),
    [
        (answer(200), None, None),
        (answer(204), None, None),
        (answer(401), spec.NeedsReauthorization, None),
        (answer(429, **{"retry-after": "5"}), spec.Throttled, 5.0),
        (answer(503, **{"retry-after": "7"}), spec.Throttled, 7.0),
        (answer(403, **{"x-ratelimit-remaining": "0", "retry-after": "30"}), spec.Throttled, 30.0),
        (answer(503), spec.TransientUpstreamError, None),
        (answer(500), spec.TransientUpstreamError, None),
        (answer(408), spec.TransientUpstreamError, None),
        (answer(425), spec.TransientUpstreamError, None),
        (answer(403), spec.PermanentUpstreamError, None),
        (answer(404), spec.PermanentUpstreamError, None),
        (answer(301), spec.PermanentUpstreamError, None),  # a redirect nobody followed
    ],
)
def test_each_answer_maps_to_one_contract_error(
    response: httpx.Response, error: type[Exception] | None, wait: float | None
) -> None:
    if error is None:
        rest.raise_for_status(response, NOW)
        return
    with pytest.raises(error) as caught:
        rest.raise_for_status(response, NOW)
    if wait is not None:
        assert isinstance(caught.value, spec.Throttled)
        assert caught.value.retry_after == wait
