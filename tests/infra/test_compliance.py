"""cdk-nag AwsSolutions and cfn-lint on the default stack."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import App, Validations
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from infra.stack import EcsGpuRecoveryStack


def test_cdk_nag_reports_no_unacknowledged_finding(default_app: tuple[App, EcsGpuRecoveryStack]) -> None:
    app, stack = default_app
    report = AwsSolutionsChecks().validate_scope(app)
    findings = [f"{v.rule_name}: {v.description[:80]}" for v in report.violations]
    assert report.success, findings
    # cdk-nag v3 reports through policy validation, not annotations; nothing else may warn either.
    annotations = Annotations.from_stack(stack)
    assert not annotations.find_error("*", Match.string_like_regexp("AwsSolutions-"))
    assert not annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-"))


def test_every_acknowledgement_has_a_reason(default_app: tuple[App, EcsGpuRecoveryStack]) -> None:
    _, stack = default_app
    acknowledged = {
        (construct.node.path, rule): reason
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    }
    assert acknowledged
    assert all(rule.startswith("Annotation::AwsSolutions-") for _, rule in acknowledged), acknowledged
    short = [key for key, reason in acknowledged.items() if len(reason.strip()) < 30]
    assert not short


def test_cfn_lint_reports_no_error(template: Template, tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template.to_json()))
    matches = lint(path.read_text(), regions=["us-east-1"])
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    # cfn-lint checks the ASL's Resource ARNs before CloudFormation applies DefinitionSubstitutions, so the
    # definition's partition placeholder (arn:${Partition}:states:::...) reads as a malformed ARN to it.
    substituted_later = [e for e in errors if e.startswith("E3601 'arn:${Partition}:states:::")]
    assert not [e for e in errors if e not in substituted_later]
