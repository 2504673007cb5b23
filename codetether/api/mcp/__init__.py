"""The MCP face: tools and resources (official ``mcp`` SDK, Streamable HTTP) over the shared task services."""
