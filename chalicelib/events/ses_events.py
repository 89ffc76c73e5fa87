"""SES events (bounces, complaints) through the configuration set's SNS topic."""
import json

from chalicelib.flows.portal import delivery_problems


def handle(sns_message: str) -> dict:
    return {"marked": delivery_problems.record_delivery_problem(json.loads(sns_message))}
