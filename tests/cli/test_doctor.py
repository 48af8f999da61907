"""`gpu-recovery doctor` against a moto account laid out as the stack deploys it. moto has no IAM policy simulator,
so `simulate` is replaced by one that allows everything except what a test denies."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_helpers import CliRun
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends
from moto.ssm.models import Parameter, ssm_backends

from gpu_recovery.commands import doctor
from gpu_recovery.iam_calls import CALLS, STATE_MACHINE, actions
from infra.config import POWERTOOLS_LAYER_PARAMETER
from infra.substitutions import LAMBDAS

REGION = "us-east-1"
STACK = "EcsGpuRecoveryStack"
CLUSTER = "gpu-cluster"
LOG_GROUP = "/ecs/gpu-recovery-dcgm-check"
ROUTE_ROWS = ("rule", "dead-letter queue")
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "DRY_RUN": "false", "GPU_RESET_ENABLED": "false", "TERMINATE_QUARANTINED": "false",
    "DCGM_LOG_GROUP": LOG_GROUP, "DCGM_CONTAINER_NAME": "dcgm-check",
}  # fmt: skip


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("step.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _check_task(gpus: int, *, access: bool = True) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "dcgm-check",
        "image": "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04",
        "memoryReservation": 1024,
        "resourceRequirements": [{"type": "GPU", "value": str(gpus)}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": LOG_GROUP, "awslogs-stream-prefix": "dcgm", "mode": "blocking"},
        },
    }
    if access:
        container["linuxParameters"] = {
            "capabilities": {"add": ["SYS_ADMIN", "SYSLOG"]},
            "devices": [{"hostPath": "/dev/kmsg", "containerPath": "/dev/kmsg", "permissions": ["read"]}],
        }
    return container


def _route(rule: str, target: str, role: str | None) -> str:
    """An EventBridge rule as infra/trigger.py's rule_with_dead_letter_queue makes it: its target retries into an
    SSE-SQS dead-letter queue whose policy lets the rule send; a Lambda target lets the rule invoke it, a state
    machine target has a role. Returns the queue's URL."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.ecs"]}))["RuleArn"]
    url = sqs.create_queue(QueueName=f"{rule}-dlq", Attributes={"SqsManagedSseEnabled": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    send = {
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }  # fmt: skip
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [send]})})
    entry: dict[str, Any] = {"Id": "Target0", "Arn": target, "DeadLetterConfig": {"Arn": queue_arn}}
    if role:
        entry["RoleArn"] = role
    else:
        boto3.client("lambda").add_permission(
            FunctionName=target, StatementId=rule, Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com", SourceArn=rule_arn,
        )  # fmt: skip
    events.put_targets(Rule=rule, Targets=[entry])
    return str(url)


@pytest.fixture
def account() -> Iterator[dict[str, str]]:
    """Every resource doctor looks at, as the stack creates it, all healthy."""
    with mock_aws():
        iam, ecs, ec2 = boto3.client("iam"), boto3.client("ecs"), boto3.client("ec2")
        roles = {n: iam.create_role(RoleName=n, AssumeRolePolicyDocument="{}")["Role"]["Arn"] for n in ("sfn", "fn")}
        functions = {
            name: boto3.client("lambda").create_function(
                FunctionName=f"{STACK}-Steps{name}",
                Runtime="python3.12",
                Role=roles["fn"],
                Handler=f"{module}.handler",
                Code={"ZipFile": _zip()},
                Environment={"Variables": SETTINGS},
            )["FunctionArn"]
            for module, name in LAMBDAS.items()
        }
        cleanup, agent_connected = functions.pop("CleanupExecution"), functions.pop("AgentConnected")
        cluster = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
        for _ in range(2):
            instance = ec2.run_instances(
                ImageId="ami-0gpu",
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "gpu"}]}],
            )["Instances"][0]["InstanceId"]
            document = json.dumps({"instanceId": instance, "region": REGION})
            ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=document)
        for registered in ecs_backends[DEFAULT_ACCOUNT_ID][REGION].container_instances[CLUSTER].values():
            # moto ignores totalResources; ECS registers a GPU instance's GPUs as a STRINGSET named GPU.
            registered.registered_resources.append(
                {"name": "GPU", "type": "STRINGSET", "stringSetValue": [f"GPU-{i}" for i in range(8)]}
            )
        task_definition = ecs.register_task_definition(
            family="gpu-recovery-dcgm-check", containerDefinitions=[_check_task(8)]
        )["taskDefinition"]["taskDefinitionArn"]
        boto3.client("logs").create_log_group(logGroupName=LOG_GROUP)
        definition = {
            "StartAt": "ClassifyFailure",
            "States": {
                **{name: {"Type": "Task", "Resource": arn, "Next": "RunDcgmDiag"} for name, arn in functions.items()},
                "RunDcgmDiag": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::ecs:runTask.sync",
                    "Parameters": {"Cluster": cluster, "TaskDefinition": task_definition},
                    "End": True,
                },
            },
        }
        machine = boto3.client("stepfunctions").create_state_machine(
            name=f"{STACK}-recovery", definition=json.dumps(definition), roleArn=roles["sfn"]
        )["stateMachineArn"]
        queues = {
            rule: _route(rule, target, roles["sfn"] if rule == "TriggerRule" else None)
            for rule, target in (("TriggerRule", machine), ("ReadinessRule", agent_connected), ("CleanupRule", cleanup))
        }
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="ecs-gpu-recovery-notifications")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
        # PutParameter refuses names under /aws/ (reserved, as in AWS): put Powertools' public one in moto's store.
        ssm_backends[DEFAULT_ACCOUNT_ID][REGION]._parameters[POWERTOOLS_LAYER_PARAMETER].append(
            Parameter(
                account_id=DEFAULT_ACCOUNT_ID,
                name=POWERTOOLS_LAYER_PARAMETER,
                parameter_type="String",
                value=f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:18",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=0,
                version=1,
                data_type="text",
            )
        )
        outputs = {
            "StateMachineArn": machine, "TaskTableName": "ecs_task", "JobTableName": "ecs_job",
            "NodeTableName": "ecs_node", "NotificationTopicArn": topic,
            "DeadLetterQueueUrl": queues["TriggerRule"], "ReadinessDeadLetterQueueUrl": queues["ReadinessRule"],
            "CleanupDeadLetterQueueUrl": queues["CleanupRule"],
            "DcgmTaskDefinitionArn": task_definition, "ManagedNodeTag": "team=gpu", "CleanupFunctionArn": cleanup,
            "AgentConnectedFunctionArn": agent_connected,
        }  # fmt: skip
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        yield outputs


@pytest.fixture
def denied(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """(role name, action) pairs the fake simulator denies."""
    refused: set[tuple[str, str]] = set()

    def simulate(iam: Any, role_arn: str, actions: list[str], resource: str, context: dict[str, str]) -> list[str]:
        if {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:UpdateContainerInstancesState"} & set(actions):
            assert context["ecs:cluster"] == f"arn:aws:ecs:{REGION}:{DEFAULT_ACCOUNT_ID}:cluster/{CLUSTER}"
        if "ecs:TagResource" in actions:
            assert context["ecs:CreateAction"] == "RunTask"
        if ":instance/" in resource:
            assert context["aws:ResourceTag/team"] == "gpu"
        return [a for a in actions if (role_arn.rsplit("/", 1)[-1], a) in refused]

    monkeypatch.setattr(doctor, "simulate", simulate)
    return refused


def rows(out: str) -> dict[str, tuple[str, str]]:
    """CHECK -> (STATUS, rest of the line)."""
    found = {}
    for line in out.splitlines()[1:]:
        match = re.match(r"^(.+?)\s{2,}(PASS|WARN|FAIL)\s+(.*)$", line)
        assert match, line
        found[match.group(1)] = (match.group(2), match.group(3))
    return found


def test_a_healthy_deployment_passes_every_check(cli: CliRun, account: dict[str, str], denied: set[Any]) -> None:
    code, out, err = cli("doctor")
    assert (code, err) == (0, ""), out
    table = rows(out)
    assert {check: status for check, (status, _) in table.items()} == {
        "stack": "PASS", "step lambdas": "PASS", "settings": "PASS",
        **{f"permissions {p}": "PASS" for p in CALLS},
        "powertools layer": "PASS", "cluster": "PASS", "node tag": "PASS",
        "dcgm task": "PASS", "dcgm log group": "PASS",
        **{f"{route} {row}": "PASS" for route in ("trigger", "readiness", "cleanup") for row in ROUTE_ROWS},
        "notifications": "PASS",
    }  # fmt: skip
    assert "DRY_RUN=false, GPU_RESET_ENABLED=false, TERMINATE_QUARANTINED=false" in table["settings"][1]
    assert "2 GPU instances" in table["cluster"][1]


def test_each_problem_is_a_fail_with_its_fix(cli: CliRun, account: dict[str, str], denied: set[Any]) -> None:
    denied.add(("fn", "ecs:DescribeClusters"))
    boto3.client("events").disable_rule(Name="TriggerRule")
    boto3.client("sqs").send_message(QueueUrl=account["DeadLetterQueueUrl"], MessageBody="{}")
    sns = boto3.client("sns")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=account["NotificationTopicArn"])["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    boto3.client("logs").delete_log_group(logGroupName=LOG_GROUP)
    code, out, _ = cli("doctor")
    assert code == 1
    table = rows(out)
    assert table["permissions ClassifyFailure"][0] == "FAIL"
    assert (
        f"ecs:DescribeClusters on arn:aws:ecs:{REGION}:{DEFAULT_ACCOUNT_ID}:cluster/{CLUSTER}"
        in table["permissions ClassifyFailure"][1]
    )
    assert table["trigger rule"] == ("FAIL", table["trigger rule"][1])
    assert "TriggerRule disabled" in table["trigger rule"][1]
    assert table["trigger dead-letter queue"][0] == "FAIL"
    assert "1 messages: failure events could not start a recovery" in table["trigger dead-letter queue"][1]
    assert table["notifications"][0] == "FAIL"
    assert table["dcgm log group"][0] == "FAIL"
    assert table["permissions StateMachine"][0] == "PASS"


def findings(out: str, check: str) -> list[tuple[str, ...]]:
    """(STATUS, DETAIL, FIX) of every row of one check (a check may report several findings)."""
    return [
        (match.group(1), *re.split(r"\s{2,}", match.group(2).rstrip(), maxsplit=1))
        for line in out.splitlines()[1:]
        if (match := re.match(rf"^{re.escape(check)}\s{{2,}}(PASS|WARN|FAIL)\s+(.*)$", line))
    ]


def test_a_readiness_rule_that_is_disabled_or_has_no_dead_letter_queue_fails(
    cli: CliRun, account: dict[str, str], denied: set[Any]
) -> None:
    events = boto3.client("events")
    events.disable_rule(Name="ReadinessRule")
    (target,) = events.list_targets_by_rule(Rule="CleanupRule")["Targets"]
    del target["DeadLetterConfig"]
    events.put_targets(Rule="CleanupRule", Targets=[target])
    code, out, _ = cli("doctor")
    assert code == 1
    assert findings(out, "readiness rule") == [
        ("FAIL", f"no enabled rule targets {STACK}-StepsAgentConnected (ReadinessRule disabled)",
                 "aws events enable-rule --name <rule>, or deploy again"),
    ]  # fmt: skip
    assert findings(out, "cleanup rule") == [
        ("FAIL", "CleanupRule: its target has no dead-letter queue: an event it cannot deliver is lost", "deploy again")
    ]
    assert findings(out, "trigger rule") == [("PASS", f"TriggerRule enabled, targets {STACK}-recovery", "-")]


def test_a_dead_letter_queue_gone_unencrypted_or_closed_to_its_rule_fails(
    cli: CliRun, account: dict[str, str], denied: set[Any]
) -> None:
    sqs = boto3.client("sqs")
    sqs.delete_queue(QueueUrl=account["ReadinessDeadLetterQueueUrl"])
    sqs.set_queue_attributes(
        QueueUrl=account["CleanupDeadLetterQueueUrl"], Attributes={"SqsManagedSseEnabled": "false", "Policy": ""}
    )
    code, out, _ = cli("doctor")
    assert code == 1
    (gone,) = findings(out, "readiness dead-letter queue")
    assert gone[:2] == ("FAIL", f"{account['ReadinessDeadLetterQueueUrl']} does not exist")
    assert [(status, detail) for status, detail, _fix in findings(out, "cleanup dead-letter queue")] == [
        ("FAIL", "CleanupRule-dlq is not encrypted at rest"),
        ("FAIL", "CleanupRule-dlq's policy does not let CleanupRule send to it"),
    ]


def test_a_lambda_that_does_not_let_its_rule_invoke_it_fails(
    cli: CliRun, account: dict[str, str], denied: set[Any]
) -> None:
    boto3.client("lambda").remove_permission(
        FunctionName=account["AgentConnectedFunctionArn"], StatementId="ReadinessRule"
    )
    code, out, _ = cli("doctor")
    assert code == 1
    assert findings(out, "readiness rule") == [
        ("FAIL", f"ReadinessRule: {STACK}-StepsAgentConnected's resource policy does not let events.amazonaws.com "
                 "invoke it from this rule", "deploy again"),
    ]  # fmt: skip


QUEUE = "arn:aws:sqs:us-east-1:1:TriggerRule-dlq"


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        ({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:*",
          "Resource": QUEUE}, True),
        ({"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com"]}, "Action": ["sqs:SendMessage"],
          "Resource": QUEUE, "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:events:*:*:rule/Trigger*"}}}, True),
        ({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
          "Resource": QUEUE, "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/Other"}}},
         False),
        ({"Effect": "Deny", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
          "Resource": "*"}, False),
        ({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:SendMessage", "Resource": QUEUE}, False),
        ({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:ReceiveMessage",
          "Resource": QUEUE}, False),
        ({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
          "Resource": f"{QUEUE}-other"}, False),
    ],
)  # fmt: skip
def test_allows_reads_a_resource_policy_as_iam_matches_it(policy: dict[str, Any], allowed: bool) -> None:
    document = json.dumps({"Statement": [policy]})
    rule = "arn:aws:events:us-east-1:1:rule/TriggerRule"
    assert doctor.allows(document, "events.amazonaws.com", "sqs:SendMessage", QUEUE, rule) is allowed
    assert not doctor.allows(None, "events.amazonaws.com", "sqs:SendMessage", QUEUE, rule)


def test_cleanup_execution_role_and_untagged_instances_fail(
    cli: CliRun, account: dict[str, str], denied: set[Any]
) -> None:
    denied.add(("fn", "dynamodb:Scan"))  # only CleanupExecution scans
    ec2 = boto3.client("ec2")
    untagged = ec2.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    ec2.delete_tags(Resources=[untagged], Tags=[{"Key": "team"}])
    code, out, _ = cli("doctor")
    table = rows(out)
    assert code == 1
    assert table["permissions CleanupExecution"][0] == "FAIL"
    assert "dynamodb:Scan" in table["permissions CleanupExecution"][1]
    assert table["node tag"][0] == "FAIL"
    assert f"team=gpu missing on {untagged}" in table["node tag"][1]


def test_a_check_task_that_does_not_fit_or_cannot_read_the_kernel_log(
    cli: CliRun, account: dict[str, str], denied: set[Any]
) -> None:
    ecs = boto3.client("ecs")
    bigger = ecs.register_task_definition(
        family="gpu-recovery-dcgm-check", containerDefinitions=[_check_task(16, access=False)]
    )["taskDefinition"]["taskDefinitionArn"]
    boto3.client("cloudformation").update_stack(
        StackName=STACK,
        TemplateBody=json.dumps(
            {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {
                k: {"Value": bigger if k == "DcgmTaskDefinitionArn" else v} for k, v in account.items()
            }}
        ),
    )  # fmt: skip
    code, out, _ = cli("doctor")
    table = rows(out)
    assert code == 1
    assert table["dcgm task"][0] == "FAIL"
    assert "reserves 16 GPUs; the cluster's instances have [8]" in table["dcgm task"][1]
    assert "DCGM_GPU_COUNT=8" in table["dcgm task"][1]
    assert table["dcgm task access"][0] == "WARN"
    assert "SYSLOG, SYS_ADMIN, /dev/kmsg" in table["dcgm task access"][1]


def test_without_the_simulator_permissions_are_warnings(
    cli: CliRun, account: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any) -> list[str]:
        raise boto3.client("iam").exceptions.ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not allowed iam:SimulatePrincipalPolicy"}},
            "SimulatePrincipalPolicy",
        )

    monkeypatch.setattr(doctor, "simulate", refuse)
    code, out, _ = cli("doctor", "--json")
    assert code == 0
    checks = {row["check"]: row for row in json.loads(out)}
    assert checks["permissions StateMachine"]["status"] == "WARN"
    assert "AccessDenied" in checks["permissions StateMachine"]["detail"]


def test_no_stack_is_one_fail(cli: CliRun, denied: set[Any]) -> None:
    with mock_aws():
        code, out, _ = cli("doctor", "--stack-name", "Missing")
    assert code == 1
    assert rows(out)["stack"][0] == "FAIL"


def test_the_catalog_covers_every_call_of_the_definition() -> None:
    """Each integration of statemachine/recovery.asl.json has its IAM action in the state machine's catalog."""
    text = (ROOT / "statemachine" / "recovery.asl.json").read_text()
    integrations = set(re.findall(r'"arn:\$\{Partition\}:states:::(?:aws-sdk:)?([a-z0-9]+):([A-Za-z]+)', text))
    catalog = actions(STATE_MACHINE)
    # IAM's service prefix where the aws-sdk integration's differs (sfn:describeExecution is states:DescribeExecution).
    prefix = {"sfn": "states"}
    # The lambda:invoke integration (WaitForAgent's .waitForTaskToken) is authorized as lambda:InvokeFunction.
    action = {"lambda:Invoke": "lambda:InvokeFunction"}
    names = {f"{prefix.get(svc, svc)}:{api[0].upper()}{api[1:]}" for svc, api in integrations}
    missing = {action.get(name, name) for name in names} - catalog
    assert not missing


def test_permissions_page_lists_every_call_of_each_principal() -> None:
    sections = re.split(r"^### ", (ROOT / "docs" / "permissions.md").read_text(), flags=re.M)
    pages = {section.split(" ", 1)[0].split("\n", 1)[0]: section for section in sections[1:]}
    for principal in CALLS:
        missing = {action for action in actions(principal) if f"`{action}`" not in pages[principal]}
        assert not missing, f"docs/permissions.md, {principal}: {sorted(missing)}"


def test_a_policy_the_evaluator_cannot_read_is_that_checks_fail_not_a_traceback() -> None:
    document = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                          "NotAction": "sqs:ReceiveMessage", "Resource": QUEUE}]})  # fmt: skip

    def route() -> Iterator[doctor.Check]:
        doctor.allows(document, "events.amazonaws.com", "sqs:SendMessage", QUEUE, "arn:aws:events:us-east-1:1:rule/R")
        yield doctor.Check("route", doctor.PASS, "")

    (row,) = doctor._guarded(route, "trigger rule")
    assert (row.check, row.status) == ("trigger rule", doctor.FAIL)
    assert "NotAction" in row.detail
