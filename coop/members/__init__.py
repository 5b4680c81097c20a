"""Members: accounts, passwords and web sessions."""
