"""The HTTP edge shared by every feature: problem+json, bearer credentials, client address, CORS, strict bodies, limits.

This is the only layer, with the features' controllers, that imports Litestar.
"""
