"""The sandbox's stand-in for the model in the bundled emergency-contacts workflow.

The workflow's LLM step receives the Places results embedded in its prompt and must answer in the markdown the
``markdown_to_json`` transform parses (``## Emergency Contacts Analysis`` with ``### <name>`` contacts, then
``## Meeting Locations``). Building the contacts from the place names *in the prompt* means an end-to-end run shows
data flowing from the fake Places API, through the template step and the LLM step, into the parsed result.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from . import data

MAX_PLACE_CONTACTS = 12

_MARKERS = ("emergency contacts analysis", "emergency contact")


@dataclass(frozen=True)
class FoundPlace:
    name: str
    address: str | None = None
    phone: str | None = None
    website: str | None = None
    kind: str = "other"  # hospital | police | fire_station | other


@dataclass(frozen=True)
class _Profile:
    label: str
    category: str
    priority: str
    fit: int
    always_open: bool
    scenarios: str
    why: str


_PROFILES = {
    "hospital": _Profile("hospital", "medical", "critical", 92, True,
                         "medical emergency, natural disaster, pandemic, severe weather",
                         "Nearby hospital with an emergency department; the first stop for serious injury or illness."),
    "police": _Profile("police station", "government", "important", 84, True,
                       "civil unrest, break-in, missing person, evacuation",
                       "Local law enforcement for non-life-threatening incidents and evacuation information."),
    "fire_station": _Profile("fire station", "government", "important", 86, True,
                             "house fire, wildfire, gas leak, rescue",
                             "Closest fire and rescue service; also a source of local hazard guidance."),
    "other": _Profile("local service", "community", "helpful", 70, False,
                      "extended outage, community support",
                      "Local resource found near the household that may help during a longer disruption."),
}

_UNIVERSAL = (
    ("Emergency Services (911)", "911", None, "government", "critical", 100, "yes",
     "The single number for police, fire and ambulance; call first whenever life or property is in danger.",
     "medical emergency, house fire, crime in progress, natural disaster"),
    ("Poison Control Center", "1-800-222-1222", "https://www.poison.org", "medical", "critical", 95, "yes",
     "Free, confidential expert advice for poisonings and chemical exposures, around the clock.",
     "poisoning, chemical exposure, medication error"),
)

_OUTDOOR_SITES = ("Riverside Park", "Veterans Memorial Park", "Central Commons", "Lakeside Green", "Heritage Park")
_INDOOR_SITES = ("Public Library (Main Branch)", "Community Recreation Center", "Civic Center Plaza",
                 "High School Gymnasium")

# A dict with a "name" is a place (or a contact) only with one of these; a weather "location" has none of them.
_PLACE_KEYS = frozenset({"place_id", "vicinity", "formatted_address", "address", "types", "phone",
                         "formatted_phone_number"})
_OPENER = re.compile(r"[\[{]")
_JSON_NAME = r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"'
_REPR_NAME = r"'name'\s*:\s*(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")"


def is_emergency_request(prompt: str) -> bool:
    lowered = prompt.lower()
    return any(marker in lowered for marker in _MARKERS)


def build_markdown(prompt: str) -> str:
    places = extract_places(prompt)[:MAX_PLACE_CONTACTS]
    lines = ["## Emergency Contacts Analysis", ""]
    seen = set()
    for name, phone, website, category, priority, fit, open_247, why, scenarios in _UNIVERSAL:
        seen.add(name.lower())
        lines += _contact(name, phone, None, website, category, priority, fit, why, scenarios, open_247)
    for place in places:
        if place.name.lower() in seen:
            continue
        seen.add(place.name.lower())
        profile = _PROFILES[place.kind]
        phone = place.phone or data.fake_phone(place.name)[0]
        why = f"{profile.why} Listed in the nearby places data provided with the request."
        lines += _contact(place.name, phone, place.address, place.website, profile.category, profile.priority,
                          profile.fit, why, profile.scenarios, "yes" if profile.always_open else "no")
    lines += ["## Meeting Locations", ""]
    lines += _meeting_locations(prompt, places)
    return "\n".join(lines).rstrip() + "\n"


def _contact(name: str, phone: str, address: str | None, website: str | None, category: str, priority: str,
             fit: int, reasoning: str, scenarios: str, open_247: str) -> list[str]:
    lines = [f"### {name}", f"**Phone**: {phone}"]
    if address:
        lines.append(f"**Address**: {address}")
    if website:
        lines.append(f"**Website**: {website}")
    lines += [f"**Category**: {category}", f"**Priority**: {priority}", f"**Fit Score**: {fit}",
              f"**Reasoning**: {reasoning}", f"**Relevant Scenarios**: {scenarios}",
              f"**24/7 Available**: {open_247.capitalize()}", ""]
    return lines


def _meeting_locations(prompt: str, places: list[FoundPlace]) -> list[str]:
    rng = data.rng_for("meeting", prompt)
    addresses = [p.address for p in places if p.address]
    plans = (
        ("Primary", rng.choice(_OUTDOOR_SITES), addresses[0] if addresses else None,
         "Open outdoor space away from buildings and power lines, easy to find from home.",
         "Close enough to reach on foot and safe to gather in after a fire or earthquake.",
         "Free street parking; paved paths are wheelchair accessible.",
         "house fire, earthquake, gas leak"),
        ("Secondary", rng.choice(_INDOOR_SITES), addresses[1] if len(addresses) > 1 else None,
         "Public indoor building that can shelter the household if the neighbourhood must be left.",
         "A well-known landmark outside the immediate area, for when home is unreachable.",
         "Parking lot on site; step-free entrance, accessible restrooms.",
         "evacuation, severe weather, extended power outage"),
    )
    lines: list[str] = []
    for rank, name, near, description, reasoning, practical, suitable in plans:
        address = f"Near {near}" if near else "Pick a specific address close to home and share it with everyone"
        lines += [f"### {rank} Meeting Location: {name}", f"**Address**: {address}",
                  f"**Description**: {description}", f"**Reasoning**: {reasoning}",
                  f"**Practical Details**: {practical}", f"**Suitable For**: {suitable}", ""]
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Finding the places in the prompt
# ---------------------------------------------------------------------------------------------------------------

def extract_places(prompt: str) -> list[FoundPlace]:
    """Places embedded in the prompt: JSON objects with a ``name`` first, else a regex over name/vicinity pairs
    (which also copes with Python-repr dumps and truncated JSON)."""
    found = _from_json(prompt) or _from_regex(prompt)
    unique: dict[str, FoundPlace] = {}
    for place in found:
        unique.setdefault(place.name.lower(), place)
    return list(unique.values())


def _from_json(prompt: str) -> list[FoundPlace]:
    decoder = json.JSONDecoder()
    found: list[FoundPlace] = []
    index = 0
    while True:
        match = _OPENER.search(prompt, index)
        if not match:
            return found
        try:
            value, end = decoder.raw_decode(prompt, match.start())
        except ValueError:
            index = match.start() + 1
            continue
        _walk(value, found)
        index = end


def _walk(value: object, found: list[FoundPlace]) -> None:
    if isinstance(value, list):
        for item in value:
            _walk(item, found)
        return
    if not isinstance(value, dict):
        return
    name = value.get("name")
    if isinstance(name, str) and _clean(name) and _PLACE_KEYS.intersection(value):
        types = value.get("types") if isinstance(value.get("types"), list) else []
        found.append(FoundPlace(
            name=_clean(name),
            address=_clean_opt(value.get("vicinity") or value.get("formatted_address") or value.get("address")),
            phone=_clean_opt(value.get("formatted_phone_number") or value.get("phone")),
            website=_clean_opt(value.get("website")),
            kind=_kind([t for t in types if isinstance(t, str)], name),
        ))
        return
    for item in value.values():
        _walk(item, found)


def _from_regex(prompt: str) -> list[FoundPlace]:
    names = [(m.start(), m.end(), _unescape(next(g for g in m.groups() if g is not None)))
             for m in re.finditer(f"{_JSON_NAME}|{_REPR_NAME}", prompt)]
    found = []
    for i, (_, end, name) in enumerate(names):
        stop = names[i + 1][0] if i + 1 < len(names) else len(prompt)
        segment = prompt[end:stop]
        vicinity = re.search(r"""["']vicinity["']\s*:\s*["']((?:[^"'\\]|\\.)*)["']""", segment)
        if _clean(name) and (vicinity or "place_id" in segment):
            found.append(FoundPlace(name=_clean(name), address=_clean_opt(vicinity and _unescape(vicinity.group(1))),
                                    kind=_kind([], name)))
    return found


def _kind(types: list[str], name: str) -> str:
    for kind in ("hospital", "police", "fire_station"):
        if kind in types:
            return kind
    lowered = name.lower()
    if re.search(r"hospital|medical|clinic|urgent care|health", lowered):
        return "hospital"
    if re.search(r"police|sheriff|patrol|precinct", lowered):
        return "police"
    if "fire" in lowered:
        return "fire_station"
    return "other"


def _unescape(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except ValueError:
        return text


def _clean(text: str) -> str:
    """One line, no markdown control sequences: a stray ``## `` in a name would split the parser's sections."""
    text = re.sub(r"[#*]", "", str(text))
    return re.sub(r"\s+", " ", text).strip()[:120]


def _clean_opt(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _clean(value) or None
