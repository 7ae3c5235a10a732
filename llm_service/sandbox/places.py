"""Fake Google Places (legacy Places Web Service JSON): nearby search, text search, details.

Like the real service, problems are reported with HTTP 200 and a ``status`` field (``REQUEST_DENIED``,
``INVALID_REQUEST``, ``NOT_FOUND``); the service's error mapping is written against that.
"""
from __future__ import annotations

from . import data
from .messages import Reply, Request

RESULTS_PER_SEARCH = 3
_MAX_RADIUS_M = 50000


def _status(status: str, message: str, *, details: bool = False) -> Reply:
    body: dict = {"html_attributions": [], "status": status, "error_message": message, "sandbox": True}
    if not details:
        body["results"] = []
    return Reply.json(200, body)


def _denied(request: Request, *, details: bool = False) -> Reply | None:
    if request.query.get("key", "").strip():
        return None
    return _status("REQUEST_DENIED", "This sandbox API requires a key parameter (any non-empty value works).",
                   details=details)


def _results(specs: list[data.PlaceSpec], *, text_search: bool) -> Reply:
    results = []
    for spec in specs:
        place = data.place_summary(spec)
        # Text Search answers with formatted_address, Nearby Search with vicinity; mirror that.
        place.pop("vicinity" if text_search else "formatted_address")
        results.append(place)
    return Reply.json(200, {"html_attributions": [], "results": results, "status": "OK", "sandbox": True})


def nearby_search(request: Request) -> Reply:
    denied = _denied(request)
    if denied:
        return denied
    location = request.query.get("location", "")
    if not location:
        return _status("INVALID_REQUEST", "Missing the location parameter.")
    point = data.parse_latlng(location)
    if point is None:
        return _status("INVALID_REQUEST", "Invalid location parameter: expected 'lat,lng'.")
    rank_by_distance = request.query.get("rankby", "") == "distance"
    radius = request.query.get("radius", "")
    if not rank_by_distance:
        if not radius:
            return _status("INVALID_REQUEST", "Missing the radius parameter.")
        try:
            radius_m = float(radius)
        except ValueError:
            radius_m = -1.0
        if not 0 < radius_m <= _MAX_RADIUS_M:
            return _status("INVALID_REQUEST", f"Invalid radius: expected a number of metres up to {_MAX_RADIUS_M}.")
    kind = request.query.get("type", "").strip().lower() or request.query.get("keyword", "").strip().lower()
    kind = kind or "establishment"
    return _results(data.search_specs(kind, *point, RESULTS_PER_SEARCH), text_search=False)


def text_search(request: Request) -> Reply:
    denied = _denied(request)
    if denied:
        return denied
    query = request.query.get("query", "").strip()
    if not query:
        return _status("INVALID_REQUEST", "Missing the query parameter.")
    point = data.parse_latlng(request.query.get("location", "")) or data.point_for_name(query)
    return _results(data.search_specs("q:" + query, *point, RESULTS_PER_SEARCH), text_search=True)


def details(request: Request) -> Reply:
    denied = _denied(request, details=True)
    if denied:
        return denied
    place_id = request.query.get("place_id", "").strip()
    if not place_id:
        return _status("INVALID_REQUEST", "Missing the place_id parameter.", details=True)
    spec = data.PlaceSpec.from_place_id(place_id)
    if spec is None:
        return _status("NOT_FOUND", "No sandbox place has this place_id.", details=True)
    result = data.place_details(spec)
    fields = [f.strip().split("/")[0] for f in request.query.get("fields", "").split(",") if f.strip()]
    if fields:
        result = {key: value for key, value in result.items() if key in fields}
    return Reply.json(200, {"html_attributions": [], "result": result, "status": "OK", "sandbox": True})
