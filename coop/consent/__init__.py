"""Consent: grants with their history, codes and tokens, the one read check, the access log."""
