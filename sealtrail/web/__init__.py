"""The web assembly: the FastAPI application, routers per area (staff pages, student portal, people, SSO, staff
API, batches, signing API, interoperability) and the one table that maps domain errors to HTTP statuses.

Part of the shell (``sealtrail``): may import every package.
"""
