"""What the OpenAPI schema says about errors, built once for every operation (a drf-spectacular postprocessing
hook) from the same registry the exception handler answers with, so the two cannot disagree.

Every operation documents 401, 403, 429 and 503 (the database unreachable); 400 where a body, a query or a
header is read; 404 where the path names something; 415 where a body is read; and the statuses of the domain
errors its view declares with `@raises(...)`. An `@idempotent` command documents the Idempotency-Key header and
422 idempotency_key_reused; one that may raise PreconditionFailed documents the If-Match header (that is what
412 answers).
"""

from __future__ import annotations

from collections import defaultdict

from fintech.api import PROBLEM_CONTENT_TYPE, problem_status_code
from fintech.eventstore import PreconditionFailed

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem; `code` is stable, `detail` is for people.",
    "properties": {
        "type": {"type": "string", "example": "urn:fintech:problem:insufficient_funds"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "validation_error only: the messages of each invalid field (nested for nested fields)",
            "additionalProperties": True,
        },
    },
    "required": ["type", "title", "status", "code", "detail"],
}

IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying with the same key and body replays the first answer (Idempotent-Replayed: true); "
    "the same key with another body is 422 idempotency_key_reused.",
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$", "minLength": 1, "maxLength": 255},
}

IF_MATCH_PARAMETER = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'The ETag of the version the command expects, such as "3"; another version is 412 '
    "precondition_failed. `*` or no header: whatever the current version is.",
    "schema": {"type": "string", "pattern": '^(\\*|(W/)?"?[0-9]{1,10}"?)$'},
}

# The path parameters, typed as the views parse them (the URL converters are plain `str`, so that a malformed
# id still gets a problem+json 404 from the view rather than Django's HTML one).
PATH_PARAMETER_SCHEMAS = {
    "payment_id": {"type": "string", "format": "uuid"},
    "account_id": {"type": "string", "format": "uuid"},
    "hold_id": {"type": "string", "format": "uuid"},
    "token": {"type": "string", "pattern": "^tok_[A-Za-z0-9]{1,60}$"},
}

# The stable codes behind each generic status, for the response descriptions.
_GENERIC_CODES = {
    400: ["parse_error", "validation_error"],
    401: ["not_authenticated", "authentication_failed"],
    403: ["permission_denied"],
    404: ["not_found"],
    415: ["unsupported_media_type"],
    422: ["idempotency_key_reused"],
    429: ["throttled"],
    503: ["service_unavailable"],
}


def raises(*exceptions: type[Exception]):
    """Declare the domain errors a view method may answer with, for the schema (their statuses come from the
    exception handler's registry)."""

    def mark(view_method):
        view_method.problems = exceptions
        return view_method

    return mark


def _problem_response(codes: list[str]) -> dict:
    return {
        "description": ", ".join(dict.fromkeys(codes)),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _statuses(operation: dict, method: str, view_method) -> dict[int, list[str]]:
    parameters = operation.get("parameters", [])
    statuses: dict[int, list[str]] = defaultdict(list)
    for status in (401, 403, 429, 503):
        statuses[status] += _GENERIC_CODES[status]
    if method != "get" or any(p["in"] in ("query", "header") for p in parameters):
        statuses[400] += _GENERIC_CODES[400]
    if method != "get":
        statuses[415] += _GENERIC_CODES[415]
    if any(p["in"] == "path" for p in parameters):
        statuses[404] += _GENERIC_CODES[404]
    if getattr(view_method, "idempotency_key", False):
        statuses[422] += _GENERIC_CODES[422]
    for exception in getattr(view_method, "problems", ()):
        known = problem_status_code(exception)
        if known is None:
            raise LookupError(f"{exception.__name__} is not registered with fintech.api.register_problem")
        statuses[known[0]].append(known[1])
    return statuses


def document_problems(result, generator, request, public):
    """drf-spectacular postprocessing hook: the Problem component, typed path parameters, the Idempotency-Key
    and If-Match headers, and every problem status each operation can answer."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    views = {(path, method.lower()): callback.cls for path, _, method, callback in generator.endpoints}
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            view_method = getattr(views[(path, method)], method)
            parameters = operation.setdefault("parameters", [])
            for parameter in parameters:
                if parameter["in"] == "path" and parameter["name"] in PATH_PARAMETER_SCHEMAS:
                    parameter["schema"] = PATH_PARAMETER_SCHEMAS[parameter["name"]]
            if getattr(view_method, "idempotency_key", False):
                parameters.append(IDEMPOTENCY_KEY_PARAMETER)
            if PreconditionFailed in getattr(view_method, "problems", ()):
                parameters.append(IF_MATCH_PARAMETER)
            if not parameters:
                del operation["parameters"]
            responses = operation["responses"]
            for status, codes in sorted(_statuses(operation, method, view_method).items()):
                responses.setdefault(str(status), _problem_response(codes))
            for retried in ("429", "503"):
                responses[retried]["headers"] = {
                    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}
                }
    return result
