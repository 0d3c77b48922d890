"""URL routes of the API, built one way for every app: the contract's paths have no trailing slash; the slashed
twins keep clients that add one working (and stay out of the schema, see fintech.api.drop_slashed_twins)."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt


def api_routes(routes: list[tuple[str, type, str]]) -> list[URLPattern]:
    """(route, APIView class, name) → the route and its slashed twin for each."""
    return [path(route, view.as_view(), name=name) for route, view, name in routes] + [
        path(f"{route}/", view.as_view()) for route, view, _ in routes
    ]


def method_routes(route: str, *, name: str, **views: type) -> list[URLPattern]:
    """One path whose methods are served by the views of different apps (the write side creates, the read model
    lists), without a class inheriting from both: a request goes to the view of its method, any other method
    answers 405 with Allow. The dispatcher comes first and serves every request; the routes after it, one per
    view, are never reached and are there for drf-spectacular, which documents APIView classes only.

    Any other method (OPTIONS, a method nobody serves) goes to the first view, whose answer (DRF's metadata, its
    405 problem) is the path's; Allow names every view's methods."""
    handlers = {method.upper(): view.as_view() for method, view in views.items()}
    first = next(iter(handlers.values()))
    allow = ", ".join([*handlers, "HEAD", "OPTIONS"] if "GET" in handlers else [*handlers, "OPTIONS"])

    @csrf_exempt
    def dispatch(request, *args, **kwargs):
        method = "GET" if request.method == "HEAD" else request.method
        response = handlers.get(method, first)(request, *args, **kwargs)
        response["Allow"] = allow
        return response

    documented = [(route, view, f"{name}-{method}") for method, view in views.items()]
    return [path(route, dispatch, name=name), path(f"{route}/", dispatch), *api_routes(documented)]
