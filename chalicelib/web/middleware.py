"""The app's middleware: the settings check, Powertools, and the HTTP envelope for what Chalice answers itself."""
from chalice import ConvertToMiddleware
from chalice.app import Request

from chalicelib.core import config
from chalicelib.core.observability import logger, metrics, tracer, tracing_enabled
from chalicelib.web.api import ApiError, error_body, error_response


def register(app) -> None:
    """Every middleware of the app, in order: the HTTP ones (the request forgotten once answered, Chalice's own
    errors in the envelope), the settings check, then Powertools (Logger, Metrics, Tracer: as middleware, not as
    decorators on routes)."""
    app.register_middleware(forget_request(app), "http")
    app.register_middleware(chalice_error_to_envelope, "http")

    def settings_in_place(event, get_response):
        """A deployed stage with placeholder settings serves nothing and says why in its log (once checked: free)."""
        try:
            config.require_settings()
        except config.PlaceholderSetting as exc:
            logger.error(str(exc))
            if not isinstance(event, Request):
                raise  # an event: Lambda reports the error, the queue retries and dead-letters
            return error_response(ApiError(500, "internal_error", "Something went wrong on our side; try again."))
        return get_response(event)
    app.register_middleware(settings_in_place, "all")
    # log_event=False, not left to POWERTOOLS_LOGGER_LOG_EVENT: an event carries request bodies (passwords) and
    # headers (access tokens), and a debugging switch must not put them in the logs.
    app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True, log_event=False)),
                            "all")
    app.register_middleware(ConvertToMiddleware(metrics.log_metrics), "all")

    def trace(event, get_response):
        if not tracing_enabled():
            return get_response(event)
        return ConvertToMiddleware(tracer().capture_lambda_handler)(event, get_response)
    app.register_middleware(trace, "all")


def forget_request(app):
    """An http middleware that drops the request from the app once it is answered: Chalice keeps the last
    request on `app.current_request` until the next one, and with it the body a warm Lambda would otherwise hold
    (a typed password) for as long as the container idles."""
    def forget(event, get_response):
        try:
            return get_response(event)
        finally:
            app.current_request = None
    return forget


def chalice_error_to_envelope(event, get_response):
    """Chalice's own errors (its 415/405/500 bodies `{"Code", "Message"}`) get the DESIGN envelope too."""
    response = get_response(event)
    body = response.body
    if isinstance(body, dict) and "Code" in body and "error" not in body:
        code = {"InternalServerError": "internal_error", "MethodNotAllowedError": "method_not_allowed",
                "UnsupportedMediaType": "unsupported_media_type", "BadRequestError": "bad_request",
                "NotFoundError": "not_found"}.get(body["Code"], "error")
        message = "Something went wrong on our side; try again." if response.status_code >= 500 \
            else str(body.get("Message", ""))
        response.body = error_body(code, message)
        response.headers["Content-Type"] = "application/json"
    return response
