"""IAM policy evaluation for one principal's identity policies, as the IAM User Guide's "Policy evaluation logic"
describes it for a request within one account with no resource policy, boundary or SCP in play: an explicit Deny
wins, otherwise an Allow whose Action, Resource and Condition all match allows, otherwise the request is denied.

Matching follows the IAM JSON policy element reference: actions compare case-insensitively with ``*``/``?``
wildcards; resources compare case-sensitively with ``*``/``?`` wildcards; a condition block holds when every
operator holds, an operator when every key holds, a key when the request's value matches any of the listed values;
a key the request does not supply fails the condition (unless the operator ends in ``IfExists``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final


@dataclass(frozen=True)
class Check:
    """One authorization IAM makes for a request: an action on a resource ARN (or ``*``) with condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_OPERATORS: Final[dict[str, Callable[[str, str], bool]]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringNotEquals": lambda expected, actual: expected != actual,
    "StringEqualsIgnoreCase": lambda expected, actual: expected.lower() == actual.lower(),
    "StringLike": wildcard_match,
    "ArnEquals": wildcard_match,
    "ArnLike": wildcard_match,
    "Bool": lambda expected, actual: str(expected).lower() == actual.lower(),
}


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, keys in condition.items():
        name = operator.removesuffix("IfExists")
        if name not in _OPERATORS:
            raise ValueError(f"condition operator {operator!r} is not supported by the local IAM evaluator")
        for key, expected in keys.items():
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if not any(_OPERATORS[name](str(e), actual) for e in _listed(expected)):
                return False
    return True


def _matches(statement: Mapping[str, Any], check: Check) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise ValueError("NotAction/NotResource are not supported by the local IAM evaluator")
    return (
        any(wildcard_match(a, check.action, ignore_case=True) for a in _listed(statement.get("Action", [])))
        and any(wildcard_match(r, check.resource) for r in _listed(statement.get("Resource", [])))
        and _condition_holds(statement.get("Condition", {}), check.context)
    )


def for_service(statements: Sequence[Mapping[str, Any]], service: str) -> list[Mapping[str, Any]]:
    """The statements of a resource-based policy whose Principal names this service principal (one or a list: IAM
    JSON policy element reference, "Principal")."""
    return [
        s
        for s in statements
        if isinstance(s.get("Principal"), dict) and service in _listed(s["Principal"].get("Service", []))
    ]


def is_allowed(statements: Sequence[Mapping[str, Any]], check: Check) -> bool:
    matching = [s for s in statements if _matches(s, check)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)
