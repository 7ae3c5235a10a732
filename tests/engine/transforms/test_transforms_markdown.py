"""markdown_to_json for the emergency_contacts schema (§10 case 48, §5.11 and the §11.10 parser fixes)."""
import pytest

from llm_service.engine.errors import TransformError
from llm_service.engine.transforms import run_transform

CONTACT_KEYS = ["name", "phone", "address", "website", "category", "priority", "fit_score", "reasoning",
                "relevant_scenarios", "available_24hr"]
MEETING_KEYS = ["name", "address", "description", "reasoning", "priority", "suitable_for", "has_parking",
                "is_accessible"]


def parse(text, **params):
    return run_transform("markdown_to_json", text, {"schema": "emergency_contacts", **params})


SAMPLE = """## Emergency Contacts Analysis

### 911 Emergency Services
**Phone**: 911
**Category**: government
**Priority**: critical
**Fit Score**: 100
**Reasoning**: Police, fire and ambulance dispatch for any life-threatening situation.
**Relevant Scenarios**: natural-disaster, civil-unrest
**24/7 Available**: yes

### County Road Department
**Phone**: +1-555-010-2000
**Category**: utility
**Priority**: helpful
**Fit Score**: 60
**Reasoning**: Reports of blocked or flooded roads.
**24/7 Available**: no

## Meeting Locations

### Primary Meeting Location: City Park
**Address**: 1 Park Ave, Springfield
**Description**: Open lawn next to the bandstand.
**Reasoning**: Open ground away from buildings and power lines.
**Practical Details**: Free parking lot, ADA accessible paths
**Suitable For**: natural-disaster, emp-grid-down

### Secondary Meeting Location: Public Library
**Address**: 20 Main St, Springfield
**Reasoning**: Sturdy building with a generator.
**Suitable For**: pandemic
"""


# -- §10 case 48 ----------------------------------------------------------------------------------------------------
def test_sample_with_two_contacts_and_two_locations():
    result = parse(SAMPLE)
    assert list(result) == ["contacts", "meeting_locations"]
    assert len(result["contacts"]) == 2 and len(result["meeting_locations"]) == 2
    first = result["contacts"][0]
    assert list(first) == CONTACT_KEYS
    assert first == {
        "name": "911 Emergency Services", "phone": "911", "address": None, "website": None,
        "category": "government", "priority": "critical", "fit_score": 100,
        "reasoning": "Police, fire and ambulance dispatch for any life-threatening situation.",
        "relevant_scenarios": ["natural-disaster", "civil-unrest"], "available_24hr": True,
    }
    assert result["contacts"][1]["available_24hr"] is False
    assert result["contacts"][1]["relevant_scenarios"] == []
    park = result["meeting_locations"][0]
    assert list(park) == MEETING_KEYS
    assert park == {
        "name": "City Park", "address": "1 Park Ave, Springfield",
        "description": "Open lawn next to the bandstand.",
        "reasoning": "Open ground away from buildings and power lines.", "priority": "primary",
        "suitable_for": ["natural-disaster", "emp-grid-down"], "has_parking": True, "is_accessible": True,
    }
    library = result["meeting_locations"][1]
    assert library["priority"] == "secondary" and library["name"] == "Public Library"
    # No Description: the reasoning stands in; no Practical Details: parking/accessibility unknown.
    assert library["description"] == "Sturdy building with a generator."
    assert library["has_parking"] is None and library["is_accessible"] is None


def test_incomplete_contact_is_dropped_even_when_lenient():
    text = "## Emergency Contacts Analysis\n\n### Somebody\n**Phone**: 555-0100\n**Category**: community\n"
    assert run_transform("markdown_to_json", text, {"schema": "emergency_contacts"}, lenient=True) == \
        {"contacts": [], "meeting_locations": []}


def test_unknown_schema_is_an_error():
    with pytest.raises(TransformError, match="markdown_to_json failed: Unsupported schema: recipes"):
        run_transform("markdown_to_json", SAMPLE, {"schema": "recipes"})


def test_direct_call_with_source_key():
    one_contact = SAMPLE.split("### County")[0]
    result = parse({"response": one_contact, "other": 1}, source="response")
    assert [c["name"] for c in result["contacts"]] == ["911 Emergency Services"]


def test_input_must_be_a_string():
    with pytest.raises(TransformError, match="Markdown input must be string \\(got a map\\)"):
        parse({"response": SAMPLE})


# -- a realistic answer, written for these tests ----------------------------------------------------------------------
REALISTIC = """Here is the emergency plan for your household in Riverton, OR.

# Riverton Household Plan

## EMERGENCY CONTACTS ANALYSIS

Contacts are ordered by how critical they are for your scenarios.

### Riverton General Hospital
**Phone**: +1-541-555-0142
**Address**: 800 Alder St, Riverton, OR 97001
**Website**: https://riverton-general.example.org
**Category**: medical
**Priority**: critical
**Fit Score**: 95/100
**Reasoning**: Nearest emergency department with a trauma unit. Has its own water supply and backup generators.
**Relevant Scenarios**: natural-disaster, pandemic, , emp-grid-down
**24/7 Available**: Yes

### Riverton Police (non-emergency)
**Phone:** +1-541-555-0199
**Address:** 12 Court Sq, Riverton, OR 97001
**Category:** government
**Priority:** important
**Fit Score:** 85
**Reasoning:** Handles reports that do not need 911, and publishes evacuation orders.
**Relevant Scenarios:** civil-unrest
**24/7 Available:** 24/7 dispatch

### Neighborhood Watch Coordinator
**Phone**:
**Category**: community
**Priority**: helpful
**Reasoning**: A volunteer who keeps the street phone tree.

### Coastal Power Outage Line
**Phone**: +1-800-555-0110
**Website**: https://power.example.com/outages
**Category**: utility
**Priority**: important
**Fit Score**: about 70
**Reasoning**: Report downed lines and get restoration estimates.
**Relevant Scenarios**: emp-grid-down, natural-disaster
**24/7 Available**: weekdays only

#### Notes
Keep the account number next to the phone.

## meeting locations

### Primary Meeting Location: Oak Hill Community Center
**Address**: 300 Oak Hill Rd, Riverton, OR 97002
**Description**: Single-storey brick building on high ground.
**Reasoning**: Above the flood plain and a ten minute walk from home.
**Practical Details**: No parking on site, wheelchair accessible entrance, open 7am-10pm
**Suitable For**: natural-disaster, pandemic

### Secondary Meeting Location - Riverton Public Library
**Address**: 45 Main St, Riverton, OR 97001
**Description**: Downtown library with a covered plaza.
**Reasoning**: Central, well known, and staffed during the day.
**Practical Details**: Street parking but not accessible from the north steps; Canada geese on the lawn
**Suitable For**: civil-unrest

### Tertiary Meeting Location: Cedar Grove Church
**Address**: 9 Cedar Ln, Riverton, OR 97003
**Reasoning**: Outside town, reachable on foot along the river trail if roads are closed.
**Practical Details**: Gravel lot with parking for 40 cars, ADA ramp at the side door
**Suitable For**: emp-grid-down

### Meeting Location Without Address
**Reasoning**: Missing its address, so it must be dropped.
"""


@pytest.fixture(scope="module")
def realistic():
    return parse(REALISTIC)


def test_realistic_contacts(realistic):
    contacts = realistic["contacts"]
    # The Neighborhood Watch contact has an empty phone (and no value may be borrowed from the next line).
    assert [c["name"] for c in contacts] == ["Riverton General Hospital", "Riverton Police (non-emergency)",
                                             "Coastal Power Outage Line"]
    hospital, police, power = contacts
    assert hospital["fit_score"] == 95                                    # fix: 95/100 used to give 80
    assert hospital["relevant_scenarios"] == ["natural-disaster", "pandemic", "emp-grid-down"]
    assert hospital["available_24hr"] is True
    assert hospital["website"] == "https://riverton-general.example.org"
    assert police["phone"] == "+1-541-555-0199"                           # fix: **Phone:** form accepted
    assert police["address"] == "12 Court Sq, Riverton, OR 97001"
    assert police["fit_score"] == 85 and police["available_24hr"] is True
    assert power["fit_score"] == 80 and power["available_24hr"] is False
    assert power["address"] is None
    assert all(list(c) == CONTACT_KEYS for c in contacts)


def test_realistic_meeting_locations(realistic):
    meetings = realistic["meeting_locations"]
    assert [(m["name"], m["priority"]) for m in meetings] == [
        ("Oak Hill Community Center", "primary"),
        ("Riverton Public Library", "secondary"),
        ("Cedar Grove Church", "tertiary"),
    ]
    center, library, church = meetings
    assert center["has_parking"] is False                              # fix: "No parking" used to count as parking
    assert center["is_accessible"] is True
    assert library["has_parking"] is True
    assert library["is_accessible"] is False                          # fix: "not accessible", "Canada"
    assert church["has_parking"] is True and church["is_accessible"] is True
    assert church["description"] == church["reasoning"]
    assert all(list(m) == MEETING_KEYS for m in meetings)


# -- one test per parser fix ------------------------------------------------------------------------------------------
CONTACT_BODY = "**Phone**: 1\n**Category**: c\n**Priority**: p\n**Reasoning**: r\n"


@pytest.mark.parametrize("header", ["## Emergency Contacts Analysis", "## emergency contacts analysis",
                                    "## Emergency Contacts", "## **Emergency Contacts Analysis**",
                                    "# Emergency Contacts"])
def test_contact_section_headers(header):
    # Fix §11.10: header matching was case-sensitive and required "Analysis".
    result = parse(f"{header}\n\n### Someone\n{CONTACT_BODY}")
    assert [c["name"] for c in result["contacts"]] == ["Someone"]


def test_items_before_any_recognised_section_are_ignored():
    assert parse(f"## Intro\n\n### Someone\n{CONTACT_BODY}")["contacts"] == []


def test_items_are_split_by_heading_lines_only():
    # Fix §11.10: the old parser split on "## " anywhere, including inside a line.
    text = ("## Emergency Contacts\n\n### Hotline\n**Phone**: 1\n**Category**: c\n**Priority**: p\n"
            "**Reasoning**: dial 1 then ## then the extension\n")
    contact = parse(text)["contacts"][0]
    assert contact["name"] == "Hotline"
    assert contact["reasoning"] == "dial 1 then ## then the extension"


def test_field_value_never_comes_from_the_next_line():
    # Fix §11.10: an empty "**Phone**:" used to take "**Category**: c" as the phone number.
    text = "## Emergency Contacts\n\n### A\n**Phone**:\n**Category**: c\n**Priority**: p\n**Reasoning**: r\n"
    assert parse(text)["contacts"] == []
    text = "## Emergency Contacts\n\n### A\n" + CONTACT_BODY + "**Website**:   \n**Address**: x\n"
    contact = parse(text)["contacts"][0]
    assert contact["website"] is None and contact["address"] == "x"


def test_colon_inside_the_bold_is_accepted():
    text = "## Emergency Contacts\n\n### A\n**Phone:** 1\n**Category:** c\n**Priority:**p\n**Reasoning :** r\n"
    contact = parse(text)["contacts"][0]
    assert (contact["phone"], contact["category"], contact["priority"], contact["reasoning"]) == ("1", "c", "p", "r")


@pytest.mark.parametrize("value, expected", [("95", 95), ("95/100", 95), ("88%", 88), ("150", 100), ("-5", 0),
                                             ("high", 80), ("", 80)])
def test_fit_score(value, expected):
    # Fix §11.10: anything that was not all digits silently became 80.
    contact = parse(f"## Emergency Contacts\n\n### A\n{CONTACT_BODY}**Fit Score**: {value}\n")["contacts"][0]
    assert contact["fit_score"] == expected


@pytest.mark.parametrize("value, expected", [("yes", True), ("YES", True), ("24/7", True), ("true", True),
                                             ("Yes, via the hotline", True), ("no", False),
                                             ("business hours", False), ("yesterday only", False)])
def test_available_24hr(value, expected):
    contact = parse(f"## Emergency Contacts\n\n### A\n{CONTACT_BODY}**24/7 Available**: {value}\n")["contacts"][0]
    assert contact["available_24hr"] is expected


def test_available_24hr_is_null_when_absent():
    assert parse(f"## Emergency Contacts\n\n### A\n{CONTACT_BODY}")["contacts"][0]["available_24hr"] is None


def meeting(details):
    text = f"## Meeting Locations\n\n### Spot\n**Address**: a\n**Reasoning**: r\n**Practical Details**: {details}\n"
    return parse(text)["meeting_locations"][0]


@pytest.mark.parametrize("details, expected", [
    ("Large parking lot", True),
    ("No parking", False),
    ("no parking available", False),
    ("Parking: none", False),
    ("parking not available after 6pm", False),
    ("No street parking, garage parking next door", True),
    ("Benches and toilets", False),
])
def test_has_parking(details, expected):
    assert meeting(details)["has_parking"] is expected


@pytest.mark.parametrize("details, expected", [
    ("ADA accessible", True),
    ("Wheelchair-accessible ramp", True),
    ("Step-free, ADA compliant", True),
    ("not accessible by wheelchair", False),
    ("Inaccessible in winter", False),
    ("Canada geese nest here", False),
    ("Ada Lovelace memorial bench", False),
])
def test_is_accessible(details, expected):
    assert meeting(details)["is_accessible"] is expected


@pytest.mark.parametrize("heading, name, priority", [
    ("Primary Meeting Location: City Park", "City Park", "primary"),
    ("secondary meeting location: Library", "Library", "secondary"),
    ("Tertiary Meeting Location - Hill", "Hill", "tertiary"),
    ("Secondary Meeting Location: Primary School Gym", "Primary School Gym", "secondary"),
    ("Secondary (primary backup)", "Secondary (primary backup)", "secondary"),
    ("Town Square", "Town Square", "primary"),
])
def test_meeting_location_heading(heading, name, priority):
    text = f"## Meeting Locations\n\n### {heading}\n**Address**: a\n**Reasoning**: r\n"
    location = parse(text)["meeting_locations"][0]
    assert (location["name"], location["priority"]) == (name, priority)


def test_meeting_location_without_name_address_or_reasoning_is_dropped():
    text = ("## Meeting Locations\n\n### Primary Meeting Location:\n**Address**: a\n**Reasoning**: r\n"
            "### Park\n**Address**: a\n### Square\n**Reasoning**: r\n")
    assert parse(text)["meeting_locations"] == []
