"""The synthesized template: tables, topic, DLQ, Lambdas, DCGM task, outputs, and IAM without wildcard actions."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from gpu_recovery.commands import doctor
from infra.config import Config
from infra.lambdas import POWERTOOLS_LAYER_PARAMETER
from infra.stack import CONSOLE_HOSTS
from infra.substitutions import LAMBDAS
from recovery.notify import CONSOLE_HOSTS as NOTIFICATION_CONSOLE_HOSTS
from recovery.schema import create_table_requests
from tests.infra.helpers import of_type

Resources = dict[str, dict[str, Any]]


def table(resources: Resources, name: str) -> dict[str, Any]:
    tables = of_type(resources, "AWS::DynamoDB::Table").values()
    (props,) = [r["Properties"] for r in tables if r["Properties"]["TableName"] == name]
    return props


def test_three_tables_with_keys(resources: Resources) -> None:
    assert len(of_type(resources, "AWS::DynamoDB::Table")) == 3
    assert table(resources, "ecs_task")["KeySchema"] == [{"AttributeName": "taskArn", "KeyType": "HASH"}]
    assert table(resources, "ecs_job")["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    assert table(resources, "ecs_node")["KeySchema"] == [
        {"AttributeName": "nodeId", "KeyType": "HASH"},
        {"AttributeName": "recordKey", "KeyType": "RANGE"},
    ]


def test_task_table_has_by_job_index(resources: Resources) -> None:
    (index,) = table(resources, "ecs_task")["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "byJob"
    assert index["KeySchema"] == [
        {"AttributeName": "jobId", "KeyType": "HASH"},
        {"AttributeName": "taskArn", "KeyType": "RANGE"},
    ]


def test_the_local_tables_are_the_stacks(resources: Resources) -> None:
    def by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda item: str(item.get("AttributeName") or item.get("IndexName")))

    for request in create_table_requests("ecs_task", "ecs_job", "ecs_node"):
        props = table(resources, request["TableName"])
        assert props["KeySchema"] == request["KeySchema"]
        assert by_name(props["AttributeDefinitions"]) == by_name(request["AttributeDefinitions"])
        indexes = by_name(props.get("GlobalSecondaryIndexes", []))
        assert indexes == by_name(request.get("GlobalSecondaryIndexes", []))


def test_tables_pitr_encryption_ttl_on_demand_retained(resources: Resources) -> None:
    for logical_id, resource in of_type(resources, "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert props["SSESpecification"] == {"SSEEnabled": True}, logical_id  # AWS-managed KMS key
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}, logical_id
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert resource["DeletionPolicy"] == "Retain", logical_id


def test_topic_is_kms_encrypted_and_ssl_only(template: Template, resources: Resources) -> None:
    (key_id,) = of_type(resources, "AWS::KMS::Key")
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": "ecs-gpu-recovery-notifications",
            "DisplayName": "GPU Training Job Notifications",
            "KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    assert resources[key_id]["Properties"]["EnableKeyRotation"] is True
    template.resource_count_is("AWS::SNS::Subscription", 0)  # no NOTIFICATION_EMAIL by default


def test_dead_letter_queue_is_encrypted_and_ssl_only(template: Template) -> None:
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_step_lambdas_and_the_cleanup_lambda(resources: Resources) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == sorted(
        f"{module}.handler" for module in LAMBDAS
    )
    expected_env = set(Config.load().lambda_environment()) | {"DCGM_LOG_GROUP"}
    roles = set()
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12", logical_id
        assert props["Architectures"] == ["x86_64"], logical_id
        assert props["Timeout"] == 120, logical_id
        assert props["MemorySize"] == 512, logical_id
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        cleanup = props["Handler"] == "cleanup_execution.handler"
        assert set(props["Environment"]["Variables"]) == expected_env | (
            {"NOTIFICATION_TOPIC_ARN"} if cleanup else set()
        )
        assert len(props["Layers"]) == 1, logical_id
        assert "LoggingConfig" in props, logical_id  # its own log group, with retention
        roles.add(props["Role"]["Fn::GetAtt"][0])
    assert len(roles) == len(LAMBDAS)  # one role per function


def test_powertools_layer_is_the_pinned_public_one(template: Template) -> None:
    parameters = template.to_json()["Parameters"]
    assert any(p.get("Default") == POWERTOOLS_LAYER_PARAMETER for p in parameters.values())
    assert POWERTOOLS_LAYER_PARAMETER == "/aws/service/powertools/python/x86_64/python3.12/3.37.0"


def test_every_log_group_has_retention(resources: Resources) -> None:
    for logical_id, group in of_type(resources, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == 90, logical_id


def test_dcgm_check_task_definition(template: Template, resources: Resources) -> None:
    (task,) = of_type(resources, "AWS::ECS::TaskDefinition").values()
    props = task["Properties"]
    assert props["Family"] == "gpu-recovery-dcgm-check"
    assert props["RequiresCompatibilities"] == ["EC2"]
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == "dcgm-check"
    assert container["Image"] == "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04"
    assert container["ResourceRequirements"] == [{"Type": "GPU", "Value": "8"}]
    assert container["MemoryReservation"] > 0
    assert container["Environment"] == [{"Name": "DCGM_DIAG_LEVEL", "Value": "2"}]
    assert 'dcgmi diag -r "$DCGM_DIAG_LEVEL" -j' in " ".join(container["Command"])
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "dcgm"


def test_dcgm_check_can_read_the_kernel_log_and_run_root_diagnostics(resources: Resources) -> None:
    (task,) = of_type(resources, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    linux = container["LinuxParameters"]
    assert sorted(linux["Capabilities"]["Add"]) == ["SYSLOG", "SYS_ADMIN"]
    assert "Drop" not in linux["Capabilities"]
    assert linux["Devices"] == [{"HostPath": "/dev/kmsg", "ContainerPath": "/dev/kmsg", "Permissions": ["read"]}]
    assert container.get("Privileged") is not True
    # The result line must not be dropped when the log buffer fills (ECS's default mode is non-blocking).
    assert container["LogConfiguration"]["Options"]["mode"] == "blocking"


def test_console_url_follows_the_partition(template: Template) -> None:
    document = template.to_json()
    assert document["Mappings"]["Console"]["aws-cn"] == {"host": "console.amazonaws.cn"}
    url = json.dumps(document["Outputs"]["StateMachineConsoleUrl"]["Value"])
    assert '"Fn::FindInMap": ["Console", {"Ref": "AWS::Partition"}, "host"]' in url
    assert CONSOLE_HOSTS == NOTIFICATION_CONSOLE_HOSTS  # the Lambda asset cannot import infra/


def test_outputs(template: Template) -> None:
    assert set(template.to_json()["Outputs"]) == {
        "StateMachineArn", "StateMachineConsoleUrl", "TaskTableName", "JobTableName", "NodeTableName",
        "NotificationTopicArn", "DeadLetterQueueUrl", "CleanupDeadLetterQueueUrl", "ReadinessDeadLetterQueueUrl",
        "DcgmTaskDefinitionArn", "ManagedNodeTag", "CleanupFunctionArn", "AgentConnectedFunctionArn",
    }  # fmt: skip


def test_doctor_reads_only_outputs_the_stack_has(template: Template) -> None:
    # doctor FAILs a stack that lacks one of its OUTPUTS: each must be one the stack deploys.
    assert set(doctor.OUTPUTS) <= set(template.to_json()["Outputs"])


def _statements(resources: Resources) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            found += [(logical_id, s) for s in document["Statement"]]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else actions


def test_no_iam_policy_grants_a_wildcard_action(resources: Resources) -> None:
    statements = _statements(resources)
    assert statements
    offending = [(lid, a) for lid, s in statements for a in _actions(s) if "*" in a]
    assert not offending
    assert not [lid for lid, s in statements if "NotAction" in s]


def test_resource_policies_allow_no_wildcard_action(resources: Resources) -> None:
    # Deny statements (SSL enforcement) may name every action; nothing may be *allowed* by wildcard.
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        document = props.get("KeyPolicy") or (props.get("PolicyDocument") if "TopicPolicy" in resource["Type"]
                                               or "QueuePolicy" in resource["Type"] else None)  # fmt: skip
        for statement in (document or {}).get("Statement", []):
            if statement["Effect"] == "Allow":
                assert not [a for a in _actions(statement) if "*" in a], logical_id


def _role_statements(resources: Resources, role_prefix: str) -> list[dict[str, Any]]:
    (role_id,) = [lid for lid, r in of_type(resources, "AWS::IAM::Role").items() if lid.startswith(role_prefix)]
    return [
        s
        for p in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_state_machine_role_has_what_the_definition_uses(resources: Resources) -> None:
    actions = {a for s in _role_statements(resources, "WorkflowRole") for a in _actions(s)}
    assert {
        "lambda:InvokeFunction", "ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "events:PutTargets",
        "events:PutRule", "events:DescribeRule", "iam:PassRole", "ecs:UpdateContainerInstancesState",
        "ec2:RebootInstances", "dynamodb:GetItem",
        "dynamodb:UpdateItem", "sns:Publish", "kms:GenerateDataKey", "kms:Decrypt",
        "xray:PutTraceSegments", "logs:CreateLogDelivery",
    } <= actions  # fmt: skip
    assert "ec2:TerminateInstances" not in actions  # TERMINATE_QUARANTINED is off by default


def test_state_machine_ecs_actions_are_conditioned_on_the_cluster(resources: Resources) -> None:
    for statement in _role_statements(resources, "WorkflowRole"):
        actions = _actions(statement)
        if any(a in actions for a in ("ecs:RunTask", "ecs:StopTask", "ecs:UpdateContainerInstancesState")):
            assert "ecs:cluster" in statement["Condition"]["ArnEquals"], actions


def test_lambda_roles_are_least_privilege(resources: Resources) -> None:
    def actions(prefix: str) -> set[str]:
        return {a for s in _role_statements(resources, prefix) for a in _actions(s)}

    assert "ecs:RunTask" not in actions("StepsClassifyFailureRole")
    assert {
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:DescribeContainerInstances",
        "ecs:DescribeClusters",
        "ec2:DescribeNetworkInterfaces",
    } <= actions("StepsClassifyFailureRole")
    assert {"logs:GetLogEvents", "ecs:DescribeTaskDefinition"} <= actions("StepsAnalyzeDiagRole")
    assert {"ecs:RunTask", "ecs:TagResource", "iam:PassRole"} <= actions("StepsRestartJobRole")
    # LockNode asks whether a lock's owner still runs, of this state machine's executions only, and marks the
    # node it locks under repair; only a verified release clears the mark.
    assert {a for a in actions("StepsAcquireNodeRole") if not a.startswith(("dynamodb:", "xray:", "logs:"))} == {
        "states:DescribeExecution",
        "ecs:PutAttributes",
    }
    assert {a for a in actions("StepsRecordNodeStateRole") if not a.startswith(("dynamodb:", "xray:", "logs:"))} == {
        "ecs:DeleteAttributes"
    }
    assert {"ecs:UpdateContainerInstancesState", "sns:Publish"} <= actions("StepsCleanupExecutionRole")
    assert "ecs:RunTask" not in actions("StepsCleanupExecutionRole")
    for statement in _role_statements(resources, "StepsRestartJobRole"):
        if "iam:PassRole" in _actions(statement):
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_list_tasks_is_granted_on_any_resource_of_the_cluster(resources: Resources) -> None:
    # A ListTasks call naming no container instance is authorized against "*" (with the ecs:cluster key).
    (statement,) = [
        s for s in _role_statements(resources, "StepsClassifyFailureRole") if "ecs:ListTasks" in _actions(s)
    ]
    assert statement["Resource"] == "*"
    assert "ecs:cluster" in statement["Condition"]["ArnEquals"]


def test_every_step_lambda_can_write_its_own_logs(resources: Resources) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    for function in functions.values():
        props = function["Properties"]
        role_id = props["Role"]["Fn::GetAtt"][0]
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        grants = [
            s
            for s in _role_statements(resources, role_id)
            if {"Fn::GetAtt": [log_group_id, "Arn"]} in _listed(s["Resource"])
        ]
        assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= {a for s in grants for a in _actions(s)}, role_id


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
