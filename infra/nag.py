"""cdk-nag v3 acknowledgements: one finding per call, always with the reason it is acceptable."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, findings: list[str] | None = None) -> None:
    """Acknowledge `rule` (e.g. AwsSolutions-IAM5) on `construct`; with `findings`, only those
    (e.g. "Resource::*"), since cdk-nag v3 acknowledges each finding of a rule separately."""
    ids = [f"{rule}[{finding}]" for finding in findings] if findings else [rule]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def resource_finding(stack: Stack, resource: str) -> str:
    """The finding name cdk-nag gives a wildcard IAM resource, e.g. "Resource::<FnLogicalId.Arn>:*".

    cdk-nag renders intrinsics as <AWS::Region>, <LogicalId> and <LogicalId.Arn>; rendering them the same way
    here keeps acknowledgements free of hard-coded logical IDs.
    """
    return "Resource::" + _render(stack.resolve(resource))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding")
