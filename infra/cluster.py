"""ARNs of the watched ECS cluster and its tasks and container instances (the cluster is not created here)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack


@dataclass(frozen=True)
class ClusterArns:
    cluster: str
    tasks: str
    container_instances: str

    @classmethod
    def of(cls, stack: Stack, cluster_name: str) -> ClusterArns:
        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="ecs", resource=resource, resource_name=name)

        return cls(
            cluster=arn("cluster", cluster_name),
            tasks=arn("task", f"{cluster_name}/*"),
            container_instances=arn("container-instance", f"{cluster_name}/*"),
        )

    def condition(self) -> dict[str, dict[str, str]]:
        """IAM condition limiting an ECS action to this cluster."""
        return {"ArnEquals": {"ecs:cluster": self.cluster}}
