"""The phone agent's own interface: the Model Context Protocol at `/mcp` (spec: "Agent
interface (MCP)"). Tools call the same services as the REST routes; `tools` declares them,
`speech` words their results for a voice, `server` mounts them behind the API keys."""
