"""The task and job tables (ecs_task, ecs_job): a failure recorded with its job in one transaction, the job's
lock and outcome, each task's recovery status and what it was restarted as. Every write that could be retried is
conditional, so a retried step never double-counts restarts. Item shapes: docs/data-model.md."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from recovery.models import JobStatus, TaskRecoveryStatus
from recovery.schema import BY_JOB_INDEX
from recovery.storage import TableStore, conditional_write, plain, to_dynamo


class JobTable(TableStore):
    def get_task(self, task_arn: str) -> dict[str, Any] | None:
        item = self.task.get_item(Key={"taskArn": task_arn}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def get_tasks(self, task_arns: list[str]) -> list[dict[str, Any]]:
        return [item for arn in task_arns if (item := self.get_task(arn))]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        item = self.job.get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def record_failure(self, task_item: dict[str, Any], job_id: str, now: str, *, manual: bool, me: str) -> bool:
        """Record the failed task and make sure its job exists, in one transaction. False when a newer
        event for the task is already recorded (the caller treats it as a duplicate); a retry of execution
        `me` finds its own record and writes it again."""
        newer_guard = "lastEventVersion <= :v" if manual else "lastEventVersion < :v"
        newer_guard = f"{newer_guard} OR recoveryExecution = :me"
        # The resource's client serialises Python values to DynamoDB types, as Table methods do.
        return conditional_write(
            self.resource.meta.client.transact_write_items,
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.names["task"],
                        "Item": to_dynamo(task_item),
                        "ConditionExpression": f"attribute_not_exists(taskArn) OR {newer_guard}",
                        "ExpressionAttributeValues": {":v": task_item["lastEventVersion"], ":me": me},
                    }
                },
                {
                    "Update": {
                        "TableName": self.names["job"],
                        "Key": {"jobId": job_id},
                        "UpdateExpression": (
                            "SET #status = if_not_exists(#status, :running), "
                            "restartCount = if_not_exists(restartCount, :zero), "
                            "createdAt = if_not_exists(createdAt, :now), "
                            "lastFailedTask = :task, lastFailureAt = :now, updatedAt = :now"
                        ),
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":running": JobStatus.RUNNING,
                            ":zero": 0,
                            ":now": now,
                            ":task": task_item["taskArn"],
                        },
                    }
                },
            ],
        )

    def record_sibling(self, task_item: dict[str, Any]) -> None:
        """Remember a running sibling's launch parameters so the job can be restarted as it was."""
        conditional_write(
            self.task.put_item, Item=to_dynamo(task_item), ConditionExpression=Attr("taskArn").not_exists()
        )

    def job_task_items(self, job_id: str) -> list[dict[str, Any]]:
        """Every recorded task of the job (the byJob index): which were restarted already, and the task
        definitions the job ran. A GSI read is eventually consistent; a restart is recorded minutes before
        the job can fail again (a recovery takes longer than that), so the index has it."""
        return self.all_items(
            "query",
            TableName=self.names["task"],
            IndexName=BY_JOB_INDEX,
            KeyConditionExpression=Key("jobId").eq(job_id),
            ProjectionExpression="taskArn, taskDefinitionArn, restartedAs",
        )

    def finish_job(
        self, job_id: str, me: str, *, status: JobStatus, outcome: dict[str, Any], new_tasks: dict[str, str], now: str
    ) -> bool:
        """Record the job's outcome once per execution (a retried step changes nothing; the recorded outcome
        is what a retry answers). Returns False when this execution had already recorded it."""
        restarted = bool(new_tasks)
        update = (
            "SET #status = :status, lastOutcome = :outcome, lastReason = :reason, lastRecovery = :me, "
            "lastOutcomeDetail = :detail, updatedAt = :now, tasks = :tasks"
        )
        if restarted:
            update += ", restartCount = if_not_exists(restartCount, :zero) + :one"
        values: dict[str, Any] = {
            ":status": status,
            ":outcome": outcome["outcome"],
            ":reason": outcome["reason"],
            ":detail": to_dynamo(outcome),
            ":me": me,
            ":now": now,
            ":tasks": sorted(new_tasks.values()),
        }
        if restarted:
            values.update({":zero": 0, ":one": 1})
        if not conditional_write(
            self.job.update_item,
            Key={"jobId": job_id},
            UpdateExpression=update,
            ConditionExpression="lockOwner = :me AND (attribute_not_exists(lastRecovery) OR lastRecovery <> :me)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        ):
            return False
        self.record_restarts(new_tasks, now)
        return True

    def record_restarts(self, new_tasks: dict[str, str], now: str) -> None:
        """Each restarted task's row says what it was restarted as (so no later step restarts it again)."""
        for old, new in new_tasks.items():
            self.task.update_item(
                Key={"taskArn": old},
                UpdateExpression="SET restartedAs = :new, recoveryStatus = :status, updatedAt = :now",
                ExpressionAttributeValues={":new": new, ":status": TaskRecoveryStatus.RESTARTED, ":now": now},
            )

    def release_job_after_error(self, job_id: str, me: str, now: str, error: str) -> bool:
        return conditional_write(
            self.job.update_item,
            Key={"jobId": job_id},
            UpdateExpression=(
                "SET #status = :error, lastReason = :reason, updatedAt = :now REMOVE lockOwner, lockedAt"
            ),
            ConditionExpression="lockOwner = :me",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":error": JobStatus.ERROR, ":reason": error, ":now": now, ":me": me},
        )

    def mark_task(self, task_arn: str, status: TaskRecoveryStatus, now: str, *, handled_by: str | None = None) -> bool:
        """Set a recorded task's recovery status; False when the task was never recorded (or, with
        `handled_by`, when another execution handles its failure)."""
        condition = Attr("taskArn").exists()
        if handled_by:
            condition = condition & Attr("recoveryExecution").eq(handled_by)
        return conditional_write(
            self.task.update_item,
            Key={"taskArn": task_arn},
            UpdateExpression="SET recoveryStatus = :s, updatedAt = :now",
            ConditionExpression=condition,
            ExpressionAttributeValues={":s": status, ":now": now},
        )

    def jobs_locked_by(self, execution_arn: str) -> list[str]:
        """The job ids whose lock this execution holds (a scan: run only when an execution ended without
        releasing its locks)."""
        return sorted(str(job["jobId"]) for job in self.scan_sorted("job", Attr("lockOwner").eq(execution_arn)))

    def locked_jobs(self) -> list[dict[str, Any]]:
        """Every job row that holds a lock (a scan, for operators)."""
        return self.scan_sorted("job", Attr("lockOwner").exists())
