"""Readers and supporters: sign-in, sessions, passes and /v1/me."""
