"""The HTTP API over an agency node (FastAPI): officer, auditor and public-verify routes.

Not built yet: see the API issue. The package exists so the `sijill` distribution has its
final shape from the start.
"""
