"""ECS-like placement over GPU instances (gpu_recovery/sim/placement.py): fit, failure reasons, strategies."""

from __future__ import annotations

import pytest

from gpu_recovery.sim.placement import Candidate, Need, UnsupportedExpression, member_of, place


def node(name: str, gpus: int = 8, cpu: int = 98_304, memory: int = 1_000_000, group: int = 0, **kw) -> Candidate:
    return Candidate(f"arn:{name}", kw.pop("agent", True), gpus, cpu, memory, group, **kw)


ONE_GPU = Need(gpus=1, cpu=1024, memory=16_384)


def test_without_a_strategy_the_first_fitting_instance_in_cluster_order() -> None:
    assert place([node("a", gpus=0), node("b"), node("c")], ONE_GPU) == (1, [])


def test_nothing_fits_gives_each_instance_its_reason() -> None:
    candidates = [node("a", agent=False), node("b", gpus=0), node("c", cpu=0), node("d", memory=0)]
    index, failures = place(candidates, ONE_GPU)
    assert index is None
    assert [f["reason"] for f in failures] == ["AGENT", "RESOURCE:GPU", "RESOURCE:CPU", "RESOURCE:MEMORY"]
    assert failures[0]["arn"] == "arn:a"


def test_a_gpu_the_agent_cannot_hand_out_is_resource_gpu() -> None:
    assert place([node("a", refuses_gpus=True)], ONE_GPU)[1] == [{"arn": "arn:a", "reason": "RESOURCE:GPU"}]


def test_binpack_memory_takes_the_fullest_instance_that_still_fits() -> None:
    candidates = [node("a", memory=500_000), node("b", memory=20_000), node("c", memory=10_000)]
    assert place(candidates, ONE_GPU, [{"type": "binpack", "field": "memory"}]) == (1, [])


def test_spread_instance_id_takes_the_instance_with_fewest_tasks_of_the_group() -> None:
    candidates = [node("a", group=2), node("b", group=1), node("c", group=1)]
    assert place(candidates, ONE_GPU, [{"type": "spread", "field": "instanceId"}]) == (1, [])


def test_strategies_apply_in_order() -> None:
    candidates = [node("a", group=0, cpu=50_000), node("b", group=0, cpu=20_000), node("c", group=1, cpu=2_000)]
    strategies = [{"type": "spread", "field": "host"}, {"type": "binpack", "field": "cpu"}]
    assert place(candidates, ONE_GPU, strategies) == (1, [])


def test_member_of_evaluates_instance_ids_and_custom_attribute_presence() -> None:
    marked = {"gpu-recovery.under-repair": None}
    assert member_of("ec2InstanceId == i-1", "i-1", {})
    assert not member_of("ec2InstanceId == i-1", "i-2", {})
    assert member_of("attribute:ecs.instance-id in [i-2, i-3]", "i-3", {})
    assert member_of("attribute:gpu-recovery.under-repair !exists", "i-1", {})
    assert not member_of("attribute:gpu-recovery.under-repair !exists", "i-1", marked)
    assert member_of("attribute:gpu-recovery.under-repair exists", "i-1", marked)
    with pytest.raises(UnsupportedExpression):
        member_of("attribute:gpu-recovery.under-repair == yes", "i-1", marked)
