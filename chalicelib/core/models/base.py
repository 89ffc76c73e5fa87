"""What every model file shares: the clock, the table names, transactions."""
import time
from functools import lru_cache
from typing import Any, cast

from pynamodb.attributes import (
    ListAttribute,
    UnicodeAttribute,
)

from chalicelib.core import config


def now() -> int:
    return int(time.time())


def now_ms() -> int:
    return int(time.time() * 1000)


def table_meta(short: str):
    return type("Meta", (), {"table_name": config.table_name(short), "region": config.region()})


def string_list(**kwargs: Any) -> "ListAttribute[str]":
    """ListAttribute(of=UnicodeAttribute): a list of strings. PynamoDB types its items as the attribute class
    given in `of`, not as the str values they are; the cast says what they are."""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, **kwargs))


def transaction():
    """A DynamoDB transaction (all its writes happen or none); uniqueness claims ride in these."""
    from pynamodb.transactions import TransactWrite
    return TransactWrite(connection=_transaction_connection())


@lru_cache(maxsize=1)
def _transaction_connection():
    """One connection per process: building its botocore client costs ~35 ms, once per bulk chunk otherwise."""
    from pynamodb.connection import Connection
    return Connection(region=config.region())


def connect(*models) -> None:
    """Makes each model's PynamoDB connection and botocore client now, and the transactions' one, before threads
    share them (making them at once in several threads is what is not safe; using them is)."""
    for model in models:
        model._get_connection().connection.client  # noqa: B018 - the property makes the client
    _transaction_connection().client  # noqa: B018
