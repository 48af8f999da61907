"""Builds the CDK app: configuration first (nothing is created on a bad value), then the stack and cdk-nag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import Config
from infra.stack import EcsGpuRecoveryStack


def build_app(env: Mapping[str, str], context: Mapping[str, Any] | None = None) -> tuple[App, EcsGpuRecoveryStack]:
    """`context` is for tests; `cdk synth -c NAME=value` reaches the app through the CLI's context instead."""
    app = App(context=dict(context) if context else None)
    config = Config.load(context={name: app.node.try_get_context(name) for name in Config.names()}, env=env)
    stack = EcsGpuRecoveryStack(app, config.STACK_NAME, config=config)
    # cdk-nag v3 is a policy-validation plugin: any unacknowledged finding fails synthesis.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
