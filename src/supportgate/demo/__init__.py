"""The demo: seeded data and the demo publisher site used by ``supportgate demo`` and browser tests."""
