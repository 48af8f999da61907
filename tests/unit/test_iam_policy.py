"""The local engine's IAM evaluator: identity-policy evaluation as the IAM User Guide describes it."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_recovery.engine.iam_policy import Check, is_allowed

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"
ON_CLUSTER = {"ArnEquals": {"ecs:cluster": CLUSTER}}


def allow(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


def test_nothing_is_allowed_without_a_statement() -> None:
    assert not is_allowed([], Check("ecs:ListTasks", "*"))


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert is_allowed([allow("ECS:listtasks", "*")], Check("ecs:ListTasks", "*"))
    assert is_allowed([allow("ecs:Describe*", "*")], Check("ecs:DescribeTasks", "*"))
    assert not is_allowed([allow("ecs:Describe*", "*")], Check("ecs:ListTasks", "*"))


def test_resources_match_case_sensitively_with_wildcards() -> None:
    tasks = "arn:aws:ecs:us-east-1:123456789012:task/gpu/*"
    assert is_allowed([allow("ecs:StopTask", tasks)], Check("ecs:StopTask", tasks[:-1] + "abc"))
    assert not is_allowed([allow("ecs:StopTask", tasks)], Check("ecs:StopTask", tasks.replace("gpu", "GPU")[:-1]))


def test_a_request_on_star_needs_a_statement_on_star() -> None:
    # ListTasks for a whole cluster is authorized against "*": a container-instance ARN pattern does not cover it.
    instances = "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu/*"
    check = Check("ecs:ListTasks", "*", {"ecs:cluster": CLUSTER})
    assert not is_allowed([allow("ecs:ListTasks", instances, ON_CLUSTER)], check)
    assert is_allowed([allow("ecs:ListTasks", "*", ON_CLUSTER)], check)


def test_a_condition_must_hold_and_a_missing_key_fails_it() -> None:
    statement = allow("ecs:RunTask", "*", ON_CLUSTER)
    assert is_allowed([statement], Check("ecs:RunTask", "td", {"ecs:cluster": CLUSTER}))
    assert not is_allowed([statement], Check("ecs:RunTask", "td", {"ecs:cluster": CLUSTER + "2"}))
    assert not is_allowed([statement], Check("ecs:RunTask", "td"))
    if_exists = allow("ecs:RunTask", "*", {"ArnEqualsIfExists": {"ecs:cluster": CLUSTER}})
    assert is_allowed([if_exists], Check("ecs:RunTask", "td"))


def test_any_listed_value_satisfies_a_key() -> None:
    statement = allow("iam:PassRole", "*", {"StringEquals": {"iam:PassedToService": ["a", "ecs-tasks.amazonaws.com"]}})
    assert is_allowed([statement], Check("iam:PassRole", "r", {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))


def test_an_explicit_deny_wins() -> None:
    deny = {"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}
    assert not is_allowed([allow("ecs:StopTask", "*"), deny], Check("ecs:StopTask", "t"))


def test_an_unsupported_operator_fails_loudly() -> None:
    with pytest.raises(ValueError, match="NumericLessThan"):
        is_allowed(
            [allow("ecs:StopTask", "*", {"NumericLessThan": {"k": "1"}})], Check("ecs:StopTask", "t", {"k": "0"})
        )
