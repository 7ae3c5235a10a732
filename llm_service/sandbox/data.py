"""Deterministic fake world data shared by the fake WeatherAPI, Places and chat endpoints.

Everything here is a pure function of its inputs (seeded by a SHA-256 of them), so a cache test, a benchmark and a
newcomer's ``make dev`` run all see the same town, the same hospitals and the same phone numbers for the same
coordinates. The weather and the Places endpoints share :func:`town_for`, so a workflow that asks both about one
spot gets one consistent (fictional) town.

All phone numbers use the 555-01xx block reserved for fiction; all websites live under ``example.org``.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import random
import re
from dataclasses import dataclass

# Fixed clock for anything that would otherwise be "now": same request, same response (2025-06-01T12:00:00Z).
SANDBOX_EPOCH = 1748779200

REGION = "Sandbox County"
COUNTRY = "United States of America"

_TOWN_HEADS = ("Alder", "Birch", "Cedar", "Elm", "Juniper", "Maple", "Willow", "Aspen", "Hazel", "Linden", "Rowan",
               "Spruce", "Tamarack", "Hawthorn", "Larch", "Sycamore")
_TOWN_TAILS = ("brook", "field", "ford", "haven", "ridge", "ton", "vale", "wood", " Springs", " Crossing",
               " Heights", " Harbor", " Landing", " Falls")
_STREETS = ("Oak", "Pine", "Main", "Church", "Mill", "Lake", "Hill", "Park", "Washington", "Union", "River",
            "Meadow", "Orchard", "Station", "Bridge", "Chestnut")
_STREET_KINDS = ("Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Way")
_DIRECTIONS = ("North", "South", "East", "West")
_SAINTS = ("Agnes", "Brendan", "Clare", "Dominic", "Elizabeth", "Francis", "Gabriel", "Helena", "Jude", "Luke")

# Name templates per Places type; {town}, {dir}, {saint}, {n}, {label} are filled deterministically.
_NAME_TEMPLATES: dict[str, tuple[str, ...]] = {
    "hospital": ("{town} General Hospital", "{town} Regional Medical Center", "St. {saint} Hospital",
                 "{dir} {town} Emergency & Urgent Care", "Sandbox County Memorial Hospital"),
    "police": ("{town} Police Department", "{town} Police - {dir} Precinct", "Sandbox County Sheriff's Office",
               "State Highway Patrol - {town} Post"),
    "fire_station": ("{town} Fire Station {n}", "{town} Fire Department Headquarters",
                     "{dir} {town} Volunteer Fire Company", "Sandbox County Fire Rescue Station {n}"),
}
_GENERIC_TEMPLATES = ("{town} {label}", "{label} of {town}", "{dir} {town} {label}", "{label} on {street}")
# Services that answer around the clock in the fake world.
ALWAYS_OPEN_TYPES = frozenset({"hospital", "police", "fire_station"})


def rng_for(*parts: object) -> random.Random:
    """A private RNG seeded from the parts; stable across runs, processes and Python versions."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def parse_latlng(text: str) -> tuple[float, float] | None:
    """``"lat,lng"`` -> floats, or None when it is not a coordinate pair inside the valid ranges."""
    parts = [p.strip() for p in (text or "").split(",")]
    if len(parts) != 2:
        return None
    try:
        lat, lng = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return None
    return lat, lng


def point_for_name(name: str) -> tuple[float, float]:
    """Stable coordinates (inside the contiguous US box) for a place name or free-text query."""
    rng = rng_for("point", name.strip().lower())
    return round(rng.uniform(26.0, 48.0), 4), round(rng.uniform(-123.0, -71.0), 4)


def town_for(lat: float, lng: float) -> str:
    """The fictional town at a spot; ~1 km cells so nearby queries agree."""
    rng = rng_for("town", round(lat, 2), round(lng, 2))
    return rng.choice(_TOWN_HEADS) + rng.choice(_TOWN_TAILS)


def street_address(rng: random.Random) -> str:
    return f"{rng.randint(100, 9899)} {rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}"


def fake_phone(name: str) -> tuple[str, str]:
    """(national, international) numbers for a name, in the fictional 555-01xx block."""
    rng = rng_for("phone", name)
    area = rng.randint(201, 989)
    if area % 100 == 11:  # N11 codes are service codes, not area codes
        area += 1
    line = rng.randint(100, 199)
    return f"({area}) 555-0{line}", f"+1 {area}-555-0{line}"


def fake_website(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "place"
    return f"https://sandbox.example.org/places/{slug[:60]}"


# ---------------------------------------------------------------------------------------------------------------
# Places
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlaceSpec:
    """What identifies a fake place: the search it came from. Encoded into ``place_id`` so details are stateless."""
    kind: str  # a Places type ("hospital"), or "q:<text query>"
    lat: float
    lng: float
    index: int

    @property
    def place_id(self) -> str:
        raw = f"{self.kind}|{self.lat:.4f}|{self.lng:.4f}|{self.index}".encode("utf-8")
        return "sbx_" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def from_place_id(cls, place_id: str) -> "PlaceSpec | None":
        if not place_id.startswith("sbx_"):
            return None
        token = place_id[4:]
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
            kind, lat, lng, index = raw.rsplit("|", 3)
            return cls(kind, float(lat), float(lng), int(index))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None


def search_specs(kind: str, lat: float, lng: float, count: int = 3) -> list[PlaceSpec]:
    return [PlaceSpec(kind, round(lat, 4), round(lng, 4), i) for i in range(count)]


def _label_for(kind: str) -> str:
    text = kind[2:] if kind.startswith("q:") else kind.replace("_", " ")
    text = re.sub(r"\s+", " ", text).strip()[:40]
    return text.title() or "Place"


def place_name(spec: PlaceSpec) -> str:
    """Distinct, plausible names for the three results of one search (hospitals sound like hospitals)."""
    town = town_for(spec.lat, spec.lng)
    rng = rng_for("names", spec.kind, spec.lat, spec.lng)
    templates = _NAME_TEMPLATES.get(spec.kind, _GENERIC_TEMPLATES)
    order = rng.sample(range(len(templates)), len(templates))
    template = templates[order[spec.index % len(templates)]]
    fill = rng_for("fill", spec.kind, spec.lat, spec.lng, spec.index)
    name = template.format(town=town, dir=fill.choice(_DIRECTIONS), saint=fill.choice(_SAINTS),
                           n=spec.index + fill.randint(1, 9), label=_label_for(spec.kind),
                           street=f"{fill.choice(_STREETS)} {fill.choice(_STREET_KINDS)}")
    if spec.index >= len(templates):  # more results than templates: keep names unique
        name = f"{name} ({spec.index + 1})"
    return name


def place_types(spec: PlaceSpec) -> list[str]:
    if spec.kind.startswith("q:"):
        return ["point_of_interest", "establishment"]
    extra = ["health"] if spec.kind == "hospital" else []
    return [spec.kind, *extra, "point_of_interest", "establishment"]


def place_summary(spec: PlaceSpec) -> dict:
    """The Nearby/Text Search result object (legacy Places Web Service field names)."""
    rng = rng_for("place", spec.kind, spec.lat, spec.lng, spec.index)
    town = town_for(spec.lat, spec.lng)
    street = street_address(rng)
    lat = round(spec.lat + rng.uniform(-0.03, 0.03), 7)
    lng = round(spec.lng + rng.uniform(-0.03, 0.03), 7)
    always_open = spec.kind in ALWAYS_OPEN_TYPES
    return {
        "business_status": "OPERATIONAL",
        "formatted_address": f"{street}, {town}, SB 0{rng.randint(1000, 9999)}, USA",
        "geometry": {
            "location": {"lat": lat, "lng": lng},
            "viewport": {
                "northeast": {"lat": round(lat + 0.0013, 7), "lng": round(lng + 0.0013, 7)},
                "southwest": {"lat": round(lat - 0.0013, 7), "lng": round(lng - 0.0013, 7)},
            },
        },
        "name": place_name(spec),
        "opening_hours": {"open_now": always_open or rng.random() < 0.7},
        "place_id": spec.place_id,
        "rating": round(rng.uniform(3.2, 4.9), 1),
        "types": place_types(spec),
        "user_ratings_total": rng.randint(12, 2400),
        "vicinity": f"{street}, {town}",
    }


def place_details(spec: PlaceSpec) -> dict:
    """The Place Details result: the summary plus contact fields."""
    summary = place_summary(spec)
    national, international = fake_phone(summary["name"])
    always_open = spec.kind in ALWAYS_OPEN_TYPES
    hours = ["Open 24 hours"] * 7 if always_open else ["8:00 AM - 6:00 PM"] * 5 + ["9:00 AM - 1:00 PM", "Closed"]
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    details = {key: value for key, value in summary.items() if key != "opening_hours"}
    details.update({
        "formatted_phone_number": national,
        "international_phone_number": international,
        "opening_hours": {"open_now": summary["opening_hours"]["open_now"],
                          "weekday_text": [f"{day}: {text}" for day, text in zip(days, hours)]},
        "url": f"https://maps.example.org/?cid={spec.place_id}",
        "utc_offset": utc_offset_hours(spec.lng) * 60,
        "website": fake_website(summary["name"]),
    })
    return details


# ---------------------------------------------------------------------------------------------------------------
# Weather
# ---------------------------------------------------------------------------------------------------------------

# (WeatherAPI condition code, text, icon number)
_CONDITIONS = (
    (1000, "Sunny", 113), (1003, "Partly cloudy", 116), (1006, "Cloudy", 119), (1009, "Overcast", 122),
    (1030, "Mist", 143), (1063, "Patchy rain possible", 176), (1183, "Light rain", 296),
    (1195, "Heavy rain", 308), (1087, "Thundery outbreaks possible", 200),
)
_SNOW = (1213, "Light snow", 326)
_WIND_DIRS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")


def utc_offset_hours(lng: float) -> int:
    return max(-12, min(14, round(lng / 15)))


def current_weather(lat: float, lng: float, name: str | None = None, aqi: bool = False) -> dict:
    """A WeatherAPI ``current.json`` body; colder towards the poles, otherwise seeded noise."""
    rng = rng_for("weather", round(lat, 2), round(lng, 2))
    offset = utc_offset_hours(lng)
    local_epoch = SANDBOX_EPOCH + offset * 3600
    local = _format_local(local_epoch)
    temp_c = round(29.0 - abs(lat) * 0.45 + rng.uniform(-6.0, 6.0), 1)
    code, text, icon = _SNOW if temp_c < 0 else rng.choice(_CONDITIONS)
    wind_kph = round(rng.uniform(0.0, 38.0), 1)
    gust_kph = round(wind_kph * rng.uniform(1.1, 1.8), 1)
    wind_degree = rng.randint(0, 359)
    pressure_mb = float(rng.randint(995, 1032))
    precip_mm = 0.0 if code < 1063 else round(rng.uniform(0.1, 12.0), 1)
    humidity = rng.randint(25, 98)
    feels_c = round(temp_c - wind_kph / 20.0, 1)
    vis_km = round(rng.uniform(2.0, 10.0), 1)
    is_day = 1 if 6 <= ((12 + offset) % 24) < 20 else 0
    current = {
        "last_updated_epoch": SANDBOX_EPOCH,
        "last_updated": local,
        "temp_c": temp_c,
        "temp_f": _c_to_f(temp_c),
        "is_day": is_day,
        "condition": {"text": text, "icon": f"//cdn.weatherapi.com/weather/64x64/{'day' if is_day else 'night'}/"
                                             f"{icon}.png", "code": code},
        "wind_mph": _kph_to_mph(wind_kph),
        "wind_kph": wind_kph,
        "wind_degree": wind_degree,
        "wind_dir": _WIND_DIRS[int((wind_degree + 11.25) // 22.5) % 16],
        "pressure_mb": pressure_mb,
        "pressure_in": round(pressure_mb * 0.02953, 2),
        "precip_mm": precip_mm,
        "precip_in": round(precip_mm / 25.4, 2),
        "humidity": humidity,
        "cloud": rng.randint(0, 100),
        "feelslike_c": feels_c,
        "feelslike_f": _c_to_f(feels_c),
        "vis_km": vis_km,
        "vis_miles": round(vis_km * 0.621371, 1),
        "uv": round(rng.uniform(0.0, 9.0), 1) if is_day else 0.0,
        "gust_mph": _kph_to_mph(gust_kph),
        "gust_kph": gust_kph,
    }
    if aqi:
        current["air_quality"] = {
            "co": round(rng.uniform(150.0, 500.0), 1), "no2": round(rng.uniform(1.0, 40.0), 1),
            "o3": round(rng.uniform(20.0, 120.0), 1), "so2": round(rng.uniform(0.5, 15.0), 1),
            "pm2_5": round(rng.uniform(2.0, 45.0), 1), "pm10": round(rng.uniform(5.0, 70.0), 1),
            "us-epa-index": rng.randint(1, 3), "gb-defra-index": rng.randint(1, 4),
        }
    return {
        "location": {
            "name": name or town_for(lat, lng),
            "region": REGION,
            "country": COUNTRY,
            "lat": round(lat, 2),
            "lon": round(lng, 2),
            "tz_id": _tz_id(offset),
            "localtime_epoch": SANDBOX_EPOCH,
            "localtime": local,
        },
        "current": current,
        "sandbox": True,
    }


def _format_local(epoch: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return f"{moment:%Y-%m-%d} {moment.hour}:{moment:%M}"  # WeatherAPI does not zero-pad the hour


def _tz_id(offset: int) -> str:
    # IANA "Etc/GMT" zones have inverted signs: Etc/GMT+5 is UTC-5.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _c_to_f(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 1)


def _kph_to_mph(kph: float) -> float:
    return round(kph * 0.621371, 1)
