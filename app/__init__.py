"""The clinic booking service."""

# The service's version: the OpenAPI document's `info.version` and the MCP server's
# `serverInfo.version` (tests/test_agent_second_round.py holds them equal).
VERSION = "1.0.0"
