"""CodeTether: durable AI-agent tasks on Temporal, one package by domain.

See docs/architecture.md for the map and the layering rules."""
