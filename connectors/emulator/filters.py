"""Dimension and metric filters: GA's FilterExpression as a hashable tree, then as SQL.

The tree is part of the cached query, so it holds plain values only; rendering binds every
value as a parameter and takes column expressions from the caller's whitelist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from connectors.emulator.errors import invalid_argument, unimplemented
from connectors.emulator.fields import resolve_field

_STRING_MATCHES = {
    "EXACT": "{text} = {value}",
    "BEGINS_WITH": "starts_with({text}, {value})",
    "ENDS_WITH": "ends_with({text}, {value})",
    "CONTAINS": "contains({text}, {value})",
    "FULL_REGEXP": "regexp_full_match({text}, {value}{flags})",
    "PARTIAL_REGEXP": "regexp_matches({text}, {value}{flags})",
}
_COMPARISONS = {
    "EQUAL": "=",
    "LESS_THAN": "<",
    "LESS_THAN_OR_EQUAL": "<=",
    "GREATER_THAN": ">",
    "GREATER_THAN_OR_EQUAL": ">=",
}
# GA counts both as an empty dimension value.
EMPTY_VALUES = ("", "(not set)")


@dataclass(frozen=True)
class Condition:
    """One leaf filter on a canonical field name."""

    field: str
    test: str  # a _STRING_MATCHES key, a _COMPARISONS key, "IN_LIST", "BETWEEN" or "EMPTY"
    values: tuple[str | int | float, ...] = ()
    case_sensitive: bool = False


@dataclass(frozen=True)
class FilterNode:
    """``and`` / ``or`` / ``not`` over children, or a ``leaf`` holding one condition."""

    op: str
    children: tuple[FilterNode, ...] = ()
    condition: Condition | None = None


def parse_filter(expression: Message, *, kind: str, where: str) -> FilterNode:
    """Check a FilterExpression on ``kind`` fields and turn it into a tree."""
    branch = expression.WhichOneof("expr")
    if branch in ("and_group", "or_group"):
        parts = getattr(expression, branch).expressions
        if not parts:
            raise invalid_argument(f"{where}.{branch} has no expressions.")
        return FilterNode(
            branch.removesuffix("_group"),
            tuple(
                parse_filter(part, kind=kind, where=f"{where}.{branch}.expressions[{i}]")
                for i, part in enumerate(parts)
            ),
        )
    if branch == "not_expression":
        inner = parse_filter(expression.not_expression, kind=kind, where=f"{where}.not_expression")
        return FilterNode("not", (inner,))
    if branch == "filter":
        return FilterNode("leaf", condition=_condition(expression.filter, kind, f"{where}.filter"))
    raise invalid_argument(f"{where} is an empty filter expression.")


def _condition(leaf: Message, kind: str, where: str) -> Condition:
    if not leaf.field_name:
        raise invalid_argument(f"{where}.field_name is empty.")
    field = resolve_field(leaf.field_name, kind)
    which = leaf.WhichOneof("one_filter")
    if which is None:
        raise invalid_argument(f"{where} on {leaf.field_name!r} names no filter.")
    if kind == "dimension" and which in ("numeric_filter", "between_filter"):
        raise unimplemented(f"{where}: numeric filters on dimensions are not evaluated yet.")
    if kind == "metric" and which in ("string_filter", "in_list_filter", "empty_filter"):
        raise invalid_argument(f"{where}: a metric filter on {leaf.field_name!r} must be numeric.")
    if which == "string_filter":
        string = leaf.string_filter
        match_type = type(string).MatchType.Name(string.match_type)
        if match_type == "MATCH_TYPE_UNSPECIFIED":
            match_type = "EXACT"
        if match_type.endswith("REGEXP"):
            _check_regexp(string.value, where)
        return Condition(field, match_type, (string.value,), string.case_sensitive)
    if which == "in_list_filter":
        in_list = leaf.in_list_filter
        return Condition(field, "IN_LIST", tuple(in_list.values), in_list.case_sensitive)
    if which == "empty_filter":
        return Condition(field, "EMPTY")
    if which == "numeric_filter":
        numeric = leaf.numeric_filter
        operation = type(numeric).Operation.Name(numeric.operation)
        if operation not in _COMPARISONS:
            raise invalid_argument(f"{where}.numeric_filter needs an operation.")
        return Condition(field, operation, (_number(numeric.value),))
    between = leaf.between_filter
    return Condition(field, "BETWEEN", (_number(between.from_value), _number(between.to_value)))


def _number(value: Message) -> int | float:
    return (
        value.double_value
        if value.WhichOneof("one_value") == "double_value"
        else (value.int64_value)
    )


def _check_regexp(pattern: str, where: str) -> None:
    # Python's syntax is close enough to RE2's to catch the mistakes people make.
    try:
        re.compile(pattern)
    except re.error as error:
        raise invalid_argument(
            f"{where}.string_filter.value is not a valid regexp: {error}."
        ) from None


def render(node: FilterNode, column: Callable[[str], str], parameters: list[object]) -> str:
    """SQL for the tree; ``column`` maps a field name to its (whitelisted) SQL expression."""
    if node.op in ("and", "or"):
        joined = f" {node.op} ".join(render(child, column, parameters) for child in node.children)
        return f"({joined})"
    if node.op == "not":
        return f"(not {render(node.children[0], column, parameters)})"
    condition = node.condition
    assert condition is not None  # a leaf always holds one; parse_filter builds no other
    text = column(condition.field)
    test = condition.test
    if test in _COMPARISONS:
        parameters.append(condition.values[0])
        return f"({text} {_COMPARISONS[test]} ?)"
    if test == "BETWEEN":
        parameters.extend(condition.values)
        return f"({text} between ? and ?)"
    if test == "EMPTY":
        parameters.append(list(EMPTY_VALUES))
        return f"list_contains(?, {text})"
    fold = not condition.case_sensitive
    if test == "IN_LIST":
        values = [str(v).lower() if fold else v for v in condition.values]
        parameters.append(values)
        return f"list_contains(?, {f'lower({text})' if fold else text})"
    value = condition.values[0]
    regexp = test.endswith("REGEXP")
    if fold and not regexp:
        text, value = f"lower({text})", str(value).lower()
    parameters.append(value)
    flags = ", 'i'" if fold and regexp else ""
    return _STRING_MATCHES[test].format(text=text, value="?", flags=flags)
