from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiderpool.core.wildcards import BadPatternError, expand_pool_names, go_path_match, has_wildcard


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        # Cases from Go's path/filepath match_test.go (the ones that apply to names without separators) plus the
        # separator rules.
        ("abc", "abc", True),
        ("*", "abc", True),
        ("*c", "abc", True),
        ("a*", "a", True),
        ("a*", "abc", True),
        ("a*", "ab/c", False),
        ("a*/b", "abc/b", True),
        ("a*/b", "a/c/b", False),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
        ("a*b?c*x", "abxbbxdbxebxczzx", True),
        ("a*b?c*x", "abxbbxdbxebxczzy", False),
        ("ab[c]", "abc", True),
        ("ab[b-d]", "abc", True),
        ("ab[e-g]", "abc", False),
        ("ab[^c]", "abc", False),
        ("ab[^b-d]", "abc", False),
        ("ab[^e-g]", "abc", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "ab", False),
        ("a?b", "a☺b", True),
        ("a[^a]b", "a☺b", True),
        ("a???b", "a☺b", False),
        ("a[^a][^a][^a]b", "a☺b", False),
        ("[a-\u03b6]*", "\u03b1", True),  # [a-zeta]* matches alpha
        ("*[a-\u03b6]", "A", False),
        ("a?b", "a/b", False),
        ("a*b", "a/b", False),
        ("[\\]a]", "]", True),
        ("[\\-]", "-", True),
        ("[x\\-]", "x", True),
        ("[x\\-]", "-", True),
        ("[x\\-]", "z", False),
        ("[\\-x]", "x", True),
        ("[\\-x]", "-", True),
        ("[\\-x]", "a", False),
        ("[z-a]", "m", False),
        ("default-*-v4", "default-ns1-v4", True),
        ("pool-?", "pool-10", False),
    ],
)
def test_go_filepath_match(pattern: str, name: str, matches: bool) -> None:
    """WI01: Go filepath match."""
    assert go_path_match(pattern, name) is matches


@pytest.mark.parametrize("pattern", ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
                                     "[a", "a\\"])
def test_malformed_patterns_are_errors_even_without_a_match(pattern: str) -> None:
    """WI02: Malformed patterns are errors even without a match."""
    with pytest.raises(BadPatternError):
        go_path_match(pattern, "zzz")


@pytest.mark.parametrize(("name", "wildcard"), [("pool", False), ("p*", True), ("p?", True), ("p[ab]", True),
                                                ("p[", False), ("p]", False), ("p\\x", False)])
def test_has_wildcard_as_upstream(name: str, wildcard: bool) -> None:
    """WI03: Has wildcard as upstream."""
    assert has_wildcard(name) is wildcard


def test_expansion_keeps_user_order_and_sorts_each_pattern_matches() -> None:
    """WI04: Expansion keeps user order and sorts each pattern matches."""
    pools = ["v4-b", "v4-a", "backup", "other"]
    assert expand_pool_names(["backup", "v4-*"], pools) == ["backup", "v4-a", "v4-b"]
    assert expand_pool_names(["v4-*", "backup"], pools) == ["v4-a", "v4-b", "backup"]


def test_expansion_drops_repeats_from_patterns_but_keeps_names_written_twice() -> None:
    """WI05: Expansion drops repeats from patterns but keeps names written twice."""
    pools = ["a1", "a2", "b1"]
    assert expand_pool_names(["a*", "a1", "*1"], pools) == ["a1", "a2", "b1"]
    assert expand_pool_names(["a1", "a*"], pools) == ["a1", "a2"]
    assert expand_pool_names(["a1", "a1"], pools) == ["a1", "a1"]
    assert expand_pool_names(["z*"], pools) == []
    assert expand_pool_names(["missing"], pools) == ["missing"]


@given(st.text(alphabet="abc-", max_size=8))
def test_star_matches_any_name_without_separator(name: str) -> None:
    """WI06: Star matches any name without separator."""
    assert go_path_match("*", name)
    assert go_path_match(name.replace("-", "?"), name)
