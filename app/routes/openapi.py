"""The OpenAPI document: plain operation ids, the error statuses this API really answers, and
the roles each operation allows (`x-roles`, from the `allow` the route declares)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from app.security import EVERY_ROLE, Role, roles_of

_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def operation_id(route: APIRoute) -> str:
    """Every operation's `operationId`: the route's name, which is its function's name
    (`book_appointment`) unless the route is given another (a PATCH sharing its function with
    a PUT). FastAPI's default appends the path and method
    (`book_appointment_api_v1_appointments__post`), which generated clients then carry as
    their function names. tests/test_openapi_document.py checks the ids are unique snake_case."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    declared = {
        (context.path_format, method.lower()): roles_of(context.original_route.dependencies)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.original_route.methods or ()
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            # This API answers invalid input with 400 (declared on every operation); 422 only
            # means a reused Idempotency-Key, where it is declared.
            if "HTTPValidationError" in str(responses.get("422", {})):
                del responses["422"]
            if "requestBody" in operation:
                responses["413"] = {"description": "Body over 64 KiB", "content": _ERROR_BODY}
            roles = declared.get((path, method))
            if roles is not None:
                _declare_roles(operation, roles)
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema


def _declare_roles(operation: dict[str, Any], roles: frozenset[Role]) -> None:
    names = [role.value for role in Role if role in roles]
    operation["x-roles"] = names
    note = f"**Roles:** {', '.join(names)}."
    description = operation.get("description")
    operation["description"] = f"{description}\n\n{note}" if description else note
    if roles != EVERY_ROLE:
        operation["responses"]["403"] = {
            "description": "The key's role may not do this",
            "content": _ERROR_BODY,
        }
