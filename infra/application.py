"""Builds the CDK app: configuration first (nothing is created on a bad value), then the stack and cdk-nag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Annotations, App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import Config
from infra.stack import EcsGpuRecoveryStack


def build_app(env: Mapping[str, str], context: Mapping[str, Any] | None = None) -> tuple[App, EcsGpuRecoveryStack]:
    """`context` is for tests; `cdk synth -c NAME=value` reaches the app through the CLI's context instead."""
    app = App(context=dict(context) if context else None)
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
