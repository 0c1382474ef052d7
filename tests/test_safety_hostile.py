"""The shared validators against hostile values: wrong types, NULs, control characters, overlong values, and
JSON nested deeper than any face accepts. Every refusal is an InvalidInput naming the rule, never a crash."""

from __future__ import annotations

import time

import pytest

from airflow_dagops.errors import InvalidInput
from airflow_dagops.safety import (
    MAX_JSON_DEPTH,
    MalformedJson,
    bad_text_field,
    json_depth,
    loads_json,
    validate_conn_id,
    validate_name,
    validate_ref,
    validate_subdir,
    validate_text,
    validate_url,
)

ALLOWED = ["https", "ssh", "git", "file"]
HOSTILE = ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\u2028", "\ud800"]


@pytest.mark.parametrize("char", HOSTILE + ["\n", "\t", "\r"])
def test_no_single_line_value_holds_a_control_character_nul_or_surrogate(char):
    checks = [
        lambda: validate_name(f"team{char}"),
        lambda: validate_ref(f"ma{char}in"),
        lambda: validate_url(f"https://git.example.com/a{char}/b.git", allowed_protocols=ALLOWED),
        lambda: validate_subdir(f"da{char}gs"),
        lambda: validate_conn_id(f"prod{char}git"),
        lambda: validate_text(f"a{char}b", what="title", max_length=100),
    ]
    for check in checks:
        with pytest.raises(InvalidInput):
            check()


@pytest.mark.parametrize("value", [5, 1.5, True, ["main"], {"a": 1}, b"main"])
def test_wrong_types_are_refused_with_the_rule_not_a_type_error(value):
    for check, what in [
        (validate_name, "name"),
        (validate_ref, "ref"),
        (lambda v: validate_url(v, allowed_protocols=ALLOWED), "URL"),
        (validate_subdir, "subdir"),
        (validate_conn_id, "connection id"),
        (lambda v: validate_text(v, what="title", max_length=10), "title"),
    ]:
        with pytest.raises(InvalidInput, match=what):
            check(value)


def test_overlong_values_are_refused():
    with pytest.raises(InvalidInput, match="at most 255"):
        validate_ref("r" * 256)
    with pytest.raises(InvalidInput, match="2048"):
        validate_url("https://h/" + "a" * 2048, allowed_protocols=ALLOWED)
    with pytest.raises(InvalidInput, match="1024"):
        validate_subdir("d/" * 600)
    with pytest.raises(InvalidInput):
        validate_conn_id("c" * 251)
    with pytest.raises(InvalidInput, match="at most 10"):
        validate_text("x" * 11, what="title", max_length=10)


def test_a_name_with_a_trailing_newline_is_not_a_name():
    with pytest.raises(InvalidInput, match="lower-case letters"):
        validate_name("team\n")
    assert validate_name("team") == "team"


def test_free_text_may_be_multi_line_when_asked():
    assert validate_text("line 1\nline 2\ttab\r\n", what="description", max_length=100, multiline=True)
    with pytest.raises(InvalidInput, match="control characters"):
        validate_text("bell\x07", what="description", max_length=100, multiline=True)
    assert validate_text(None, what="description", max_length=10, required=False) is None
    with pytest.raises(InvalidInput, match="empty"):
        validate_text("  ", what="title", max_length=10)


def test_connection_ids_follow_airflows_rule():
    for good in ("prod_git", "team/git", "a.b-c:d", "x#1", "(x)!"):
        assert validate_conn_id(good) == good
    assert validate_conn_id("") is None and validate_conn_id(None) is None
    for bad in ("-x", "a b", "a;b", "a$b", "a\x00"):
        with pytest.raises(InvalidInput, match="connection id"):
            validate_conn_id(bad)


# -- JSON ------------------------------------------------------------------------------------------------------------
def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_depth_counts_brackets_outside_strings_only():
    assert json_depth("1") == 0 and json_depth("{}") == 1 and json_depth('{"a": [1, {"b": []}]}') == 4
    assert json_depth('{"a": "[[[[[[[[[[", "b": "\\"]]]]", "c": "\\\\"}') == 1
    assert json_depth(_nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH


def test_loads_json_accepts_64_levels_and_refuses_65_or_100000():
    assert loads_json(_nested(MAX_JSON_DEPTH).encode()) == loads_json(_nested(MAX_JSON_DEPTH))
    for text in (_nested(MAX_JSON_DEPTH + 1), _nested(100_000), "[" * 100_000, '{"a":' * 100_000):
        with pytest.raises(MalformedJson, match="64 levels"):
            loads_json(text.encode())


def test_loads_json_refuses_what_is_not_utf8_json_with_the_reason():
    with pytest.raises(MalformedJson, match="not UTF-8"):
        loads_json(b"\xff\xfe{}")
    with pytest.raises(MalformedJson, match="not valid JSON"):
        loads_json(b'{"a": 1]')
    with pytest.raises(MalformedJson, match="not valid JSON"):
        loads_json(b"1" * 5000)  # beyond Python's int-digit limit: a ValueError, still a 400
    assert loads_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 BOM is fine


@pytest.mark.parametrize(
    "text",
    [
        "[]" * 500_000,
        _nested(MAX_JSON_DEPTH) * 8_000,
        '"' + '\\"' * 500_000,
        '"\\' * 500_000,
        '{"x": "' + "a" * 2_000_000 + '"}',
    ],
)
def test_the_depth_check_is_fast_on_adversarial_megabytes(text):
    started = time.perf_counter()
    with pytest.raises(MalformedJson):
        loads_json(text.encode() + b"]")  # never valid: the time is the check's and the parser's failure
    assert time.perf_counter() - started < 2


def test_bad_text_field_names_the_first_string_no_field_accepts():
    assert bad_text_field({"a": ["ok", {"b": "fine\nlines\ttab"}]}) is None
    assert bad_text_field({"a": ["ok", {"b": "n\x00ul"}]}) == ("a.1.b", "holds a NUL character or a lone surrogate")
    assert bad_text_field({"a": "\ud800"})[0] == "a"
    assert bad_text_field({"files": [{"content": "\x0c\x1b"}]}, raw_text_keys=frozenset({"content"})) is None
    assert bad_text_field({"files": [{"content": "\x00"}]}, raw_text_keys=frozenset({"content"}))[0] == (
        "files.0.content"
    )
    assert bad_text_field({"title": "\x1b[2J"})[1].startswith("holds control characters")
    assert bad_text_field({"k\x00": 1})[0] == "k\x00"
