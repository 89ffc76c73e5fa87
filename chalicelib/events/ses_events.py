"""SES events (bounces, complaints) through the configuration set's SNS topic."""
import json

from chalicelib.flows.portal import invitations


def handle(sns_message: str) -> dict:
    return {"marked": invitations.record_delivery_problem(json.loads(sns_message))}
