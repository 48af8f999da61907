"""The ECS task as both EventBridge and DescribeTasks spell it (the same camelCase fields), and the two inputs that
name a failed task: ClassifyFailure's models (recovery.aws describes tasks only for it and the CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from recovery.models import CamelModel


class EcsContainer(CamelModel):
    name: str = ""
    exit_code: int | None = None
    gpu_ids: list[str] = Field(default_factory=list)
    reason: str | None = None
    last_status: str | None = None


class EcsTask(CamelModel):
    """An ECS task as in the `ECS Task State Change` event detail and in DescribeTasks."""

    task_arn: str
    cluster_arn: str
    last_status: str
    task_definition_arn: str
    container_instance_arn: str | None = None
    group: str | None = None
    started_by: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    containers: list[EcsContainer] = Field(default_factory=list)
    tags: list[dict[str, str]] = Field(default_factory=list)
    version: int = 0
    # How it was launched (recovery.relaunch): DescribeTasks and the event spell these the same.
    capacity_provider_name: str | None = None
    launch_type: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    enable_execute_command: bool = False

    @property
    def gpu_ids(self) -> list[str]:
        return [gpu for container in self.containers for gpu in container.gpu_ids]

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]


class TaskStateChangeEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    source: Literal["aws.ecs"]
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    detail: EcsTask


class ManualRequest(CamelModel):
    """Started by hand (console or `gpu-recovery start`) for one task."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    task_arn: str
    reason: str = "manual request"
    dry_run: bool = False
