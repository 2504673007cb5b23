"""The A2A face: agent card and JSON-RPC endpoint (a2a-sdk) over the shared task services."""
