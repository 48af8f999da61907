"""Readiness after a reboot (functions/recovery/readiness.py, await_agent.py, agent_connected.py): a reconnect
counts only after a disconnect seen since the reboot, a used token is fine, a lost node ends the wait at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from unittest import mock

from agent_connected import ContainerInstanceStateChange, on_agent_event
from await_agent import AgentWaitRequest, await_agent

from recovery.readiness import back_from_reboot

REBOOTED = "2026-01-01T00:02:00+00:00"
NODE = {"ec2InstanceId": "i-1", "containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/c/1"}


def at(minute: int) -> datetime:
    return datetime(2026, 1, 1, 0, minute, tzinfo=UTC)


def test_connected_alone_is_not_back() -> None:
    # Right after RebootInstances the agent still shows connected: no disconnect seen yet.
    assert not back_from_reboot({"reboots": [REBOOTED]}, at(3))


def test_a_disconnect_before_the_reboot_does_not_count() -> None:
    # The agent reconnects routinely; a disconnect older than the reboot belongs to an earlier one.
    assert not back_from_reboot({"reboots": [REBOOTED], "agentDownAt": "2026-01-01T00:01:00+00:00"}, at(5))


def test_connected_after_a_disconnect_since_the_reboot_is_back() -> None:
    state = {"reboots": [REBOOTED], "agentDownAt": "2026-01-01T00:02:30+00:00"}
    assert back_from_reboot(state, at(5))
    # EventBridge does not promise order: a connected event older than the disconnect proves nothing.
    assert not back_from_reboot(state, at(2))


def event(connected: bool, minute: int) -> ContainerInstanceStateChange:
    return ContainerInstanceStateChange.model_validate(
        {
            "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/c",
            "containerInstanceArn": NODE["containerInstanceArn"],
            "ec2InstanceId": "i-1",
            "agentConnected": connected,
            "updatedAt": f"2026-01-01T00:{minute:02d}:00.000Z",
        }
    )


def test_a_disconnect_is_recorded_and_the_reconnect_completes_the_token() -> None:
    tables, sfn = mock.Mock(), mock.Mock()
    assert not on_agent_event(event(False, 3), tables, sfn).completed
    tables.mark_agent_down.assert_called_once_with("i-1", "2026-01-01T00:03:00+00:00")
    tables.get_node.return_value = {
        "status": "REBOOTING",
        "reboots": [REBOOTED],
        "agentDownAt": "2026-01-01T00:03:00+00:00",
        "agentWaitToken": "token-1",
    }
    sfn.send_task_success.return_value = True
    assert on_agent_event(event(True, 6), tables, sfn).completed
    sfn.send_task_success.assert_called_once_with("token-1", json.dumps({"owned": True}))


def test_a_used_token_is_not_an_error() -> None:
    tables, sfn = mock.Mock(), mock.Mock()
    tables.get_node.return_value = {
        "status": "REBOOTING",
        "reboots": [REBOOTED],
        "agentDownAt": "2026-01-01T00:03:00+00:00",
        "agentWaitToken": "used",
    }
    sfn.send_task_success.return_value = False  # TaskDoesNotExist / TaskTimedOut / InvalidToken
    assert not on_agent_event(event(True, 6), tables, sfn).completed


def test_a_node_not_rebooting_is_left_alone() -> None:
    tables, sfn = mock.Mock(), mock.Mock()
    tables.get_node.return_value = {"status": "HEALTHY", "agentWaitToken": "old"}
    assert not on_agent_event(event(True, 6), tables, sfn).completed
    sfn.send_task_success.assert_not_called()


def request() -> AgentWaitRequest:
    return AgentWaitRequest.model_validate(
        {"node": NODE, "execution": {"id": "arn:exec", "name": "exec"}, "taskToken": "token-1"}
    )


def test_await_agent_on_a_lost_node_ends_the_wait_at_once() -> None:
    tables, ecs, sfn = mock.Mock(), mock.Mock(), mock.Mock()
    tables.update_node.return_value = False
    result = await_agent(request(), ecs, tables, sfn)
    assert (result.stored, result.completed) == (False, True)
    sfn.send_task_success.assert_called_once_with("token-1", json.dumps({"owned": False}))
    ecs.agent_connected.assert_not_called()


def test_await_agent_records_an_agent_already_down() -> None:
    tables, ecs, sfn = mock.Mock(), mock.Mock(), mock.Mock()
    tables.update_node.return_value = True
    ecs.agent_connected.return_value = False
    assert not await_agent(request(), ecs, tables, sfn).completed
    assert tables.update_node.call_args_list[-1].args[2].keys() == {"agentDownAt"}
    sfn.send_task_success.assert_not_called()


def test_await_agent_still_connected_waits_for_the_events() -> None:
    tables, ecs, sfn = mock.Mock(), mock.Mock(), mock.Mock()
    tables.update_node.return_value = True
    ecs.agent_connected.return_value = True
    tables.get_node.return_value = {"status": "REBOOTING", "reboots": [REBOOTED]}
    assert not await_agent(request(), ecs, tables, sfn).completed
    sfn.send_task_success.assert_not_called()
