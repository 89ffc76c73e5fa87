"""The tests' (and the local stack's) moto: a transaction is all or nothing, and its rollback backup is one copy
per table however many items it writes (ops/local/moto_server.py)."""
import copy
import uuid

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.core.models import AuditEvent, transaction


def event(tenant_id, i):
    return AuditEvent(tenant_id, f"{i:013d}#{uuid.uuid4().hex[:8]}", at=i, action="test.event")


def test_a_failed_transaction_writes_nothing(tenant):
    taken = event(tenant.id, 1)
    taken.save()
    fresh = [event(tenant.id, 2 + i) for i in range(5)]
    with pytest.raises(TransactWriteError):
        with transaction() as writes:
            for e in fresh:
                writes.save(e)
            writes.save(AuditEvent(tenant.id, taken.event_id, at=1, action="again"),
                        condition=AuditEvent.event_id.does_not_exist())
    assert [e.event_id for e in AuditEvent.query(tenant.id)] == [taken.event_id]


def test_a_transaction_copies_each_table_once_for_its_rollback(tenant, monkeypatch):
    import moto.dynamodb.models as dynamodb_models
    copies = []
    real = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda obj, memo=None: copies.append(type(obj).__name__) or real(obj, memo))
    with transaction() as writes:
        for i in range(50):
            writes.save(event(tenant.id, 100 + i))
    assert copies.count(dynamodb_models.Table.__name__) == 1
    assert len(list(AuditEvent.query(tenant.id))) == 50
