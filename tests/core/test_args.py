"""-M / -T value parsing."""

from __future__ import annotations

import pytest

from evalkit.cli.args import parse_key_values, parse_value
from evalkit.errors import ArgumentError


@pytest.mark.parametrize(("text", "value"), [
    ("30", 30), ("0.5", 0.5), ("true", True), ("False", False), ("none", None), ("hello", "hello"),
    ("a,b", "a,b"), ('"a,b"', "a,b"), ("'1'", "1"), ("[1, 2]", [1, 2]), ("[a, b]", ["a", "b"]),
    ('{"x": 1}', {"x": 1}), ("{x: 1, y: [2]}", {"x": 1, "y": [2]}), ("http://h:1/v1", "http://h:1/v1"),
])
def test_parse_value(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_parse_key_values_and_errors() -> None:
    assert parse_key_values(["timeout=30", "device=cpu", "max-len=8"], "-M") == {"timeout": 30, "device": "cpu", "max_len": 8}
    with pytest.raises(ArgumentError, match="-M expects key=value"):
        parse_key_values(["timeout"], "-M")
    with pytest.raises(ArgumentError, match="-T x: not a valid list or dict"):
        parse_key_values(["x=[1, 2"], "-T")


@pytest.mark.parametrize("text", ["inf", "nan", "-Infinity"])
def test_parse_value_keeps_non_numbers_as_words(text: str) -> None:
    assert parse_value(text) == text


@pytest.mark.parametrize("text", ["1e400", "-1e400", "2e308"])
def test_parse_value_refuses_numbers_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match=f"{text} is out of range"):
        parse_value(text)
    with pytest.raises(ArgumentError, match=f"-T n: {text} is out of range"):
        parse_key_values([f"n={text}"], "-T")
