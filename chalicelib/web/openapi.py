"""The OpenAPI 3.1 document, generated from the route table and the same pydantic models the handlers
validate with, so it cannot drift from what the API accepts."""
from functools import lru_cache

from chalicelib.core.paging import MAX_PAGE
from chalicelib.web.api import ROUTES, Public, RouteSpec
from chalicelib.web.lazy import resolve

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                             "additionalProperties": True}},
}
COMMON_ERRORS = {"400": "Invalid request", "401": "Not signed in", "403": "Not allowed", "404": "Not found",
                 "409": "Conflict", "410": "Link or code used, expired or replaced", "413": "Body too large",
                 "415": "Not JSON", "423": "Locked", "429": "Too many requests"}


# Query parameters are strings unless said here (what the handlers accept: paging.page_args for limit).
QUERY_SCHEMAS = {"limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}}


def _schema(model, components: dict) -> dict:
    model = resolve(model)
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build(routes: list[RouteSpec]) -> dict:
    components: dict = {"Error": ERROR_SCHEMA}
    paths: dict = {}
    for spec in routes:
        op: dict = {"operationId": spec.view_name, "summary": spec.summary.splitlines()[0],
                    "x-policy": spec.policy.describe(), "responses": {}}
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _path_params(spec.path)]
        params += [{"name": name, "in": "query", "required": False, "schema": QUERY_SCHEMAS.get(name, {"type": "string"}),
                    "description": text} for name, text in spec.query.items()]
        if params:
            op["parameters"] = params
        if not isinstance(spec.policy, Public):
            op["security"] = [{"bearer": []}]
        if spec.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": _schema(spec.body, components)}}}
        ok: dict = {"description": "Success"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(spec.response, components)}}
        op["responses"][str(spec.status)] = ok
        for status, text in COMMON_ERRORS.items():
            op["responses"][status] = {"description": text,
                                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if spec.errors:  # the route's own error codes, besides the common ones every route may answer
            op["x-error-codes"] = list(spec.errors)
        paths.setdefault(spec.path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "portal-access", "version": "1.0.0",
                 "description": "Customer portal, staff accounts and partner portals for field-service businesses."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@lru_cache(maxsize=1)
def document() -> dict:
    """The document of every route declared (web.api.ROUTES), built once per container."""
    return build(ROUTES)
