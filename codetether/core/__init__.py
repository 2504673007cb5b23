"""Infrastructure only: settings, database and models, Temporal client, logging, telemetry, ids,
JSON helpers, URL safety, encryption at rest and the one domain error type."""
