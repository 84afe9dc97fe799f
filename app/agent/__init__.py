"""The phone agent's own interface: the Model Context Protocol at `/mcp` (spec: "Agent
interface (MCP)"). Tools call the same services as the REST routes; `tools` declares them
(a module per area, registered in `tools/__init__.py`), `answers` gives them the service and
shapes what they answer, `speech` words their results for a voice, `server` mounts them
behind the API keys."""
