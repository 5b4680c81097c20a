"""The CoopError hierarchy: every expected failure has a stable snake_case code.

Services raise these; each transport maps them in one place (GraphQL `extensions.code`,
HTML error page, OAuth error JSON, CLI exit 2). The catalogue is documented in docs/errors.md
and a test fails when a code is missing there.
"""

from __future__ import annotations

from typing import Any


class CoopError(Exception):
    """Base of every expected error. `code` is stable; `message` is safe to show a user."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message()
        if code is not None:
            self.code = code
        super().__init__(self.message)

    @classmethod
    def default_message(cls) -> str:
        return cls.__doc__.strip().splitlines()[0] if cls.__doc__ else cls.code

    def __str__(self) -> str:
        return self.message


class ConfigError(CoopError):
    """The configuration is invalid."""

    code = "config_error"
    status = 500


class InvalidInputError(CoopError):
    """The input is not valid."""

    code = "invalid_input"
    status = 400


class NotFoundError(CoopError):
    """Nothing was found here."""

    code = "not_found"
    status = 404


class ConflictError(CoopError):
    """That conflicts with the current state."""

    code = "conflict"
    status = 409


class PermissionDeniedError(CoopError):
    """You are not allowed to do that."""

    code = "forbidden"
    status = 403


class AuthenticationError(CoopError):
    """Email or password is incorrect."""

    code = "invalid_credentials"
    status = 401


class DatabaseUnavailableError(CoopError):
    """The database is not answering right now; try again in a few seconds."""

    code = "database_unavailable"
    status = 503


class RateLimitedError(CoopError):
    """Too many attempts; wait a little and try again."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UploadsBusyError(RateLimitedError):
    """Every upload slot of this server process is in use; `Retry-After` says when to retry."""

    code = "uploads_busy"
    status = 503

    def __init__(self) -> None:
        super().__init__(
            "Other archives are being read right now. Try again in a minute.", retry_after=30
        )


class VaultError(CoopError):
    """Encrypted data could not be opened."""

    code = "vault_error"
    status = 500


class IntegrityError(VaultError):
    """Encrypted data failed its integrity check."""

    code = "integrity_error"


class KeyMissingError(VaultError):
    """This member's data key no longer exists."""

    code = "key_destroyed"
    status = 410


class PayloadTooLargeError(CoopError):
    """The request body is too large."""

    code = "payload_too_large"
    status = 413


class CsrfError(CoopError):
    """The form has expired or did not come from this site; reload the page and try again."""

    code = "csrf_failed"
    status = 403


class LoginRequiredError(CoopError):
    """Log in to continue."""

    code = "login_required"
    status = 401

    def __init__(self, message: str | None = None, *, next_path: str = "/") -> None:
        super().__init__(message)
        self.next_path = next_path


class SessionEndedError(CoopError):
    """Too many wrong passwords were entered in this session; it was ended."""

    code = "session_ended"
    status = 401


class ReauthRequiredError(CoopError):
    """Confirm your password to continue."""

    code = "reauth_required"
    status = 401

    def __init__(self, message: str | None = None, *, next_path: str = "/") -> None:
        super().__init__(message)
        self.next_path = next_path


class InvalidRedirectUriError(CoopError):
    """A redirect URI must be an exact https URL (http only on loopback), no fragment."""

    code = "invalid_redirect_uri"
    status = 400


class InvalidClientMetadataError(CoopError):
    """A purpose, retention or policy URL in the app's registration is not acceptable."""

    code = "invalid_client_metadata"
    status = 400


class InvalidClientError(CoopError):
    """Client authentication failed."""

    code = "invalid_client"
    status = 401


class InvalidGrantError(CoopError):
    """The code or refresh token is invalid, expired, revoked or not yours."""

    code = "invalid_grant"
    status = 400


class InvalidScopeError(CoopError):
    """The requested scope is unknown, malformed or broader than granted."""

    code = "invalid_scope"
    status = 400


class UrlNotAllowedError(CoopError):
    """That address cannot be fetched: it is not a public http(s) address."""

    code = "url_not_allowed"
    status = 400


class SourceRejectedError(CoopError):
    """That source cannot be used."""

    code = "invalid_source"
    status = 422


class SourceTooLargeError(CoopError):
    """That source is too large."""

    code = "source_too_large"
    status = 413


class ScorerError(CoopError):
    """The scorer could not compute a score."""

    code = "plugin_error"
    status = 502
    # What the plugin raised (type, message, its own traceback lines), for `coop plugins
    # run` and tests; never shown to members nor logged with its message.
    failure: dict[str, Any] | None = None


class ScorerTimeoutError(ScorerError):
    """The scorer took too long and was stopped."""

    code = "plugin_timeout"


class ScorerViolationError(ScorerError):
    """The scorer tried something the sandbox forbids (the network); nothing was stored."""

    code = "sandbox_violation"


class ScorerOutputError(ScorerError):
    """The scorer returned an invalid result, so nothing was stored."""

    code = "invalid_plugin_output"


class SandboxUnavailableError(ScorerError):
    """Scorers cannot run safely on this server right now."""

    code = "sandbox_unavailable"
    status = 503


class ScorerUnavailableError(CoopError):
    """This scorer is not installed or not allowed on this server."""

    code = "scorer_unavailable"
    status = 404


class ReceiptExpiredError(CoopError):
    """This receipt link has expired or was already used."""

    code = "receipt_expired"
    status = 410


class ExportLinkExpiredError(CoopError):
    """This export link has expired or was already used; request a new export."""

    code = "export_link_expired"
    status = 410


class OAuthCallbackError(CoopError):
    """This answer from the provider cannot be used here; start connecting again."""

    code = "oauth_state_invalid"
    status = 400


class UpstreamAuthorizationError(CoopError):
    """The provider did not give coop access; try connecting again later."""

    code = "oauth_token_failed"
    status = 502


class ConnectorNotConfiguredError(CoopError):
    """This connector is not set up on this server; the operator has to configure it."""

    code = "connector_not_configured"
    status = 503


# -- governance (docs/governance.md) ------------------------------------------------------


class ScorerNotApprovedError(ScorerUnavailableError):
    """The members have not approved this scorer (or this version of it) yet."""

    code = "scorer_not_approved"
    status = 409


class ProposalNotFoundError(NotFoundError):
    """There is no such proposal."""

    code = "proposal_not_found"


class VotingClosedError(ConflictError):
    """Voting on this proposal has closed; its outcome stands."""

    code = "voting_closed"


class VotingOpenError(ConflictError):
    """This proposal is still open for voting; it closes at the end of its voting period."""

    code = "voting_open"


class NotEligibleError(PermissionDeniedError):
    """You were not a member when this proposal opened, so you have no vote on it."""

    code = "not_eligible"


class InvalidChoiceError(InvalidInputError):
    """A vote is yes, no or abstain."""

    code = "invalid_choice"


class ProposalExistsError(ConflictError):
    """A proposal for this already exists or was already decided."""

    code = "proposal_exists"


class GovernanceOffError(ConflictError):
    """Governance is off on this cooperative (COOP_GOVERNANCE)."""

    code = "governance_off"
