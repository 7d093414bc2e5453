"""The admin HTTP API over the catalog, the signing keys and the gate's numbers (and, later, the console)."""
