"""The two sending lanes: interactive messages (the send queue) never wait behind a bulk backlog (the send-backlog
table, drained by on_send_bulk); businesses take turns in the bulk lane; the account's rate is shared (bulk takes
what interactive sends leave); a drain cut short or crashed hands over without losing or repeating a message; a
staff reset code lives from its delivery."""
import json
import threading
import time
import uuid
from pathlib import Path

import os

from conftest import LambdaContext, _receive_all, drain, drain_bulk, outbox_for
from staff_helpers import clock, last_code, staff_member  # noqa: F401

from chalicelib.core import messaging, send_backlog, send_rate
from chalicelib.core.models import ACTIVE_LINE, BacklogItem
from chalicelib.flows import bulk_sending


def business() -> str:
    return "t-lane-" + uuid.uuid4().hex[:8]


def bulk_mail(tenant_id: str, n: int, tag: str = "m") -> list[dict]:
    return [messaging.email(tenant_id, f"{tag}{i}@{tenant_id}.example", "Invitation", f"Body {i}") for i in range(n)]


def delivered_order(tenant_ids: set[str]) -> list[str]:
    """The outbox's messages of these businesses, oldest first, as their tenant ids."""
    out = []
    for path in sorted(Path(os.environ["PORTAL_OUTBOX_DIR"]).glob("*.json")):  # names start with time_ns
        tenant_id = json.loads(path.read_text())["tenant_id"]
        if tenant_id in tenant_ids:
            out.append(tenant_id)
    return out


def send_queue_to_handler(app) -> None:
    """Only the interactive lane: the send queue's messages handed to on_send_message."""
    records = _receive_all("send")
    if records:
        assert app.on_send_message({"Records": records}, LambdaContext()) == {"batchItemFailures": []}


def test_an_interactive_message_goes_out_while_a_bulk_backlog_is_delivering(app, monkeypatch):
    drain(app)  # what earlier tests left
    monkeypatch.setenv("PORTAL_SES_RATE_PER_SECOND", "20")
    a = business()
    messaging.enqueue_bulk(a, bulk_mail(a, 60))  # three seconds at 20/s
    bulk = threading.Thread(target=drain_bulk, args=(app,))
    bulk.start()
    time.sleep(0.5)
    asked = time.monotonic()
    messaging.enqueue([messaging.email("t1", "waiting@lanes.example", "Your code", "12345678")])
    send_queue_to_handler(app)
    took = time.monotonic() - asked
    waiting_still = len(list(BacklogItem.query(a)))
    bulk.join(timeout=30)
    assert len(outbox_for("waiting@lanes.example")) == 1
    assert took < 1.0 and waiting_still > 0  # out before the backlog was, at once
    assert all(len(outbox_for(f"m{i}@{a}.example")) == 1 for i in range(60))
    assert list(BacklogItem.query(a)) == [] and not send_backlog.lease_live()


def test_businesses_take_turns_in_the_bulk_lane(app):
    drain(app)
    a, b = business(), business()
    messaging.enqueue_bulk(a, bulk_mail(a, 200))
    messaging.enqueue_bulk(b, bulk_mail(b, 50))
    drain(app)
    order = delivered_order({a, b})
    assert order.count(a) == 200 and order.count(b) == 50
    last_b = len(order) - 1 - order[::-1].index(b)
    # B's 50 go in five turns of TURN, each after at most one turn of A's: not after A's 200
    assert order[:last_b].count(a) <= 5 * bulk_sending.TURN, order[:last_b + 1]
    assert not [m for m in BacklogItem.query(ACTIVE_LINE) if m.seq in (a, b)]  # both lines retired


class ShortContext(LambdaContext):
    """An invocation whose time runs short after `turns` turns of the drainer."""

    def __init__(self, turns: int, monkeypatch):
        self.left = turns
        real_turn = bulk_sending._turn

        def counted(*args):
            self.left -= 1
            return real_turn(*args)
        monkeypatch.setattr(bulk_sending, "_turn", counted)

    def get_remaining_time_in_millis(self):
        return 300_000 if self.left > 0 else bulk_sending.STOP_MS - 1


def test_a_drain_short_of_time_hands_over_to_a_successor(app, monkeypatch):
    drain(app)
    a = business()
    messaging.enqueue_bulk(a, bulk_mail(a, 35, "c"))
    _receive_all("send-bulk")  # the producer's kick: this test invokes the drainer itself
    result = bulk_sending.drain(ShortContext(2, monkeypatch), lambda m: m)
    assert result == {"sent": 2 * bulk_sending.TURN, "continued": True, "outage": False}
    assert not send_backlog.lease_live()  # released before the successor's kick
    [kick] = [json.loads(r["body"]) for r in _receive_all("send-bulk")]
    assert kick == {"drain": "continuation"}
    monkeypatch.undo()
    send_backlog.kick("test")  # the successor
    drain_bulk(app)
    assert all(len(outbox_for(f"c{i}@{a}.example")) == 1 for i in range(35))


def test_a_drain_that_crashes_after_sending_sends_nothing_twice(app, monkeypatch):
    drain(app)
    a = business()
    messaging.enqueue_bulk(a, bulk_mail(a, 25, "x"))
    _receive_all("send-bulk")
    real_remove = send_backlog.remove

    def crash(tenant_id, seqs):
        raise ConnectionError("the function died before the sent messages left the backlog")
    monkeypatch.setattr(send_backlog, "remove", crash)
    kick = {"Records": [{"messageId": "k1", "receiptHandle": "r", "body": json.dumps({"drain": "test"}),
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
                         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                         "awsRegion": "us-east-1"}]}
    try:
        app.on_send_bulk(kick, LambdaContext())
        raise AssertionError("the crash should have reached the handler")
    except ConnectionError:
        pass
    assert not send_backlog.lease_live()
    assert sum(len(outbox_for(f"x{i}@{a}.example")) for i in range(25)) == bulk_sending.TURN  # one turn went out
    monkeypatch.setattr(send_backlog, "remove", real_remove)
    app.on_send_bulk(kick, LambdaContext())  # SQS gives the kick back: the retry
    drain_bulk(app)
    assert all(len(outbox_for(f"x{i}@{a}.example")) == 1 for i in range(25))
    assert list(BacklogItem.query(a)) == []


def test_a_line_written_to_while_the_drainer_retires_it_keeps_its_marker(app):
    drain(app)
    a = business()
    messaging.enqueue_bulk(a, bulk_mail(a, 1, "r"))
    _receive_all("send-bulk")
    [(line, touched_at)] = [x for x in send_backlog.active_lines() if x[0] == a]  # what a drainer read
    send_backlog.remove(a, [seq for seq, _ in send_backlog.take(a, 10)])  # … it delivered the line, and then
    send_backlog.put(a, bulk_mail(a, 1, "late"))  # a producer writes meanwhile
    send_backlog.mark_active(a)
    assert send_backlog.retire(a, touched_at) is False  # the drainer's retirement loses: the line stays active
    assert [x for x in send_backlog.active_lines() if x[0] == a]
    send_backlog.kick("test")
    drain_bulk(app)
    assert len(outbox_for(f"late0@{a}.example")) == 1
    assert not [x for x in send_backlog.active_lines() if x[0] == a]


def test_a_producer_seeing_a_live_lease_is_picked_up_by_the_ending_drainer(app, monkeypatch):
    drain(app)
    a = business()
    real_release = send_backlog.release_lease

    def write_just_before_release(holder):
        messaging.enqueue_bulk(a, bulk_mail(a, 3, "edge"))  # sees the live lease: sends no kick
        real_release(holder)
    monkeypatch.setattr(send_backlog, "release_lease", write_just_before_release)
    assert bulk_sending.drain(LambdaContext(), lambda m: m)["continued"] is False
    monkeypatch.setattr(send_backlog, "release_lease", real_release)
    kicks = [json.loads(r["body"]) for r in _receive_all("send-bulk")]
    assert kicks == [{"drain": "late write"}]  # the ending drainer's look after its release
    send_backlog.kick("test")
    drain_bulk(app)
    assert all(len(outbox_for(f"edge{i}@{a}.example")) == 1 for i in range(3))


def test_the_schedule_wakes_a_lane_whose_drainer_died_holding_the_lease(app):
    """A drainer killed mid-run (out of memory, say) keeps its lease until it lapses, and producers seeing it live
    send no kick: the schedule finds the waiting line once the lease has lapsed, and nothing is sent twice."""
    from conftest import SCHEDULED_EVENT
    drain(app)
    a = business()
    holder = send_backlog.acquire_lease(5)  # the dead drainer's lease
    assert holder
    messaging.enqueue_bulk(a, bulk_mail(a, 3, "orphan"))
    assert _receive_all("send-bulk") == []  # the producer saw a live lease
    assert app.run_schedule(SCHEDULED_EVENT, LambdaContext())["bulk_lane_woken"] == 0  # still live: not yet
    while send_backlog.lease_live():
        time.sleep(0.2)
    assert app.run_schedule(SCHEDULED_EVENT, LambdaContext())["bulk_lane_woken"] == 1
    drain_bulk(app)
    assert all(len(outbox_for(f"orphan{i}@{a}.example")) == 1 for i in range(3))
    assert app.run_schedule(SCHEDULED_EVENT, LambdaContext())["bulk_lane_woken"] == 0  # nothing waits now


def test_an_aws_outage_pauses_the_lane_instead_of_dead_lettering_it(app, monkeypatch):
    """SES unreachable: the drainer's pass delivers nothing, so it stops and wakes a successor a minute later;
    nothing is dead-lettered or lost, and once SES answers every message goes out once."""
    from botocore.exceptions import EndpointConnectionError
    from chalicelib.core import dead_letters
    drain(app)
    a = business()
    messaging.enqueue_bulk(a, bulk_mail(a, 25, "outage"))
    _receive_all("send-bulk")
    real_send = messaging._send

    def ses_unreachable(message):
        raise EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com")
    monkeypatch.setattr(messaging, "_send", ses_unreachable)
    monkeypatch.setattr(messaging, "THROTTLE_TRIES", 1)
    result = bulk_sending.drain(LambdaContext(), lambda m: m)
    assert result["outage"] is True and result["sent"] == 0
    assert [d for d in dead_letters.list_dead("send-bulk") if a in json.dumps(d)] == []
    assert len(list(BacklogItem.query(a))) == 25  # all still in line
    monkeypatch.setattr(messaging, "_send", real_send)
    send_backlog.kick("test")
    drain_bulk(app)
    assert all(len(outbox_for(f"outage{i}@{a}.example")) == 1 for i in range(25))


def test_bulk_keeps_to_the_rate_and_interactive_goes_first_within_it(app, monkeypatch):
    drain(app)
    time.sleep(1 - time.time() % 1)  # the seconds counted hold no slot of what that drain sent (up to 14 a second)
    monkeypatch.setenv("PORTAL_SES_RATE_PER_SECOND", "5")
    a = business()
    messaging.enqueue_bulk(a, bulk_mail(a, 16, "rate"))
    started = int(time.time())
    drain(app)
    ended = int(time.time())
    per_second = [send_rate.taken("email", s) for s in range(started, ended + 1)]
    assert max(per_second) <= 5 and sum(per_second) >= 16, per_second
    assert ended - started >= 3  # 16 at 5/s
    # this second's slots all taken by bulk: an interactive send takes the next second's first slot, ahead of bulk,
    # and goes within a second; neither second is over the rate
    second = int(time.time())
    while send_rate.taken("email", second) < 5:
        send_rate.take_bulk("email")
        if int(time.time()) != second:
            second = int(time.time())
    t0 = time.monotonic()
    messaging.deliver(messaging.email("t1", "urgent@lanes.example", "Code", "1"))
    # at most the rest of this second, plus the calls themselves (slack for a loaded CI machine; bulk would wait on)
    assert time.monotonic() - t0 < 1.8 and len(outbox_for("urgent@lanes.example")) == 1
    assert send_rate.taken("email", second) == 5 and send_rate.taken("email", second + 1) >= 1


def test_a_reset_code_lives_its_ten_minutes_from_delivery(app, http, tenant, clock):  # noqa: F811
    from chalicelib.flows.staff import staff_recovery
    person, _ = staff_member(tenant, kind="employee")
    flow = http.post("/v1/staff/password-reset/start", {"tenant_id": tenant.id, "identifier": person.username})[1]
    assert http.post("/v1/staff/password-reset/send-code", {"flow_id": flow["flow_id"]})[0] == 202
    clock.advance(staff_recovery.CODE_SECONDS - 60)  # the queue held it nine minutes
    code = last_code(app, person.email)  # delivered now
    clock.advance(staff_recovery.CODE_SECONDS - 60)  # nineteen minutes after the request, nine after delivery
    status, body = http.post("/v1/staff/password-reset/verify", {"flow_id": flow["flow_id"], "code": code})
    assert status == 200, body


def test_a_replaced_code_still_queued_is_not_sent(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    drain(app)
    flow = http.post("/v1/staff/password-reset/start", {"tenant_id": tenant.id, "identifier": person.username})[1]
    for _ in range(2):
        assert http.post("/v1/staff/password-reset/send-code", {"flow_id": flow["flow_id"]})[0] == 202
    code = last_code(app, person.email)
    assert len([m for m in outbox_for(person.email) if "code" in m["body"].lower()]) == 1  # only the newer one
    assert http.post("/v1/staff/password-reset/verify", {"flow_id": flow["flow_id"], "code": code})[0] == 200


def test_a_code_queued_for_a_reset_that_ended_is_not_sent(app, http, tenant):
    """The queue held the code (or it was redriven late) while the reset ended: nothing is sent, nothing counted."""
    from chalicelib.core.models import Token
    from chalicelib.core.security.tokens import token_hash
    person, _ = staff_member(tenant, kind="employee")
    drain(app)
    flow = http.post("/v1/staff/password-reset/start", {"tenant_id": tenant.id, "identifier": person.username})[1]
    assert http.post("/v1/staff/password-reset/send-code", {"flow_id": flow["flow_id"]})[0] == 202
    Token.get(token_hash(flow["flow_id"])).update(actions=[Token.used_at.set(int(time.time()))])
    drain(app)
    assert [m for m in outbox_for(person.email) if "code" in m["body"].lower()] == []


def test_a_message_put_twice_is_dead_lettered_once_and_redriven_once(app, monkeypatch):
    """A bulk run resumed after a crash puts the invitations it decides again once more (the same message ids): when
    SES rejects the address, the two copies leave one dead letter, not two; redriven, the message goes out once."""
    from botocore.exceptions import ClientError
    from chalicelib.core import dead_letters
    drain(app)
    a = business()
    [message] = bulk_mail(a, 1, "twice")
    messaging.enqueue_bulk(a, [message])
    messaging.enqueue_bulk(a, [dict(message)])  # the resumed run's copy: another item on the line, the same id
    assert len(list(BacklogItem.query(a))) == 2
    real_send = messaging._send

    def rejected(message):
        raise ClientError({"Error": {"Code": "MessageRejected", "Message": "Address blacklisted."}}, "SendEmail")
    monkeypatch.setattr(messaging, "_send", rejected)
    drain_bulk(app)
    mine = [d for d in dead_letters.list_dead("send-bulk") if f"twice0@{a}.example" in d["summary"]]
    assert len(mine) == 1 and "MessageRejected" in mine[0]["reason"]
    assert list(BacklogItem.query(a)) == []
    monkeypatch.setattr(messaging, "_send", real_send)
    assert dead_letters.redrive("send-bulk") >= 1
    drain_bulk(app)
    assert len(outbox_for(f"twice0@{a}.example")) == 1
    assert [d for d in dead_letters.list_dead("send-bulk") if f"twice0@{a}.example" in d["summary"]] == []
