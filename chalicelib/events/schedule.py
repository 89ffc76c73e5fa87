"""The schedule (every 5 minutes): expiries and warnings that fall due (flows/expiry.py), and bulk runs that
stopped making progress (flows/portal/bulk_checkpoints.fail_stalled)."""
from chalicelib.flows import expiry
from chalicelib.flows.portal import bulk_checkpoints


def run() -> dict:
    return {**expiry.run(), **bulk_checkpoints.fail_stalled()}
