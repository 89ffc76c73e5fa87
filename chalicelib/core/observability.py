"""Powertools Logger (JSON, correlation id per request), Metrics and Tracer, shared by every handler."""
import os
import warnings
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics

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


WRONG_CREDENTIALS = ("invalid_credentials", "invalid_client")


def sign_in_outcome(audience: str, flow):
    """Runs a sign-in flow and counts it as SignIns{audience, outcome}: success, failure (wrong credentials),
    locked (423). Other refusals (a forced change, a disabled tenant) are not sign-in outcomes."""
    from chalicelib.web.api import ApiError
    try:
        result = flow()
    except ApiError as err:
        outcome = "locked" if err.status == 423 else "failure" if err.code in WRONG_CREDENTIALS else None
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


def _tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")


def register(app) -> None:
    """Wire Powertools into Chalice as middleware (DESIGN: not as decorators on routes)."""
    from chalice import ConvertToMiddleware
    from chalicelib.core import config

    def settings_in_place(event, get_response):
        """A deployed stage with placeholder settings serves nothing and says why in its log (once checked: free)."""
        try:
            config.require_settings()
        except config.PlaceholderSetting as exc:
            logger.error(str(exc))
            from chalice.app import Request
            if not isinstance(event, Request):
                raise  # an event: Lambda reports the error, the queue retries and dead-letters
            from chalicelib.web.api import ApiError, error_response
            return error_response(ApiError(500, "internal_error", "Something went wrong on our side; try again."))
        return get_response(event)
    app.register_middleware(settings_in_place, "all")
    # log_event=False, not left to POWERTOOLS_LOGGER_LOG_EVENT: an event carries request bodies (passwords) and
    # headers (access tokens), and a debugging switch must not put them in the logs.
    app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True, log_event=False)),
                            "all")
    app.register_middleware(ConvertToMiddleware(metrics.log_metrics), "all")

    def trace(event, get_response):
        if not _tracing_enabled():
            return get_response(event)
        return ConvertToMiddleware(tracer().capture_lambda_handler)(event, get_response)
    app.register_middleware(trace, "all")
