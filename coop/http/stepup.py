"""Step-up (WS-08): the one gate in front of every route that yields export or delete power,
mints a credential that outlives the session, or destroys what others rely on.

Each such endpoint is wrapped by `step_up(...)`; docs/security.md lists them, and a test holds
that list, the wrapped endpoints and the app's state-changing routes equal.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from coop.http.auth import require_recent_auth

# How recently the password must have been entered (at login or on /reauth).
STEP_UP_SECONDS = 10 * 60

Endpoint = Callable[[Request], Awaitable[Response]]
BackTo = str | Callable[[Request], Awaitable[str]]
Condition = Callable[[Request], Awaitable[bool]]

_GUARDED: set[object] = set()


def step_up(back_to: BackTo, *, only_if: Condition | None = None) -> Callable[[Endpoint], Endpoint]:
    """Wrap an endpoint so that it runs only when the password was entered within
    STEP_UP_SECONDS; otherwise ReauthRequiredError (303 to /reauth?next=`back_to`, where the
    form can be submitted again) and the endpoint never runs.

    `only_if` narrows the gate to some submissions (the consent page's "Allow", not "Deny").
    """

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            if only_if is None or await only_if(request):
                target = back_to if isinstance(back_to, str) else await back_to(request)
                await require_recent_auth(
                    request, max_age_seconds=STEP_UP_SECONDS, next_path=target
                )
            return await endpoint(request)

        _GUARDED.add(guarded)
        return guarded

    return wrap


def is_guarded(endpoint: object) -> bool:
    """Whether `endpoint` is wrapped by `step_up` (for the route classification test)."""
    return endpoint in _GUARDED
