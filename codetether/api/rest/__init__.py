"""The REST face: ``/v1/...`` routers (one per resource) and their pydantic schemas."""
