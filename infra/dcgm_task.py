"""The DCGM health-check task the workflow runs on a suspect node (or the one the operator supplies)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.common import removal_policy, retention, service_principal
from infra.config import DCGM_TASK_FAMILY, Config
from infra.nag import acknowledge

# The check wrapper (runs dcgmi, collects XIDs and the GPU map, prints the GPU_RECOVERY_RESULT line). Its text goes
# into the task definition's command at synth, so the stock DCGM image runs it and synth needs no docker;
# dcgm-check/Dockerfile builds the same wrapper into an image for those who prefer one (docs/diagnosis.md).
WRAPPER_SCRIPT = Path(__file__).resolve().parent.parent / "dcgm-check" / "entrypoint.sh"

# Enough for dcgmi and nv-hostengine; the diag itself runs on the GPUs.
_MEMORY_RESERVATION_MIB = 1024

# The host's kernel log, where the NVIDIA driver writes "NVRM: Xid ..." lines, read-only at the same path. It is the
# kernel's ring buffer, so it holds this boot's messages only (an XID from before the last reboot, which a reboot or
# GPU reset cleared, is not there), and it is the same on the ECS-optimized AL2 and AL2023 GPU AMIs. A container
# has no /dev/kmsg unless it is mapped (ECS linuxParameters.devices), and reading it, or dmesg's syslog(2), needs
# CAP_SYSLOG: Docker's default seccomp profile allows syslog(2) only to CAP_SYSLOG or CAP_SYS_ADMIN (moby commit
# ccd22ff, "Move the syslog syscall to be gated by CAP_SYS_ADMIN or CAP_SYSLOG"), and the kernel asks for
# CAP_SYSLOG when kernel.dmesg_restrict is 1. docs/diagnosis.md, "What the check container can read".
KERNEL_LOG_DEVICE = "/dev/kmsg"
# SYS_ADMIN: nv-hostengine inside a container without it reports "Host engine is running as non-root" and the
# diagnostic plugins that need root do not run (NVIDIA dcgm-exporter issue #407; the DCGM user guide: portions
# of the diagnostics require root). The task runs only our wrapper, and only on a node already suspected.
CHECK_CAPABILITIES = (ecs.Capability.SYS_ADMIN, ecs.Capability.SYSLOG)


class DcgmCheckTask(Construct):
    """Exposes task_definition_arn, log_group_name and the roles the state machine must be allowed to pass."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.pass_roles: list[iam.IRole] = []
        if not config.creates_dcgm_task:
            self.task_definition_arn = config.DCGM_HEALTH_CHECK_TASK
            self.log_group_name = config.DCGM_LOG_GROUP
            return

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=retention(config.LOG_RETENTION_DAYS),
            removal_policy=removal_policy(config),
        )
        # The image is public (nvcr.io), so the execution role only needs to write the container's logs.
        execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Writes the DCGM check container's logs",
        )
        # The check calls no AWS API; the task role exists because ECS task definitions created by CDK carry one.
        task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=service_principal("ecs-tasks.amazonaws.com", "ecs:*"),
            description="DCGM check task: no AWS permissions",
        )
        task_definition = ecs.Ec2TaskDefinition(
            self,
            "TaskDefinition",
            family=DCGM_TASK_FAMILY,
            execution_role=execution_role,
            task_role=task_role,
        )
        linux_parameters = ecs.LinuxParameters(self, "LinuxParameters")
        linux_parameters.add_capabilities(*CHECK_CAPABILITIES)
        linux_parameters.add_devices(
            ecs.Device(
                host_path=KERNEL_LOG_DEVICE,
                container_path=KERNEL_LOG_DEVICE,
                permissions=[ecs.DevicePermission.READ],
            )
        )
        task_definition.add_container(
            "Container",
            container_name=config.DCGM_CONTAINER_NAME,
            image=ecs.ContainerImage.from_registry(config.DCGM_IMAGE),
            gpu_count=config.DCGM_GPU_COUNT,
            memory_reservation_mib=_MEMORY_RESERVATION_MIB,
            environment={"DCGM_DIAG_LEVEL": str(config.DCGM_DIAG_LEVEL)},
            # The wrapper starts the host engine, runs dcgmi diag -j and prints one GPU_RECOVERY_RESULT line for
            # AnalyzeDiag; the container exits with dcgmi's exit code.
            entry_point=["/bin/sh", "-c"],
            command=[WRAPPER_SCRIPT.read_text()],
            linux_parameters=linux_parameters,
            # blocking: the result line must reach CloudWatch before the container counts as stopped; in
            # non-blocking mode (the ECS default since June 2025 unless the account's defaultLogDriverMode says
            # otherwise) a full buffer drops lines (ECS API reference, LogConfiguration options, "mode").
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="dcgm", log_group=self.log_group, mode=ecs.AwsLogDriverMode.BLOCKING
            ),
        )
        self.task_definition_arn = task_definition.task_definition_arn
        self.log_group_name = self.log_group.log_group_name
        self.pass_roles = [execution_role, task_role]
        acknowledge(
            task_definition,
            "AwsSolutions-ECS2",
            "DCGM_DIAG_LEVEL is a non-secret tuning value (1-4) the command reads; no secret is passed through the "
            "environment.",
        )
