"""Prompt templates: loading, ``{{include:...}}`` expansion, ``${var}`` substitution, and a cache that notices edits.

Includes resolve relative to the file that contains them and may never leave the prompts root. Unlike the old
loader, which silently left a broken directive in the text sent to the model, a missing, circular, too-deep or
out-of-root include is an error of the step (CONFIG_ERROR) and ``validate`` reports it. ``{{var}}`` placeholders
are left alone on purpose: the existing prompt files contain many that were never substituted, and changing that
would change what the model is asked.
"""
from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

from .errors import PromptError, ReferenceError_
from .references import PLACEHOLDER, lookup, to_text

INCLUDE = re.compile(r"\{\{include:([^}]+)\}\}")


class PromptLoader:
    """Loads and expands prompt files below ``root``. Safe to share between threads and jobs."""

    def __init__(self, root: str | os.PathLike, *, max_depth: int = 10, capacity: int = 128) -> None:
        self.root = Path(root).resolve()
        self.max_depth = max_depth
        self.capacity = capacity
        self._cache: OrderedDict[Path, tuple[str, tuple[tuple[Path, int, int], ...]]] = OrderedDict()
        self._lock = threading.Lock()

    # -- public -------------------------------------------------------------------------------------------------

    def load(self, template: str) -> str:
        """The template's text with every include expanded. Raises PromptError saying which file is wrong."""
        path = self.resolve(template)
        cached = self._cached(path)
        if cached is not None:
            return cached
        deps: list[Path] = []
        text = self._expand(path, chain=(path,), deps=deps, depth=0)
        self._store(path, text, deps)
        return text

    def resolve(self, template: str) -> Path:
        """The absolute path of a template given relative to the prompts root; refuses to leave the root."""
        candidate = _resolved(self.root, template, details={"template": template})
        if not _inside(candidate, self.root):
            raise PromptError(f"Path outside base directory: {template}", details={"template": template})
        return candidate

    def problems(self, template: str) -> list[str]:
        """What ``validate`` reports for a template: an empty list when it loads cleanly."""
        try:
            self.load(template)
        except PromptError as exc:
            return [str(exc)]
        return []

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def stats(self) -> dict:
        with self._lock:
            size = len(self._cache)
        return {"size": size, "max_size": self.capacity, "usage_percent": size * 100 // self.capacity}

    # -- expansion ----------------------------------------------------------------------------------------------

    def _expand(self, path: Path, *, chain: tuple[Path, ...], deps: list[Path], depth: int) -> str:
        text = self._read(path, chain)
        deps.append(path)

        def replace(match: re.Match) -> str:
            target_text = match.group(1).strip()
            where = self._rel(path)
            target = _resolved(path.parent, target_text, details={"include": target_text, "file": where})
            if not _inside(target, self.root):
                raise PromptError(f"Include '{target_text}' in {where} is outside the prompts directory",
                                  details={"include": target_text, "file": where})
            if target in chain:
                cycle = " -> ".join(self._rel(p) for p in (*chain, target))
                raise PromptError(f"Circular include: {cycle}", details={"include": target_text, "file": where})
            if depth + 1 > self.max_depth:
                raise PromptError(f"Includes nested deeper than {self.max_depth} levels at {where}",
                                  details={"include": target_text, "file": where})
            if not target.is_file():
                raise PromptError(f"Include '{target_text}' in {where} not found",
                                  details={"include": target_text, "file": where})
            return self._expand(target, chain=(*chain, target), deps=deps, depth=depth + 1)

        return INCLUDE.sub(replace, text)

    def _read(self, path: Path, chain: tuple[Path, ...]) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PromptError(f"Prompt file not found: {self._rel(path)}",
                              details={"template": self._rel(path)}) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PromptError(f"Failed to read prompt file: {self._rel(path)} ({type(exc).__name__})",
                              details={"template": self._rel(path)}) from None

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return path.name

    # -- cache --------------------------------------------------------------------------------------------------

    def _cached(self, path: Path) -> str | None:
        with self._lock:
            entry = self._cache.get(path)
            if entry is None:
                return None
            self._cache.move_to_end(path)
        text, deps = entry
        for dep, mtime, size in deps:
            try:
                stat = dep.stat()
            except OSError:
                return None
            if (stat.st_mtime_ns, stat.st_size) != (mtime, size):
                return None
        return text

    def _store(self, path: Path, text: str, deps: list[Path]) -> None:
        stamps = []
        for dep in dict.fromkeys(deps):
            stat = dep.stat()
            stamps.append((dep, stat.st_mtime_ns, stat.st_size))
        with self._lock:
            self._cache[path] = (text, tuple(stamps))
            self._cache.move_to_end(path)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)


def render_prompt(text: str, variables: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Substitute ``${name}`` / ``${name.path[0]}`` from the step's resolved variables, in one pass.

    Returns the text and a warning per placeholder left verbatim because no variable matched.
    """
    warnings: list[str] = []

    def replace(match: re.Match) -> str:
        path = match.group(1)
        try:
            return to_text(lookup(variables, path))
        except ReferenceError_:
            warnings.append(f"prompt placeholder {match.group(0)} has no matching variable; left as is")
            return match.group(0)

    return PLACEHOLDER.sub(replace, text), warnings


def _resolved(base: Path, text: str, *, details: dict) -> Path:
    """``base / text`` resolved. A path that cannot even be looked up (a NUL byte, a symlink loop, which
    ``Path.resolve`` reports as RuntimeError) is a PromptError of the step like any other bad path, not a crash of
    the run or of ``validate``."""
    try:
        return (base / text).resolve()
    except (ValueError, OSError, RuntimeError) as exc:
        raise PromptError(f"Invalid prompt path {text!r}: {unresolvable_reason(exc)}", details=details) from None


def unresolvable_reason(exc: BaseException) -> str:
    """Why ``Path.resolve`` failed, in a few words and without the absolute path it may mention."""
    if isinstance(exc, RuntimeError):
        return "symlink loop"
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return str(exc)  # ValueError: "embedded null byte"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
