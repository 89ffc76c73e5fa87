"""`chalice local`, unchanged except for three things: a request for a route the app does not define, the
methods chalice does not handle (TRACE, QUERY, …), which http.server answers itself (see _method_not_served), and
the request log, which leaves out query strings (see _log_request).

For an unknown route Chalice's LocalGateway answers 403 {"message": "Missing Authentication Token"}, which is what a bare API
Gateway says. Our API Gateway (infra/template.json) maps MISSING_AUTHENTICATION_TOKEN to a 404 with the
product's error envelope, so clients of the local stack must see that same 404. The patch only wraps
LocalGateway.handle_request: when the path matches no route it raises a 404 before Chalice's own 403 path
runs; every other request goes through Chalice untouched.

Run from the project root: python -m ops.local.chalice_local local --stage local --port 8000
"""
import json
import os
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


def _method_not_served(self):
    """Any method chalice local has no do_<METHOD> for (TRACE, QUERY, …): http.server would answer 501 with an
    HTML page. It gets the product's 405 envelope with Allow, as every other unserved method does (404 on an
    unknown path)."""
    self._parse_payload()  # read any body so the connection stays usable
    try:
        route = self.local_gateway.event_converter._route_matcher.match_route(self.path).route
    except ValueError:
        return self._send_error_response(RouteNotFound({"Content-Type": "application/json"}, NOT_FOUND_BODY))
    entries = self.local_gateway._app_object.routes[route]
    allowed = ", ".join(sorted(m for m, e in entries.items() if not e.view_name.startswith("method_not_allowed_")))
    body = json.dumps({"error": {"code": "method_not_allowed", "message": f"Use {allowed} on this path."}}).encode()
    self._send_http_response(405, {"Content-Type": "application/json", "Allow": allowed}, body)


def _other_methods(self, name):
    """http.server looks the handler up as do_<METHOD>; only a method chalice lacks ends up here."""
    if name.startswith("do_"):
        return _method_not_served.__get__(self)
    raise AttributeError(name)


# found by `make fuzz`: Schemathesis sends a method the API does not know (TRACE, QUERY) to every path
chalice_local_mod.ChaliceRequestHandler.__getattr__ = _other_methods  # type: ignore[attr-defined]


def _log_request(self, code="-", size="-"):
    """http.server's request line on the console, without its query string: a link's first load carries its token
    there (/register?token=…, /portal/access?token=…), and a console is no place for one."""
    parts = self.requestline.split(" ")
    if len(parts) == 3 and "?" in parts[1]:
        parts[1] = parts[1].split("?", 1)[0] + "?..."
    self.log_message('"%s" %s %s', " ".join(parts), str(getattr(code, "value", code)), str(size))


chalice_local_mod.ChaliceRequestHandler.log_request = _log_request  # type: ignore[method-assign]



def _refuse_without_local_endpoint(argv: list[str]) -> str | None:
    """`--stage local` (what the stack runs) talks only to a local AWS endpoint (config.require_local_endpoint)."""
    stage = argv[argv.index("--stage") + 1] if "--stage" in argv[:-1] else None
    if stage != "local":
        return None
    os.environ.setdefault("PORTAL_STAGE", "local")  # chalice sets it from .chalice/config.json too, later
    from chalicelib.core import config
    return config.local_endpoint_problem()


if __name__ == "__main__":
    if problem := _refuse_without_local_endpoint(sys.argv):
        print(f"chalice local: error: {problem}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
