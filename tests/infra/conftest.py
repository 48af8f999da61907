"""Synthesis goes through jsii and is slow: the default stack is built once per session and shared."""

from __future__ import annotations

import os
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.application import build_app
from infra.stack import EcsGpuRecoveryStack

# The Node the jsii runtime uses here is past end-of-life; its banner is noise on stderr, nothing more.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def default_app() -> tuple[App, EcsGpuRecoveryStack]:
    # An empty environment: the defaults, whatever the developer has exported.
    return build_app(env={})


@pytest.fixture(scope="session")
def template(default_app: tuple[App, EcsGpuRecoveryStack]) -> Template:
    return Template.from_stack(default_app[1])


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]
