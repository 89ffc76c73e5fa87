"""The tests' (and the local stack's) moto: a transaction is all or nothing, and its rollback backup is one copy
per table however many items it writes; an item's size is checked once, with DynamoDB's limit still kept
(ops/local/moto_server.py)."""
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


def test_an_item_over_400_kb_is_still_refused_and_one_under_it_stored(tenant):
    from pynamodb.exceptions import PutError
    big = AuditEvent(tenant.id, "0000000000001#big", at=1, action="test.big", details={
        f"k{i}": "x" * 1000 for i in range(420)})  # 420 attributes of ~1 KB in a map: over 400 KB
    with pytest.raises(PutError, match="Item size has exceeded the maximum allowed size"):
        big.save()
    under = AuditEvent(tenant.id, "0000000000002#under", at=2, action="test.under", details={
        f"k{i}": "x" * 1000 for i in range(390)})
    under.save()
    assert len(AuditEvent.get(tenant.id, under.event_id).details.as_dict()) == 390


def test_an_item_is_sized_once_however_many_attributes_it_has(tenant, monkeypatch):
    from moto.dynamodb.models import dynamo_type
    sized = []
    real = dynamo_type.DynamoType.size
    monkeypatch.setattr(dynamo_type.DynamoType, "size", lambda self: sized.append(1) or real(self))
    AuditEvent(tenant.id, "0000000000003#wide", at=3, action="test.wide", actor="a", target="t", ip="1.2.3.4",
               trail_key="t#x", actor_key="t#a").save()
    assert len(sized) < 25  # 11 attributes: 16 sizings here; moto's own check, summing all after each one, made 61
