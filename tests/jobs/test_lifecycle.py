"""The job lifecycle's facts have one home (``llm_service.jobs.lifecycle``); the Lua scripts spell them too."""
from __future__ import annotations

import re

from llm_service.jobs import lua
from llm_service.jobs.lifecycle import STATUSES, TERMINAL_STATUSES, WEBHOOK_EVENTS, canonical_uuid


def test_the_lua_scripts_know_the_same_statuses_and_final_ones():
    scripts = "\n".join(value for name, value in vars(lua).items() if isinstance(value, str) and name.isupper())
    for listed in re.findall(r"local STATUSES = \{([^}]*)\}", scripts):
        assert tuple(re.findall(r"'(\w+)'", listed)) == STATUSES
    terminal = re.findall(r"local TERMINAL = \{([^}]*)\}", scripts)
    assert terminal and all(set(re.findall(r"(\w+) = true", t)) == TERMINAL_STATUSES for t in terminal)
    assert set(WEBHOOK_EVENTS) == set(TERMINAL_STATUSES)


def test_job_ids_are_canonical_uuids():
    assert canonical_uuid("{3F0C2A9E-8D4B-4F6A-9C1E-2B7D5E8A1C40}") == "3f0c2a9e-8d4b-4f6a-9c1e-2b7d5e8a1c40"
    assert canonical_uuid("not-a-uuid") is None and canonical_uuid(None) is None
