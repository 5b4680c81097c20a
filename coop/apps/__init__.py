"""Third-party apps (OAuth 2 clients): registration and client authentication."""
