"""markdown_to_json: turns the LLM's markdown answer into the structure the client app stores.

Only the ``emergency_contacts`` schema exists. Its output (field names and key order) is a contract with the
client app and is kept exactly; the parser underneath is rewritten to read the document line by line:

* ``#``/``##`` headings are sections: one starting with "Emergency Contacts" (e.g. "Emergency Contacts
  Analysis") opens the contacts, one starting with "Meeting Location" opens the meeting locations (any case,
  surrounding ``**`` ignored). Other section headings keep the current section, so items grouped under
  sub-headings are still found. Text before the first recognised section is ignored.
* ``###`` headings are items; an item's body runs to the next heading of level 1-3 (deeper headings are body).
* A field is ``**Label**: value`` or ``**Label:** value``, first occurrence in the item, value from the same
  line only; an empty value means the field is absent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from . import paths
from .common import OperationError, kind_of
from .params import ParamChecker

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*$")
_SEPARATORS = " \t:-\u2013\u2014"


@dataclass
class _Item:
    heading: str
    lines: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


def _section_of(title: str) -> str | None:
    plain = title.strip().strip("*_").strip().lower()
    if plain.startswith("emergency contacts"):
        return "contacts"
    if plain.startswith("meeting location"):
        return "meetings"
    return None


def _items_by_section(text: str) -> dict[str, list[_Item]]:
    found: dict[str, list[_Item]] = {"contacts": [], "meetings": []}
    section: str | None = None
    current: _Item | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) <= 2:
            current = None
            section = _section_of(heading.group(2)) or section
            continue
        if heading and len(heading.group(1)) == 3:
            current = _Item(heading.group(2).strip())
            if section is not None:
                found[section].append(current)
            continue
        if current is not None:
            current.lines.append(line)
    return found


# ------------------------------------------------------------------------------------------------------ field values
@lru_cache(maxsize=None)
def _field_pattern(label: str) -> re.Pattern:
    words = r"[ \t]+".join(re.escape(word) for word in label.split())
    # **Label**: v  |  **Label** v  |  **Label:** v   -- the value never continues onto the next line.
    return re.compile(rf"\*\*[ \t]*{words}[ \t]*(?:\*\*[ \t]*:?|:[ \t]*\*\*)[ \t]*(.*)$",
                      re.IGNORECASE | re.MULTILINE)


def _field(item: _Item, label: str) -> str | None:
    match = _field_pattern(label).search(item.body)
    value = match.group(1).strip() if match else ""
    return value or None


def _split_list(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def _fit_score(value: str | None) -> int:
    """The leading integer (``95``, ``95/100``, ``95%``) clamped to 0-100; 80 when there is none."""
    match = re.match(r"[+-]?\d+", value or "")
    return min(100, max(0, int(match.group(0)))) if match else 80


def _around_the_clock(value: str | None) -> bool | None:
    if value is None:
        return None
    return re.match(r"(?:yes|true|24/7)\b", value.strip().lower()) is not None


_CLAUSE_BREAK = re.compile(r"[,;.\n]|\bbut\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:no|not|non|without|none|unavailable|lacks?|lacking)\b|n't\b", re.IGNORECASE)
_PARKING = re.compile(r"\bparking\b", re.IGNORECASE)
_ACCESSIBLE = re.compile(r"(?i:\baccessible\b)|\bADA\b")


def _mentions(details: str | None, word: re.Pattern) -> bool | None:
    """Whether some clause of ``details`` mentions ``word`` without negating it ("No parking" is no parking)."""
    if details is None:
        return None
    return any(word.search(clause) and not _NEGATION.search(clause) for clause in _CLAUSE_BREAK.split(details))


# ---------------------------------------------------------------------------------------------------------- records
_CONTACT_REQUIRED = ("name", "phone", "category", "priority", "reasoning")
_MEETING_PREFIX = re.compile(r"\b(primary|secondary|tertiary)[ \t]+meeting[ \t]+location\b", re.IGNORECASE)
_PRIORITY_WORD = re.compile(r"\b(primary|secondary|tertiary)\b", re.IGNORECASE)


def _contact(item: _Item) -> dict[str, Any] | None:
    contact = {
        "name": item.heading,
        "phone": _field(item, "Phone"),
        "address": _field(item, "Address"),
        "website": _field(item, "Website"),
        "category": _field(item, "Category"),
        "priority": _field(item, "Priority"),
        "fit_score": _fit_score(_field(item, "Fit Score")),
        "reasoning": _field(item, "Reasoning"),
        "relevant_scenarios": _split_list(_field(item, "Relevant Scenarios")),
        "available_24hr": _around_the_clock(_field(item, "24/7 Available")),
    }
    return contact if all(contact[key] for key in _CONTACT_REQUIRED) else None


def _meeting_heading(heading: str) -> tuple[str, str]:
    """``Secondary Meeting Location: Library`` -> ``("Library", "secondary")``."""
    prefix = _MEETING_PREFIX.search(heading)
    if prefix:
        name = heading[:prefix.start()] + heading[prefix.end():]
        return name.strip(_SEPARATORS), prefix.group(1).lower()
    word = _PRIORITY_WORD.search(heading)
    return heading.strip(), word.group(1).lower() if word else "primary"


def _meeting_location(item: _Item) -> dict[str, Any] | None:
    name, priority = _meeting_heading(item.heading)
    address, reasoning = _field(item, "Address"), _field(item, "Reasoning")
    if not (name and address and reasoning):
        return None
    details = _field(item, "Practical Details")
    return {
        "name": name,
        "address": address,
        "description": _field(item, "Description") or reasoning,
        "reasoning": reasoning,
        "priority": priority,
        "suitable_for": _split_list(_field(item, "Suitable For")),
        "has_parking": _mentions(details, _PARKING),
        "is_accessible": _mentions(details, _ACCESSIBLE),
    }


def parse_emergency_contacts(text: str) -> dict[str, list[dict[str, Any]]]:
    """Items missing a required field are dropped, not reported: a partial answer is still useful."""
    items = _items_by_section(text)
    contacts = [record for record in map(_contact, items["contacts"]) if record]
    meetings = [record for record in map(_meeting_location, items["meetings"]) if record]
    return {"contacts": contacts, "meeting_locations": meetings}


SCHEMAS: dict[str, Callable[[str], Any]] = {"emergency_contacts": parse_emergency_contacts}


# ------------------------------------------------------------------------------------------------------- operation
def check_markdown_to_json(c: ParamChecker) -> None:
    allowed = ", ".join(SCHEMAS)
    schema = c.text("schema", required=True, hint=f"the schema name ({allowed})")
    if schema is not None and schema not in SCHEMAS:
        c.fail(f"Unsupported schema: {schema} (supported: {allowed})")


def run_markdown_to_json(data: Any, params: Mapping[str, Any], lenient: bool) -> Any:
    data = paths.select_source(data, params.get("source"))
    if not isinstance(data, str):
        raise OperationError(f"Markdown input must be string (got {kind_of(data)})")
    return SCHEMAS[params["schema"]](data)
