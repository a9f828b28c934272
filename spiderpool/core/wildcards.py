"""Wildcard pool names with Go's ``path/filepath.Match`` semantics, as upstream expands them.

``*`` matches any run of characters except ``/``, ``?`` one such character, ``[...]`` a class (``[^...]`` negated,
``a-z`` ranges, ``\\`` escapes); a malformed pattern is an error, never a silent non-match. Python's ``fnmatch``
differs (``[!...]``, no escapes, ``*`` crossing ``/``), hence this translation to a regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


class BadPatternError(ValueError):
    """The pattern is malformed (Go's ``filepath.ErrBadPattern``)."""


def has_wildcard(name: str) -> bool:
    """Upstream's ``HasWildcardInStr``: ``*``, ``?``, or both ``[`` and ``]``."""
    return "*" in name or "?" in name or ("[" in name and "]" in name)


def _escaped_char(pattern: str, index: int) -> tuple[str, int]:
    """Go's ``getEsc``: one class character (possibly escaped) at ``index`` and the index after it."""
    if index >= len(pattern) or pattern[index] in "-]":
        raise BadPatternError(f"malformed character class in {pattern!r}")
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            raise BadPatternError(f"trailing escape in {pattern!r}")
    if index + 1 >= len(pattern):
        raise BadPatternError(f"unclosed character class in {pattern!r}")
    return pattern[index], index + 1


def _character_class(pattern: str, index: int) -> tuple[str, int]:
    """The regex for the ``[`` ... ``]`` starting after ``[`` at ``index``, and the index after ``]``.

    As in Go, a class may match ``/`` and a reversed range (``z-a``) is legal but matches nothing.
    """
    negated = index < len(pattern) and pattern[index] == "^"
    index += negated
    parts: list[str] = []
    count = 0
    while True:
        if index < len(pattern) and pattern[index] == "]" and count:
            index += 1
            break
        low, index = _escaped_char(pattern, index)
        high = low
        if pattern[index] == "-":
            high, index = _escaped_char(pattern, index + 1)
        count += 1
        if low <= high:
            parts.append(re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}")
    body = "".join(parts)
    if not body:
        return ("." if negated else "(?!)"), index
    return (f"[^{body}]" if negated else f"[{body}]"), index


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            regex, index = _character_class(pattern, index)
            out.append(regex)
        elif char == "\\":
            if index >= len(pattern):
                raise BadPatternError(f"trailing escape in {pattern!r}")
            out.append(re.escape(pattern[index]))
            index += 1
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def go_path_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match(pattern, name)`` on Linux; BadPatternError for a malformed pattern."""
    return _compile(pattern).fullmatch(name) is not None


def expand_pool_names(names: Iterable[str], candidates: Iterable[str]) -> list[str]:
    """Each name as given, each wildcard replaced by the matching ``candidates`` (sorted, so the order is stable).

    A pool both named and matched, or matched by two patterns, appears once, at its first position: upstream
    instead reports a duplicate pool and fails the pod, which only punishes overlapping patterns.
    """
    pool = sorted(candidates)
    expanded: list[str] = []
    listed: set[str] = set()
    matched: set[str] = set()
    for name in names:
        if not has_wildcard(name):
            # A name written twice stays twice (selection reports the user's mistake); one already placed by an
            # earlier pattern is not repeated.
            if name not in matched:
                expanded.append(name)
                listed.add(name)
            continue
        for candidate in pool:
            if candidate not in listed and go_path_match(name, candidate):
                expanded.append(candidate)
                listed.add(candidate)
                matched.add(candidate)
    return expanded
