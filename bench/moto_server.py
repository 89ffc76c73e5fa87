"""The bench's AWS endpoint: `python -m bench.moto_server PORT`, moto's server in its own process (its CPU and
memory stay out of the measured processes), with two fixes for moto artefacts that AWS does not have. Without
them a bulk run against moto is quadratic in the file size and 100,000 rows would take hours:

- TransactWriteItems deep-copies every table a transaction touches, once per item, to be able to roll back:
  with 100 items on a table of n items, 100·n item copies per call. Here a transaction snapshots only the
  items it touches (the same rollback, item by item).
- SendMessage reads the queue's attributes (for ContentBasedDeduplication), which counts the messages on the
  queue by walking all of them: n steps per message sent. Here the three message counts are left out of that
  one read; GetQueueAttributes still counts them.
- Building an item, moto sums the sizes of all its attributes again after setting each one (quadratic in an item's
  attributes; the largest share of moto's CPU in a bulk run): ops/local/moto_server.check_item_size_once, as on the
  local stack."""
import copy
import sys
import threading

import moto.dynamodb.models as ddb
from moto.dynamodb.models.table import Table


class _CopyExceptTables:
    """Stands in for the `copy` module inside moto.dynamodb.models: tables are 'copied' as themselves."""

    @staticmethod
    def deepcopy(obj, memo=None):
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)


ddb.copy = _CopyExceptTables
_transact = ddb.DynamoDBBackend.transact_write_items


def _transact_with_item_undo(self, transact_items):
    undo = []
    try:
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            key = op.get("Key") or {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a}
            hash_value, range_value = self.get_keys_value(table, key)
            undo.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
    except Exception:  # malformed request: moto's own code raises the right error below
        undo = []
    try:
        return _transact(self, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(undo):
            if item is None:
                table.items.get(hash_value, {}).pop(range_value, None) if range_value else \
                    table.items.pop(hash_value, None)
            elif range_value:
                table.items[hash_value][range_value] = item
            else:
                table.items[hash_value] = item
        raise


ddb.DynamoDBBackend.transact_write_items = _transact_with_item_undo

import moto.sqs.models as sqs  # noqa: E402

_sending = threading.local()  # moto's server answers each request on its own thread
_send = sqs.SQSBackend.send_message


def _send_message(self, *args, **kwargs):
    _sending.active = True
    try:
        return _send(self, *args, **kwargs)
    finally:
        _sending.active = False


def _count_unless_sending(count):
    return property(lambda queue: 0 if getattr(_sending, "active", False) else count(queue))


for _name in ("approximate_number_of_messages", "approximate_number_of_messages_delayed",
              "approximate_number_of_messages_not_visible"):
    setattr(sqs.Queue, _name, _count_unless_sending(getattr(sqs.Queue, _name).fget))
sqs.SQSBackend.send_message = _send_message

from ops.local.moto_server import check_item_size_once  # noqa: E402

check_item_size_once()

if __name__ == "__main__":
    from moto.server import main
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
