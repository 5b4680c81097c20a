"""The member web UI: server-rendered pages (Jinja2) that work without JavaScript."""
