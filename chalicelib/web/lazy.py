"""Flow and core modules the web layer imports when a request first uses them, not when `app` is imported.

Every Lambda function of the app (the API and each event handler) imports `app`, which declares every route and
page; if declaring them imported the flows, each cold start would load PynamoDB, botocore and pydantic (about two
thirds of the import time) whether or not it serves a request. So route and page modules name their flows here:

    staff_accounts = lazy("chalicelib.flows.staff.staff_accounts")

    @api.route("/v1/people", "POST", ACCOUNTS, body=staff_accounts.shape("PersonCreate"), ...)
    def create_person(call):
        return staff_accounts.create_person(...)   # the module is imported here, once per container

`shape(name)` names a request or response model without importing it: web.api resolves it when the route first
validates a body or the OpenAPI document is built."""
import importlib
from typing import Any


class ShapeRef:
    """A pydantic model of a lazily imported module, resolved when first needed."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def resolve(self) -> Any:
        return getattr(importlib.import_module(self.module), self.name)

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class LazyModule:
    def __init__(self, name: str) -> None:
        self.__dict__["_name"] = name

    def shape(self, name: str) -> ShapeRef:
        return ShapeRef(self._name, name)

    def __getattr__(self, attr: str) -> Any:
        # sys.modules holds the module after the first call: later ones are a dict lookup
        return getattr(importlib.import_module(self._name), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        # a test's monkeypatch.setattr(route_module.flow, ...) must patch the flow itself, not this stand-in
        setattr(importlib.import_module(self._name), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy {self._name}>"


def lazy(name: str) -> Any:
    """The module `name`, imported on first attribute use (typed Any: mypy checks the flow where it is defined)."""
    return LazyModule(name)


def resolve(model: Any) -> Any:
    """A route's body or response model: a pydantic class, or a ShapeRef resolved now."""
    return model.resolve() if isinstance(model, ShapeRef) else model
