"""Powertools Logger (JSON, correlation id per request), Metrics and Tracer, shared by every handler."""
import os
import warnings
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics

# A handler that published no metric (most requests) is normal here, not worth a warning per invocation.
warnings.filterwarnings("ignore", "No application metrics to publish")

logger = Logger()
metrics = Metrics()


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
