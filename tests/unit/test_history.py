"""The history reader on small hand-written histories: Map iterations (nested too), Parallel branches, retries,
failed and aborted executions, and the states after a Map whose end points into an iteration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gpu_recovery.asl import definition, enclosing
from gpu_recovery.commands.show import path_lines
from gpu_recovery.history import map_items, read

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def history(*events: tuple[str, int, dict[str, Any]]) -> list[dict[str, Any]]:
    """(type, previousEventId, details) per event; ids count from 1, one second apart."""
    return [
        {"id": i, "previousEventId": previous, "type": kind, "timestamp": EPOCH + timedelta(seconds=i), **details}
        for i, (kind, previous, details) in enumerate(events, start=1)
    ]


def entered(name: str, state_input: str = "{}") -> dict[str, Any]:
    return {"stateEnteredEventDetails": {"name": name, "input": state_input}}


def exited(name: str, output: str = "{}") -> dict[str, Any]:
    return {"stateExitedEventDetails": {"name": name, "output": output}}


def iteration(map_state: str, index: int) -> dict[str, Any]:
    return {"mapIterationStartedEventDetails": {"name": map_state, "index": index}}


def failed(kind: str, error: str, cause: str = "") -> dict[str, Any]:
    key = kind[0].lower() + kind[1:] + "EventDetails"
    return {key: {"error": error, "cause": cause}}


def task(name: str, next_state: str | None = None) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"} | (
        {"Next": next_state} if next_state else {"End": True}
    )


def map_of(states: dict[str, Any], start: str, next_state: str | None = None) -> dict[str, Any]:
    processor = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": start, "States": states}
    return {"Type": "Map", "ItemsPath": "$.job.nodes", "ItemProcessor": processor} | (
        {"Next": next_state} if next_state else {"End": True}
    )


# Nodes (a Map) checks each node with Check, then Done runs once.
FLAT = {"Nodes": map_of({"Check": task("Check")}, "Check", "Done"), "Done": task("Done")}


def large_map(nodes: str = "Nodes", check: str = "Check", done: str = "Done") -> list[dict[str, Any]]:
    """Two iterations, then the next state; the Map's end points at a state inside iteration 1 (moto does so with
    many iterations)."""
    return history(
        ("ExecutionStarted", 0, {}),
        ("MapStateEntered", 1, entered(nodes, '{"job": {"nodes": [{"id": "a"}, {"id": "b"}]}}')),  # 2
        ("MapStateStarted", 2, {}),  # 3
        ("MapIterationStarted", 3, iteration(nodes, 0)),  # 4
        ("MapIterationStarted", 3, iteration(nodes, 1)),  # 5
        ("TaskStateEntered", 4, entered(check, '{"node": {"ec2InstanceId": "i-0a"}}')),  # 6
        ("TaskStateEntered", 5, entered(check, '{"node": {"ec2InstanceId": "i-0b"}}')),  # 7
        ("TaskStateExited", 6, exited(check, '{"ok": 0}')),  # 8
        ("MapIterationSucceeded", 8, {}),  # 9
        ("TaskStateExited", 7, exited(check, '{"ok": 1}')),  # 10
        ("MapIterationSucceeded", 10, {}),  # 11
        ("MapStateSucceeded", 10, {}),  # 12: points into iteration 1
        ("MapStateExited", 12, exited(nodes)),  # 13
        ("TaskStateEntered", 13, entered(done)),  # 14
        ("TaskStateExited", 14, exited(done)),  # 15
        ("ExecutionSucceeded", 15, {}),  # 16
    )


def test_map_iterations_carry_their_map_and_index_and_pair_each_exit_with_its_own_entry() -> None:
    read_back = read(large_map(), FLAT)
    assert [(v.name, v.owner, v.iteration) for v in read_back.visits] == [
        ("Nodes", None, None),
        ("Check", "Nodes", 0),
        ("Check", "Nodes", 1),
        ("Done", None, None),
    ]
    nodes, check_0, check_1, _ = read_back.visits
    assert (nodes.seconds, check_0.output, check_1.output) == (11.0, {"ok": 0}, {"ok": 1})
    assert read_back.labels() == {(("Nodes", 0),): "i-0a", (("Nodes", 1),): "i-0b"}
    assert map_items(nodes, FLAT) == [{"id": "a"}, {"id": "b"}]
    assert (read_back.started, read_back.last_id, read_back.failures) == (EPOCH + timedelta(seconds=1), 16, [])


def test_the_state_after_a_large_map_is_shown_at_the_top_level_not_inside_an_iteration() -> None:
    """The old `show` walker followed the Map's end into iteration 1 and listed Done (here RestartJob) under it;
    the engine's walker did not. The shipped definition: CheckNodes holds RunDcgmDiag."""
    read_back = read(large_map("CheckNodes", "RunDcgmDiag", "RestartJob"))
    # Each path line: offset (8) and duration (7) columns, then the state indented by its depth.
    lines = [line[21:] for line in path_lines(read_back)[1:]]
    assert lines == ["CheckNodes", "  [i-0a]", "    RunDcgmDiag", "  [i-0b]", "    RunDcgmDiag", "RestartJob"]


def test_with_max_concurrency_an_iteration_chained_to_another_keeps_its_own_index_and_the_map_ends_on_top() -> None:
    """moto's history of a Map with MaxConcurrency 2 over 5 items (recorded from the local engine): a later
    iteration's MapIterationStarted chains to the last event of the iteration it replaces, and MapStateExited to
    the last iteration's end. The engine's old walker put the states after the Map in iteration 2 and never saw
    the Map exit (storm-125's StopJobTasks, MaxConcurrency 10); the reader takes, for each Map the definition
    puts a state in, the innermost iteration of that Map."""
    events = history(
        ("ExecutionStarted", 0, {}),
        ("MapStateEntered", 1, entered("Nodes")),  # 2
        ("MapStateStarted", 2, {}),  # 3
        ("MapIterationStarted", 3, iteration("Nodes", 0)),  # 4
        ("MapIterationStarted", 3, iteration("Nodes", 1)),  # 5
        ("PassStateEntered", 4, entered("Check")),  # 6
        ("PassStateExited", 6, exited("Check")),  # 7
        ("PassStateEntered", 5, entered("Check")),  # 8
        ("PassStateExited", 8, exited("Check")),  # 9
        ("MapIterationSucceeded", 7, iteration("Nodes", 0)),  # 10
        ("MapIterationStarted", 7, iteration("Nodes", 2)),  # 11
        ("MapIterationSucceeded", 9, iteration("Nodes", 1)),  # 12
        ("MapIterationStarted", 9, iteration("Nodes", 3)),  # 13
        ("PassStateEntered", 11, entered("Check")),  # 14
        ("PassStateExited", 14, exited("Check")),  # 15
        ("PassStateEntered", 13, entered("Check")),  # 16
        ("PassStateExited", 16, exited("Check")),  # 17
        ("MapIterationSucceeded", 15, iteration("Nodes", 2)),  # 18
        ("MapIterationStarted", 15, iteration("Nodes", 4)),  # 19
        ("MapIterationSucceeded", 17, iteration("Nodes", 3)),  # 20
        ("PassStateEntered", 19, entered("Check")),  # 21
        ("PassStateExited", 21, exited("Check")),  # 22
        ("MapIterationSucceeded", 22, iteration("Nodes", 4)),  # 23
        ("MapStateSucceeded", 23, {}),  # 24
        ("MapStateExited", 23, exited("Nodes")),  # 25
        ("PassStateEntered", 25, entered("Done")),  # 26
        ("PassStateExited", 26, exited("Done")),  # 27
        ("ExecutionSucceeded", 27, {}),  # 28
    )
    visits = read(events, FLAT).visits
    assert [(v.name, v.iteration, v.exited is not None) for v in visits] == [
        ("Nodes", None, True),
        ("Check", 0, True),
        ("Check", 1, True),
        ("Check", 2, True),
        ("Check", 3, True),
        ("Check", 4, True),
        ("Done", None, True),
    ]


def test_nested_maps_give_each_state_both_iterations_outermost_first() -> None:
    states = {"Jobs": map_of({"Nodes": map_of({"Check": task("Check")}, "Check")}, "Nodes")}
    events = history(
        ("ExecutionStarted", 0, {}),
        ("MapStateEntered", 1, entered("Jobs")),  # 2
        ("MapStateStarted", 2, {}),  # 3
        ("MapIterationStarted", 3, iteration("Jobs", 1)),  # 4
        ("MapStateEntered", 4, entered("Nodes")),  # 5
        ("MapStateStarted", 5, {}),  # 6
        ("MapIterationStarted", 6, iteration("Nodes", 2)),  # 7
        ("TaskStateEntered", 7, entered("Check")),  # 8
        ("TaskStateExited", 8, exited("Check")),  # 9
        ("MapIterationSucceeded", 9, {}),  # 10
        ("MapStateSucceeded", 10, {}),  # 11
        ("MapStateExited", 11, exited("Nodes")),  # 12
        ("MapIterationSucceeded", 12, {}),  # 13
        ("MapStateSucceeded", 13, {}),  # 14
        ("MapStateExited", 14, exited("Jobs")),  # 15
    )
    assert [(v.name, v.scope, v.exited is not None) for v in read(events, states).visits] == [
        ("Jobs", (), True),
        ("Nodes", (("Jobs", 1),), True),
        ("Check", (("Jobs", 1), ("Nodes", 2)), True),
    ]


def test_a_parallel_branch_index_comes_from_the_definition() -> None:
    states = {
        "Both": {
            "Type": "Parallel",
            "End": True,
            "Branches": [
                {"StartAt": "Left", "States": {"Left": task("Left")}},
                {"StartAt": "Right", "States": {"Right": task("Right")}},
            ],
        }
    }
    events = history(
        ("ExecutionStarted", 0, {}),
        ("ParallelStateEntered", 1, entered("Both")),  # 2
        ("ParallelStateStarted", 2, {}),  # 3
        ("TaskStateEntered", 3, entered("Right")),  # 4
        ("TaskStateEntered", 3, entered("Left")),  # 5
        ("TaskStateExited", 4, exited("Right")),  # 6
        ("TaskStateExited", 5, exited("Left")),  # 7
        ("ParallelStateSucceeded", 7, {}),  # 8
        ("ParallelStateExited", 8, exited("Both")),  # 9
    )
    assert [(v.name, v.owner, v.iteration) for v in read(events, states).visits] == [
        ("Both", None, None),
        ("Right", "Both", 1),
        ("Left", "Both", 0),
    ]
    assert enclosing(states) == {"Both": (), "Left": (("Both", 0),), "Right": (("Both", 1),)}


def test_a_retried_task_is_one_visit_whose_error_the_retry_made_good() -> None:
    events = history(
        ("ExecutionStarted", 0, {}),
        ("TaskStateEntered", 1, entered("Done")),  # 2
        ("TaskScheduled", 2, {}),  # 3
        ("TaskFailed", 3, failed("TaskFailed", "Lambda.TooManyRequestsException", "slow down")),  # 4
        ("TaskScheduled", 4, {}),  # 5
        ("TaskSucceeded", 5, {}),  # 6
        ("TaskStateExited", 6, exited("Done")),  # 7
        ("ExecutionSucceeded", 7, {}),  # 8
    )
    read_back = read(events, FLAT)
    [done] = read_back.visits
    assert (done.exited, done.error, done.cause) == (EPOCH + timedelta(seconds=7), None, None)
    [failure] = read_back.failures
    assert (failure.state, failure.error, failure.caught) == ("Done", "Lambda.TooManyRequestsException", True)


def test_a_failed_execution_names_the_state_and_iteration_that_failed() -> None:
    events = history(
        ("ExecutionStarted", 0, {}),
        ("MapStateEntered", 1, entered("Nodes")),  # 2
        ("MapStateStarted", 2, {}),  # 3
        ("MapIterationStarted", 3, iteration("Nodes", 0)),  # 4
        ("TaskStateEntered", 4, entered("Check")),  # 5
        ("TaskScheduled", 5, {}),  # 6
        ("TaskFailed", 6, failed("TaskFailed", "States.TaskFailed", "boom")),  # 7
        ("MapIterationFailed", 7, {}),  # 8
        ("MapStateFailed", 8, {}),  # 9
        ("ExecutionFailed", 9, failed("ExecutionFailed", "States.TaskFailed", "boom")),  # 10
    )
    read_back = read(events, FLAT)
    nodes, check = read_back.visits
    assert (check.scope, check.exited, check.error, check.cause) == ((("Nodes", 0),), None, "States.TaskFailed", "boom")
    assert nodes.exited is None
    assert [(f.state, f.scope, f.caught) for f in read_back.failures] == [
        ("Check", (("Nodes", 0),), True),
        ("Check", (), False),
    ]


def test_an_aborted_execution_leaves_its_state_open_and_says_where_it_stopped() -> None:
    events = history(
        ("ExecutionStarted", 0, {}),
        ("TaskStateEntered", 1, entered("Done")),  # 2
        ("TaskScheduled", 2, {}),  # 3
        ("ExecutionAborted", 3, {}),  # 4
    )
    read_back = read(events, FLAT)
    [done] = read_back.visits
    assert (done.exited, done.error) == (None, "ExecutionAborted")
    [failure] = read_back.failures
    assert (failure.state, failure.error, failure.caught) == ("Done", "ExecutionAborted", False)


def test_a_state_the_definition_does_not_have_keeps_the_iteration_the_history_gives() -> None:
    events = history(
        ("ExecutionStarted", 0, {}),
        ("MapStateEntered", 1, entered("Other")),  # 2
        ("MapStateStarted", 2, {}),  # 3
        ("MapIterationStarted", 3, iteration("Other", 4)),  # 4
        ("PassStateEntered", 4, entered("Unknown")),  # 5
    )
    assert [(v.name, v.scope) for v in read(events, FLAT).visits] == [("Other", ()), ("Unknown", (("Other", 4),))]


def test_the_shipped_maps_own_their_states() -> None:
    inside = enclosing(definition()["States"])
    assert inside["RunDcgmDiag"] == (("CheckNodes", None),)
    assert inside["StopJobTask"] == (("StopJobTasks", None),)
    assert inside["RestartJob"] == ()
