import logging
import re
import uuid

from django.contrib.auth import SESSION_KEY
from django.http import HttpResponse

from fintech.api import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from fintech.eventstore import command_metadata

logger = logging.getLogger(__name__)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header_id(request, name: str) -> str | None:
    value = request.headers.get(name, "")
    return value if _SAFE_ID.match(value) else None


class CommandMetadataMiddleware:
    """Gives every event appended while serving a request its trace, correlation and causation ids.

    The trace id comes from a W3C `traceparent` header when there is one; the correlation id from
    `X-Correlation-ID` (echoed back); the causation id is this request's own id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = _TRACEPARENT.match(request.headers.get("traceparent", ""))
        request_id = _header_id(request, "X-Request-ID") or str(uuid.uuid4())
        trace_id = match.group(1) if match else request_id
        correlation_id = _header_id(request, "X-Correlation-ID") or trace_id
        with command_metadata(trace_id=trace_id, correlation_id=correlation_id, causation_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        response["X-Correlation-ID"] = correlation_id
        return response


class DatabaseUnavailableMiddleware:
    """Outside the API (whose exception handler answers problem+json), a page that runs into an unreachable
    database or a dropped connection answers 503 with Retry-After rather than a server error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        logger.warning("database unavailable, %s answered 503: %s", request.path, exception)
        response = HttpResponse(
            "<h1>Service unavailable</h1><p>The database cannot be reached right now. Try again in a moment.</p>",
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class SessionRenewMiddleware:
    """Sliding expiry of logged-in sessions: every answered request saves the session again, so it ends
    SESSION_COOKIE_AGE (STAFF_SESSION_IDLE_MINUTES) after the last one. Not SESSION_SAVE_EVERY_REQUEST: that makes
    the session middleware load the session while answering, and after a dropped database connection it would
    turn the 503 page into a server error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # Only a session this request already loaded (accessed) and did not fail on (< 500): no extra query.
        if response.status_code < 500 and session is not None and session.accessed and SESSION_KEY in session:
            session.modified = True
        return response
