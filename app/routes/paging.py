"""The paging query parameters every list operation takes: `limit` 1 to 500 (default 100) and
`offset` at least 0 (SPEC), anything else a 400."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.schemas.common import Limit as LimitValue

Limit = Annotated[LimitValue, Query()]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
