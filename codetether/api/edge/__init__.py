"""What every face of the API shares at the edge: problem details, idempotency, rate limits, metrics
and the per-user cap on held-open requests."""
