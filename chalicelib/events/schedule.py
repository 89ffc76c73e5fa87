"""The schedule (every 5 minutes): expiries and warnings that fall due (flows/expiry.py)."""
from chalicelib.flows import expiry


def run() -> dict:
    return expiry.run()
