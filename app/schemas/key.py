"""An API key as its holder may see it: never the secret."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.security import Role


class KeyRead(BaseModel):
    name: str = Field(description="The key's name: the actor in audit records.")
    role: Role = Field(description="What the key may do: admin, agent or readonly.")
