"""What readers do: sign in with an emailed or activation code, keep a session, get per-site passes."""
