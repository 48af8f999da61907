"""Builds the CDK app: configuration first (nothing is created on a bad value), then the stack and cdk-nag."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from typing import Any

from aws_cdk import Annotations, App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import Config
from infra.stack import EcsGpuRecoveryStack


def unknown_settings(context: Mapping[str, Any]) -> list[str]:
    """Context keys written like a setting (UPPER_CASE) that are none: a typo would otherwise be ignored and the
    default deployed. CDK's own keys (feature flags, `aws:cdk:...`) are not upper case."""
    names = Config.names()
    lines = []
    for key in sorted(k for k in context if re.fullmatch(r"[A-Z][A-Z0-9_]*", k) and k not in names):
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"context key {key} is not a setting and is ignored{hint}; see docs/configuration.md")
    return lines


def build_app(env: Mapping[str, str], context: Mapping[str, Any] | None = None) -> tuple[App, EcsGpuRecoveryStack]:
    """`context` is for tests; `cdk synth -c NAME=value` reaches the app through the CLI's context instead."""
    app = App(context=dict(context) if context else None)
    for line in unknown_settings(app.node.get_all_context()):
        print(f"warning: {line}", file=sys.stderr)
    config = Config.load(context={name: app.node.try_get_context(name) for name in Config.names()}, env=env)
    stack = EcsGpuRecoveryStack(app, config.STACK_NAME, config=config)
    if defaults := config.fixed_name_defaults():
        # Synth cannot see the account; it can see a second stack about to reuse the first one's names.
        Annotations.of(stack).add_warning_v2(
            "gpu-recovery:fixed-names",
            f"STACK_NAME={config.STACK_NAME} keeps the default {', '.join(defaults)}: a stack already deployed "
            "with the defaults owns those names (tables and topic are retained, even after a destroy), so this "
            "deploy fails with 'already exists'. Give this stack its own names (docs/configuration.md, Names).",
        )
    # cdk-nag v3 is a policy-validation plugin: any unacknowledged finding fails synthesis.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
