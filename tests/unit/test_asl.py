"""Structure of statemachine/recovery.asl.json."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gpu_recovery.asl import enclosing, walk_states
from gpu_recovery.engine.error_names import STATES_ERRORS, generic_error, service_errors
from gpu_recovery.executions import ACTION_STATES
from infra.substitutions import STEP_FUNCTIONS, SUBSTITUTION_KEYS, placeholders
from recovery.models import NodeAction, NodeStep

ROOT = Path(__file__).resolve().parents[2]
ASL_TEXT = (ROOT / "statemachine" / "recovery.asl.json").read_text()
ASL = json.loads(ASL_TEXT)
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
FUNCTION = re.compile(r"^\$\{(\w+)FunctionArn\}$")


INSIDE = enclosing(ASL["States"])
# Every state, nested ones included, with the Map (or Parallel) state it runs in.
ALL = {name: (dict(state), INSIDE[name][-1][0] if INSIDE[name] else None) for name, state in walk_states(ASL["States"])}


@pytest.mark.parametrize(
    "name", [n for n, (s, parent) in ALL.items() if parent == "CheckNodes" and s["Type"] == "Task"]
)
def test_every_node_step_has_its_own_catch(name: str) -> None:
    # One node's failing step must not fail the Map: every other node is mid-repair.
    (state, _) = ALL[name]
    assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name


def test_state_names_are_unique() -> None:
    assert len(ALL) == len(list(walk_states(ASL["States"])))


def test_every_placeholder_has_a_substitution() -> None:
    assert placeholders(ASL_TEXT) <= set(SUBSTITUTION_KEYS)
    assert placeholders(ASL_TEXT), "the definition uses no placeholders at all?"


def test_every_substitution_is_used() -> None:
    assert set(SUBSTITUTION_KEYS) <= placeholders(ASL_TEXT)


def test_every_arn_the_definition_builds_takes_the_partition() -> None:
    literal = sorted(set(re.findall(r'"(arn:aws[a-z-]*:[^"]*)"', ASL_TEXT)))
    assert not literal, f"use arn:${{Partition}}: in {literal}"


def lambda_states() -> list[tuple[str, dict[str, Any]]]:
    return [(n, s) for n, (s, _) in ALL.items() if s["Type"] == "Task" and FUNCTION.match(s["Resource"])]


@pytest.mark.parametrize(("name", "state"), lambda_states(), ids=[n for n, _ in lambda_states()])
def test_lambda_states_have_the_standard_retry(name: str, state: dict[str, Any]) -> None:
    retries = [r for r in state.get("Retry", []) if set(r["ErrorEquals"]) & LAMBDA_ERRORS]
    assert len(retries) == 1, name
    assert set(retries[0]["ErrorEquals"]) == LAMBDA_ERRORS
    assert len(retries[0]["ErrorEquals"]) == 4
    assert retries[0]["MaxAttempts"] >= 2


def handler_errors() -> set[str]:
    """Exception classes the step Lambdas define: a Lambda task fails with the class name as its error."""
    return {
        node.name
        for path in (ROOT / "functions").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(getattr(b, "id", "").endswith(("Exception", "Error")) for b in node.bases)
    }


def task_states() -> list[tuple[str, dict[str, Any]]]:
    return [(n, s) for n, (s, _) in ALL.items() if s["Type"] == "Task"]


@pytest.mark.parametrize(("name", "state"), task_states(), ids=[n for n, _ in task_states()])
def test_retry_and_catch_name_only_errors_the_task_can_raise(name: str, state: dict[str, Any]) -> None:
    resource = state["Resource"]
    possible = service_errors(resource) | STATES_ERRORS
    if FUNCTION.match(resource):
        possible |= handler_errors()
    named = {e for block in state.get("Retry", []) + state.get("Catch", []) for e in block["ErrorEquals"]}
    assert named <= possible, f"{name} names errors it cannot raise: {sorted(named - possible)}"


@pytest.mark.parametrize(("name", "state"), task_states(), ids=[n for n, _ in task_states()])
def test_service_integrations_retry_undeclared_errors(name: str, state: dict[str, Any]) -> None:
    # Throttling is undeclared for ECS, EC2, SSM and SNS Publish: it arrives under the service's generic name.
    if FUNCTION.match(state["Resource"]) or "states:::dynamodb:" in state["Resource"]:
        return
    retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
    assert generic_error(state["Resource"]) in retried, name


def test_dynamodb_integrations_retry_throttling() -> None:
    for name, state in task_states():
        if "states:::dynamodb:" in state["Resource"]:
            retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
            assert {"DynamoDB.ThrottlingException", "DynamoDB.ProvisionedThroughputExceededException"} <= retried, name


def test_error_names_follow_the_step_functions_convention() -> None:
    assert "Ecs.EcsException" in service_errors("arn:aws:states:::aws-sdk:ecs:stopTask")
    assert "Ecs.ThrottlingException" not in service_errors("arn:aws:states:::aws-sdk:ecs:stopTask")
    assert service_errors("arn:aws:states:::aws-sdk:ec2:rebootInstances") == {"Ec2.Ec2Exception"}
    assert "Ssm.InvocationDoesNotExistException" in service_errors("arn:aws:states:::aws-sdk:ssm:getCommandInvocation")
    assert {"ECS.AmazonECSException", "AmazonECS.Unknown", "ECS.ServerException"} <= service_errors(
        "arn:aws:states:::ecs:runTask.sync"
    )
    assert "DynamoDB.ConditionalCheckFailedException" in service_errors("arn:aws:states:::dynamodb:updateItem")


def catches_all(state: dict[str, Any]) -> bool:
    return any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", []))


def test_every_top_level_task_has_a_catch() -> None:
    for name, state in ASL["States"].items():
        if state["Type"] in ("Task", "Map", "Parallel"):
            assert catches_all(state), name


def test_every_task_inside_a_map_is_caught() -> None:
    for name, (state, parent) in ALL.items():
        if parent and state["Type"] == "Task":
            map_state = ALL[parent][0]
            assert catches_all(state) or any(
                c["Next"] == "HandleError" and "States.ALL" in c["ErrorEquals"] for c in map_state.get("Catch", [])
            ), name


def targets(state: dict[str, Any]) -> set[str]:
    found = {state.get("Next"), state.get("Default")}
    found |= {c["Next"] for c in state.get("Choices", [])}
    found |= {c["Next"] for c in state.get("Catch", [])}
    return {t for t in found if t}


def check_graph(start: str, states: dict[str, Any]) -> None:
    for name, state in states.items():
        assert targets(state) <= set(states), f"{name} -> {targets(state) - set(states)}"
        if state["Type"] not in ("Succeed", "Fail", "Choice"):
            assert state.get("End") or state.get("Next"), f"{name} neither ends nor goes on"
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += targets(states[name])
    assert seen == set(states), f"unreachable: {set(states) - seen}"


def test_graph_top_level() -> None:
    check_graph(ASL["StartAt"], ASL["States"])


def test_graph_inside_maps() -> None:
    maps = [s for s, _ in ALL.values() if s["Type"] == "Map"]
    assert maps
    for map_state in maps:
        processor = map_state.get("ItemProcessor") or map_state["Iterator"]
        check_graph(processor["StartAt"], processor["States"])


def test_every_choice_has_a_default() -> None:
    for name, (state, _) in ALL.items():
        if state["Type"] == "Choice":
            assert state.get("Default"), name


def test_dcgm_check_is_pinned_and_bounded() -> None:
    [state] = [s for s, _ in ALL.values() if s.get("Resource") == "arn:${Partition}:states:::ecs:runTask.sync"]
    params = state["Parameters"]
    [constraint] = params["PlacementConstraints"]
    assert constraint["Type"] == "memberOf"
    assert "ec2InstanceId ==" in constraint.get("Expression.$", constraint.get("Expression", ""))
    assert state["TimeoutSecondsPath"] == "$.settings.dcgmTimeoutSeconds"
    assert params["LaunchType"] == "EC2"
    env = params["Overrides"]["ContainerOverrides"][0]["Environment"]
    assert {"Name": "DCGM_DIAG_LEVEL", "Value.$": "$.settings.diagLevel"} in env
    # Both outcomes of the check reach the analyzer.
    assert state["Next"] == "AnalyzeDiag"
    assert [c["Next"] for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]] == ["AnalyzeDiag"]


def test_next_node_step_handles_every_node_step() -> None:
    choice = ALL["WhatDoesTheVerdictCallFor"][0]
    assert {c["StringEquals"] for c in choice["Choices"]} == {s.value for s in NodeStep}


def test_invalid_input_fails_by_name() -> None:
    catch = ASL["States"]["ClassifyFailure"]["Catch"][0]
    assert catch["ErrorEquals"] == ["InvalidInput"]
    assert ASL["States"][catch["Next"]]["Type"] == "Fail"


def docstring_steps() -> dict[str, set[str]]:
    """State names a handler module's docstring names before its colon ("LockNode: ...", "A / B / C: ...")."""
    found = {}
    # Step Lambdas only: CleanupExecution is invoked by an EventBridge rule, not by a state.
    for path in (ROOT / "functions").glob("*.py"):
        if path.stem not in STEP_FUNCTIONS:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        head = doc.split(":", 1)[0]
        found[path.stem] = {n.strip() for n in head.split("/")}
    return found


@pytest.mark.parametrize("module", sorted(docstring_steps()))
def test_docstring_step_names_exist_in_the_asl(module: str) -> None:
    names = docstring_steps()[module]
    assert names <= set(ALL), f"{module}: {names - set(ALL)}"


def test_docstring_states_call_their_module() -> None:
    arn = {
        "classify_failure": "ClassifyFailure",
        "acquire_node": "AcquireNode",
        "analyze_diag": "AnalyzeDiag",
        "record_node_state": "RecordNodeState",
        "restart_job": "RestartJob",
        "handle_error": "HandleError",
        "await_agent": "AwaitAgent",
    }
    for module, names in docstring_steps().items():
        for name in names:
            state = ALL[name][0]
            # A callback state invokes its Lambda through lambda:invoke.waitForTaskToken, by FunctionName.
            function = state.get("Parameters", {}).get("FunctionName", state["Resource"])
            assert function == f"${{{arn[module]}FunctionArn}}", (module, name)


def test_a_node_is_reactivated_only_immediately_before_its_check() -> None:
    # ECS places nothing on a DRAINING instance, the check included: reactivation must lead straight to the check
    # (which reserves every GPU), and nothing else may reactivate a node.
    reactivations = [n for n, (s, _) in ALL.items() if s.get("Parameters", {}).get("Status") == "ACTIVE"]
    assert sorted(reactivations) == ["ReactivateNode", "ReactivateNodeAfterGpuReset"]
    assert all(ALL[n][0]["Next"] == "RunDcgmDiag" for n in reactivations)


def test_destructive_node_steps_follow_a_check_of_ownership() -> None:
    guarded = {
        "DrainNode": "IsNodeStillOursToReboot",
        "DrainNodeForGpuReset": "IsNodeStillOursToReset",
        "DrainNodeForQuarantine": "WasQuarantineRecorded",
        "DrainHeldNode": "WasHoldRecorded",
        "DrainSuspectNode": "WasSuspectRecorded",
    }
    for drain, choice in guarded.items():
        assert ALL[choice][0]["Default"] == drain
        (lost,) = ALL[choice][0]["Choices"]
        assert lost["Next"] in {"NodeLockLost", "NodeChecked"}
    assert ALL["DrainNode"][0]["Next"] == "RebootInstance"
    assert ALL["DrainNodeForQuarantine"][0]["Next"] == "ShouldTerminateQuarantined"
    assert "TerminateInstance" not in {ALL["DrainHeldNode"][0]["Next"]}


def test_a_failed_result_notification_does_not_turn_the_job_into_an_error() -> None:
    (catch,) = ASL["States"]["NotifyRecoveryResult"]["Catch"]
    assert catch["Next"] == "ReleaseJobAfterNotificationFailed"
    assert ASL["States"]["ReleaseJobAfterNotificationFailed"]["Next"] == "NotificationFailed"
    assert ASL["States"]["NotificationFailed"]["Type"] == "Fail"


def test_a_failing_error_handler_still_alerts() -> None:
    for name in ("HandleError", "NotifyRecoveryError"):
        (catch,) = ASL["States"][name]["Catch"]
        assert catch["Next"] == "NotifyLastResort"
    assert ASL["States"]["NotifyLastResort"]["Resource"] == "arn:${Partition}:states:::sns:publish"


# Service steps that change nothing outside the workflow (they read, or run the check `show` lists under Verdicts).
NOT_ACTIONS = {
    "DescribeTaskBatch": "reads the job's tasks",
    "RunDcgmDiag": "the check: `show` lists its verdict",
    "GetGpuResetResult": "reads the SSM command's result",
}
SERVICE = re.compile(r":states:::(aws-sdk:)?(ecs|ec2|ssm|sns):")
RECORD_NODE_STATE = "${RecordNodeStateFunctionArn}"


def test_record_node_state_actions_are_the_node_actions() -> None:
    used = {s["Parameters"]["action"] for _, s in task_states() if s["Resource"] == RECORD_NODE_STATE}
    assert used == set(NodeAction)


def test_every_step_that_acts_is_an_action_show_reports() -> None:
    acting = {n for n, s in task_states() if SERVICE.search(s["Resource"]) or s["Resource"] == RECORD_NODE_STATE}
    assert set(NOT_ACTIONS) <= acting, "an exclusion names no ECS/EC2/SSM/SNS step"
    assert acting - set(NOT_ACTIONS) <= set(ACTION_STATES)
    assert set(ACTION_STATES) <= set(ALL), "ACTION_STATES names a state the definition lacks"


def test_the_only_wait_states_are_backoffs_between_observations() -> None:
    # Readiness after a reboot is a task token completed by the agent's reconnect (WaitForAgent), never a fixed
    # sleep; what is left spaces polls of an observed status or retries (docs/reliability.md, "Readiness").
    waits = {name for name, (state, _) in ALL.items() if state["Type"] == "Wait"}
    assert waits == {"PollTasksStopped", "WaitForGpuReset", "WaitBeforeRecheck", "WaitForOtherRepair"}


def test_wait_for_agent_times_out_into_quarantine() -> None:
    state, _ = ALL["WaitForAgent"]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert state["TimeoutSecondsPath"] == "$.reboot.agentTimeoutSeconds"
    (timeout,) = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.Timeout"]]
    assert timeout["Next"] == "AgentNeverReconnected"
    assert ALL["AgentNeverReconnected"][0]["Next"] == "QuarantineNode"
