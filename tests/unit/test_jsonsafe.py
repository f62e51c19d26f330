"""Strict JSON: what the API, the webhook and the provider client accept."""

import json

import pytest

from service.domain import jsonsafe


@pytest.mark.parametrize(
    "text",
    [
        '{"x": NaN}',
        '{"x": Infinity}',
        '{"x": -Infinity}',
        '{"x": 1e999}',
        '{"x": -1e999}',
        '{"x": "\\ud800"}',
        '{"x": "a\\udfffb"}',
        '{"\\ud800": 1}',
        '{"x": "a\\u0000b"}',
        '{"a\\u0000": 1}',
        '{"x": ' + "9" * 20 + "}",
        '{"x": -' + "9" * 5000 + "}",
        '{"x": 1.' + "0" * 100 + "}",
        "[" * 33 + "]" * 33,
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 40 + "1" + "}" * 40,
    ],
)
def test_values_no_store_can_hold_are_refused(text: str) -> None:
    with pytest.raises(jsonsafe.UnsafeJson):
        jsonsafe.loads(text)


def test_the_field_is_named_when_known() -> None:
    with pytest.raises(jsonsafe.UnsafeJson) as info:
        jsonsafe.loads('{"metadata": {"tags": ["ok", "a\\u0000"]}}')
    assert info.value.field == "metadata.tags.1"


@pytest.mark.parametrize(
    "text",
    [
        '{"x": 1.5e308, "y": -9223372036854775807, "z": 9223372036854775807}',
        '{"emoji": "\\ud83d\\ude00", "tab": "\\t", "ctl": "\\u0001"}',
        "[" * 32 + "]" * 32,
        '"just a string"',
    ],
)
def test_ordinary_json_passes_unchanged(text: str) -> None:
    assert jsonsafe.loads(text) == json.loads(text)


def test_not_json_is_a_value_error() -> None:
    for text in (b"{", b"\xff\xfe", b""):
        with pytest.raises(ValueError):
            jsonsafe.loads(text)


def test_values_built_in_code_are_checked_alike() -> None:
    jsonsafe.check_value({"a": [1, 2.5, None, True, "x"]})
    for bad in ({"a": float("nan")}, {"a": 10**19}, {"a": object()}, {1: "x"}):
        with pytest.raises(jsonsafe.UnsafeJson):
            jsonsafe.check_value(bad)


def test_integers_beyond_int64_are_refused_even_with_19_digits() -> None:
    assert jsonsafe.loads('{"n": 9223372036854775807}') == {"n": 2**63 - 1}
    with pytest.raises(jsonsafe.UnsafeJson):
        jsonsafe.loads('{"n": 9223372036854775808}')
    with pytest.raises(jsonsafe.UnsafeJson):
        jsonsafe.check_value({"n": 9999999999999999999})
