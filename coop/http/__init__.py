"""Shared transport code: the runtime handle, request -> Actor, CSRF, security headers."""
