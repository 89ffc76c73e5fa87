"""Powertools Logger (JSON, correlation id per request), Metrics and Tracer, shared by every handler."""
import os
import warnings
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics

from chalicelib.core.errors import Error, Locked

# A handler that published no metric (most requests) is normal here, not worth a warning per invocation.
warnings.filterwarnings("ignore", "No application metrics to publish")

logger = Logger()
metrics = Metrics()
# Every metric carries the stage (the alarms in infra/aws.json match on service and stage)
metrics.set_default_dimensions(stage=os.environ.get("PORTAL_STAGE", "local"))


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """One CloudWatch metric as EMF, at once, with exactly the dimensions service, stage and these (the alarms and
    the dashboard of infra/aws.json match on them). Off where Powertools metrics are off (local stack, tests)."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        return
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    with single_metric(name=name, unit=MetricUnit.Count, value=value,
                       namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "PortalAccess"),
                       default_dimensions={"service": os.environ.get("POWERTOOLS_SERVICE_NAME", "portal-access"),
                                           "stage": os.environ.get("PORTAL_STAGE", "local"), **dimensions}):
        pass


WRONG_CREDENTIALS = ("invalid_credentials", "invalid_client", "passkey_invalid")


def sign_in_outcome(audience: str, flow):
    """Runs a sign-in flow and counts it as SignIns{audience, outcome}: success, failure (wrong credentials),
    locked (423). Other refusals (a forced change, a disabled tenant) are not sign-in outcomes."""
    try:
        result = flow()
    except Error as err:
        outcome = "locked" if isinstance(err, Locked) else "failure" if err.code in WRONG_CREDENTIALS else None
        if outcome:
            count("SignIns", audience=audience, outcome=outcome)
        raise
    count("SignIns", audience=audience, outcome="success")
    return result


@lru_cache(maxsize=1)
def tracer():
    """Created on first use: the X-Ray SDK alone costs ~200 ms of import, too much for every cold start
    of a stage that does not trace (local, tests)."""
    from aws_lambda_powertools import Tracer
    return Tracer()


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")
