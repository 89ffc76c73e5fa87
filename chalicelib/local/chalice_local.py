"""`chalice local`, unchanged except for one thing: a request for a route the app does not define.

Chalice's LocalGateway answers it 403 {"message": "Missing Authentication Token"}, which is what a bare API
Gateway says. Our API Gateway (infra/template.json) maps MISSING_AUTHENTICATION_TOKEN to a 404 with the
product's error envelope, so clients of the local stack must see that same 404. The patch only wraps
LocalGateway.handle_request: when the path matches no route it raises a 404 before Chalice's own 403 path
runs; every other request goes through Chalice untouched.

Run from the project root: python -m chalicelib.local.chalice_local local --stage local --port 8000
"""
import json
import sys

from chalice import local as chalice_local_mod
from chalice.cli import main

NOT_FOUND_BODY = json.dumps({"error": {"code": "not_found", "message": "No such route."}}).encode()


class RouteNotFound(chalice_local_mod.LocalGatewayException):
    """Sent by chalice's request handler like its own 403: status CODE, our headers, our body."""
    CODE = 404


_original_handle_request = chalice_local_mod.LocalGateway.handle_request


def _handle_request(self, method, path, headers, body):
    try:
        self.event_converter._route_matcher.match_route(path)  # raises ValueError when no route matches
    except ValueError:
        raise RouteNotFound({"Content-Type": "application/json"}, NOT_FOUND_BODY) from None
    return _original_handle_request(self, method, path, headers, body)


# the one deliberate patch of chalice's class (the docstring says why); mypy forbids assigning to a method
chalice_local_mod.LocalGateway.handle_request = _handle_request  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
