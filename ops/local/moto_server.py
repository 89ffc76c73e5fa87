"""The local AWS endpoint: moto's server, with DynamoDB's atomicity of item writes.

DynamoDB applies each item write (its condition included) and each transaction atomically. moto 5 checks a
condition and then applies the update without a lock, so two concurrent `ADD hits :1` or `hits < :limit` writes can
both pass, and a cap or a single-use token that holds on AWS does not hold locally. Serialising moto's item writes
makes the local stack, and the tests that run on it, as strict as DynamoDB. Reads are left concurrent.

moto 5 checks an item's 400 KB limit after each attribute it sets while building the item, summing the sizes of all
the attributes set so far each time: quadratic in an item's attributes, and on a bulk run the largest share of
moto's CPU. Items are built first and their size checked once (the same limit, the same error).

moto 5 also backs up a table for its rollback once per item of a transaction (a deep copy each time): a transaction
of 100 puts into a table copied the whole table 100 times. Within a transaction the backup of a table is made once,
the same state it would have copied 100 times, so a rollback restores exactly what it did before."""
import copy
import sys
import threading
import types

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_atomic = False


def make_item_writes_atomic() -> None:
    global _atomic
    if _atomic:
        return
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    lock = threading.RLock()  # re-entrant: a transaction's writes go through the item writes
    _one_backup_per_table(dynamodb_models, DynamoDBBackend)
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        def serialised(*args, _original=original, **kwargs):
            with lock:
                return _original(*args, **kwargs)
        setattr(DynamoDBBackend, name, serialised)
    _atomic = True


def _one_backup_per_table(module, backend) -> None:
    """moto's transact_write_items deep-copies a table once per item before writing (its rollback state): while
    it runs, a copy of the same table object is made once and reused (the table cannot change in between: the
    writes come after the copies, under the lock)."""
    made: dict[int, object] | None = None

    def deepcopy(obj, memo=None):
        if made is None or not isinstance(obj, module.Table):
            return copy.deepcopy(obj, memo)
        if id(obj) not in made:
            made[id(obj)] = copy.deepcopy(obj, memo)
        return made[id(obj)]
    module.copy = types.SimpleNamespace(deepcopy=deepcopy)
    original = backend.transact_write_items

    def transact_write_items(self, *args, **kwargs):
        nonlocal made
        made = {}
        try:
            return original(self, *args, **kwargs)
        finally:
            made = None
    backend.transact_write_items = transact_write_items


def check_item_size_once() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    def build(item, hash_key, range_key, attrs) -> None:
        item.hash_key, item.range_key = hash_key, range_key
        item.attrs = dynamo_type.LimitedSizeDict()
        dict.update(item.attrs, {key: dynamo_type.DynamoType(value) for key, value in attrs.items()})
        if sum(bytesize(key) + value.size() for key, value in item.attrs.items()) > 405000:  # moto's own limit
            raise ItemSizeTooLarge
    dynamo_type.Item.__init__ = build  # type: ignore[method-assign,assignment]


def main(argv: list[str] | None = None) -> None:
    make_item_writes_atomic()
    check_item_size_once()
    from moto.server import main as moto_main
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
