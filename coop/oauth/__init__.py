"""The OAuth 2 authorization server for third-party apps (code + PKCE S256, RFC 7009/7662/8414)."""
