"""Fake WeatherAPI ``current.json`` (the only operation the service calls).

Errors follow WeatherAPI's shape, ``{"error": {"code", "message"}}`` with 401 for a missing key and 400 for a bad
``q``, because the service maps exactly those statuses to its own messages.
"""
from __future__ import annotations

import re

from . import data
from .messages import Reply, Request

# Free-text locations ("London", "Springfield, IL") are accepted; anything else that is not a coordinate pair is not.
_PLACE_NAME = re.compile(r"^[^\W\d_][\w .,'-]{0,79}$")


def _error(status: int, code: int, message: str) -> Reply:
    return Reply.json(status, {"error": {"code": code, "message": message}, "sandbox": True})


def current(request: Request) -> Reply:
    if not request.query.get("key", "").strip():
        return _error(401, 1002, "API key not provided. (The sandbox accepts any non-empty key.)")
    q = request.query.get("q", "").strip()
    if not q:
        return _error(400, 1003, "Parameter q is missing.")
    point = data.parse_latlng(q)
    name = None
    if point is None:
        if not _PLACE_NAME.match(q):
            return _error(400, 1006, "No matching location found.")
        point = data.point_for_name(q)
        name = q.split(",")[0].strip().title()
    aqi = request.query.get("aqi", "no").strip().lower() == "yes"
    return Reply.json(200, data.current_weather(point[0], point[1], name=name, aqi=aqi))
