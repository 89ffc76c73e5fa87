"""The local AWS endpoint: moto's server, with DynamoDB's atomicity of item writes.

DynamoDB applies each item write (its condition included) and each transaction atomically. moto 5 checks a
condition and then applies the update without a lock, so two concurrent `ADD hits :1` or `hits < :limit` writes can
both pass, and a cap or a single-use token that holds on AWS does not hold locally. Serialising moto's item writes
makes the local stack, and the tests that run on it, as strict as DynamoDB. Reads are left concurrent."""
import sys
import threading

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_atomic = False


def make_item_writes_atomic() -> None:
    global _atomic
    if _atomic:
        return
    from moto.dynamodb.models import DynamoDBBackend
    lock = threading.RLock()  # re-entrant: a transaction's writes go through the item writes
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        def serialised(*args, _original=original, **kwargs):
            with lock:
                return _original(*args, **kwargs)
        setattr(DynamoDBBackend, name, serialised)
    _atomic = True


def main(argv: list[str] | None = None) -> None:
    make_item_writes_atomic()
    from moto.server import main as moto_main
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
