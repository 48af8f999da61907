"""The ``api_faults`` section of a scenario: AWS errors to inject into the stack's own calls (docs/scenarios.md).

``faults`` already names GPU faults of the simulated nodes; these are faults of the AWS APIs::

    api_faults:
      - {api: ecs:UpdateContainerInstancesState, error: throttling, count: 2}   # the first 2 calls
      - {api: ec2:RebootInstances, error: server_error, rate: 0.5, node: node-1} # every 2nd call naming node-1
      - {api: sns:Publish, error: access_denied, count: 1}
      - {step: AnalyzeDiag, error: crash, count: 1}                             # the Lambda dies at that step

``api`` is ``<service>:<Operation>`` as botocore names them; ``node`` limits a rule to calls whose request names
that node (its instance ID or container instance ARN). ``count`` fails the first N matching calls; ``rate`` fails a
deterministic share of them (call k fails when ``floor(k * rate)`` grows). A ``step`` rule makes the step Lambda
invoked by that Task state crash (the runtime exits) instead of running its handler.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import botocore.session
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gpu_recovery.asl import definition, walk_states

FaultError = Literal["throttling", "server_error", "access_denied", "crash"]


@cache
def _lambda_steps() -> frozenset[str]:
    """Task states of the definition whose Resource is a step Lambda."""

    return frozenset(
        name
        for name, state in walk_states(definition()["States"])
        if state["Type"] == "Task" and state["Resource"].endswith("FunctionArn}")
    )


class ApiFault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api: str | None = None
    step: str | None = None
    error: FaultError
    count: int | None = Field(default=None, gt=0)
    rate: float | None = Field(default=None, gt=0, le=1)
    node: str | None = None

    @field_validator("api")
    @classmethod
    def _known_api(cls, api: str | None) -> str | None:
        if api is None:
            return api
        service, _, operation = api.partition(":")
        session = botocore.session.get_session()
        if service not in session.get_available_services():
            raise ValueError(f"unknown service {service!r} (write <service>:<Operation>, e.g. ecs:RunTask)")
        if operation not in session.get_service_model(service).operation_names:
            raise ValueError(f"{service} has no operation {operation!r}")
        return api

    @field_validator("step")
    @classmethod
    def _known_step(cls, step: str | None) -> str | None:
        if step is not None and step not in _lambda_steps():
            raise ValueError(f"{step!r} is not a step Lambda state of the definition ({sorted(_lambda_steps())})")
        return step

    @model_validator(mode="after")
    def _one_target(self) -> ApiFault:
        if (self.api is None) == (self.step is None):
            raise ValueError("give either api or step")
        if (self.step is None) == (self.error == "crash"):
            raise ValueError("a step rule injects error: crash, an api rule throttling, server_error or access_denied")
        if (self.count is None) == (self.rate is None):
            raise ValueError("give either count or rate")
        if self.step is not None and self.node is not None:
            raise ValueError("node applies to api rules only")
        return self

    def fails(self, call: int) -> bool:
        """Whether the ``call``-th matching call (from 1) fails."""
        if self.count is not None:
            return call <= self.count
        assert self.rate is not None
        return int(call * self.rate) > int((call - 1) * self.rate)
