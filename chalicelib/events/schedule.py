"""The schedule (every 5 minutes): expiries and warnings that fall due (flows/expiry.py), and bulk runs that
stopped making progress (flows/portal/bulk_checkpoints.fail_stalled), and a bulk sending lane no drainer works
(flows/bulk_sending.watch)."""
from chalicelib.flows import bulk_sending, expiry
from chalicelib.flows.portal import bulk_checkpoints


def run() -> dict:
    return {**expiry.run(), **bulk_checkpoints.fail_stalled(), **bulk_sending.watch()}
