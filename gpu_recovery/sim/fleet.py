"""The simulated ECS GPU fleet: one cluster of GPU container instances on moto, behaving like AWS.

moto's ECS places tasks anywhere with free CPU/memory, ignores placement constraints and GPUs, never reports
a placement failure, stops every task the first time it is described (exit code 0, no stop code) and lets
RebootInstances pass unnoticed. ``SimFleet`` patches those moto code paths for its own cluster (and only its
own) while it is entered, and restores them on exit.

Time is the shared ``SimClock``. Nothing here runs on a timer: whatever takes time (a DCGM check that runs
``diag_seconds``, a reboot that keeps the agent away ``reboot_seconds``) is settled lazily, in time order, each
time someone observes the fleet (DescribeTasks, ListTasks, DescribeContainerInstances, RunTask, ...).

By concern: where moto is patched (``moto_patches``, one table), the instances and their faults (``instances``),
the ECS task lifecycle (``tasks``), GPU resets over SSM (``ssm``), placement (``placement``) and the DCGM check's
output (``dcgm``) hold no state of their own. Every structure they touch belongs to the fleet and is touched
under its one lock (``SimFleet._lock``); this module orders what happens, when, and what it records.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.logs.models import logs_backends

from gpu_recovery.clock import SimClock, SimEvent
from gpu_recovery.sim import dcgm, instances, moto_patches, placement, ssm, tasks
from gpu_recovery.sim.agent_events import AgentEvents, AgentListener, container_instance_state_change
from gpu_recovery.sim.events import task_state_change
from gpu_recovery.sim.instances import Node
from gpu_recovery.sim.specs import JobSpec, NodeSpec, Timings
from gpu_recovery.sim.tasks import ESSENTIAL_EXITED, SIGKILL_EXIT, SIGTERM_EXIT, SimTask

DCGM_FAMILY = "gpu-recovery-dcgm-check"
DCGM_CONTAINER = "dcgm-check"
DCGM_LOG_GROUP = "/ecs/gpu-recovery-dcgm-check"
DCGM_STREAM_PREFIX = "dcgm"
JOB_STARTED_BY = "gpu-scheduler"
RUN_TASK_MAX_COUNT = 10  # RunTask `count`: "You can specify up to 10 tasks for each call" (ECS API reference)


@dataclass
class FleetActions:
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    timeline: list[tuple[float, str, str, str]] = field(default_factory=list)


class SimFleet:
    """Context manager: builds the cluster, nodes and jobs in moto and patches moto to behave like AWS."""

    def __init__(
        self,
        clock: SimClock,
        cluster_name: str,
        nodes: list[NodeSpec],
        jobs: list[JobSpec],
        timings: Timings | None = None,
        *,
        region: str = "us-east-1",
        dcgm_family: str = DCGM_FAMILY,
        diag_level: int = 2,
    ) -> None:
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique: {names}")
        for job in jobs:
            unknown = set(job.nodes) - set(names)
            if unknown:
                raise ValueError(f"job {job.name}: unknown nodes {sorted(unknown)}")
        self.clock = clock
        self.cluster_name = cluster_name
        self.region = region
        self.timings = timings or Timings()
        self.dcgm_family = dcgm_family
        self.diag_level = diag_level
        self.dcgm_log_group = DCGM_LOG_GROUP
        self.dcgm_container_name = DCGM_CONTAINER
        self.cluster_arn = ""
        self.dcgm_task_definition_arn = ""
        self._node_specs = nodes
        self._job_specs = jobs
        self._epoch = clock.now() - timedelta(seconds=clock.elapsed())
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._by_instance: dict[str, Node] = {}
        self._tasks: dict[str, SimTask] = {}
        self._tasks_by_id: dict[str, SimTask] = {}
        # Subsets of _tasks in its order, so that settling and placement need not scan every task of the cluster.
        self._checks: dict[str, SimTask] = {}
        self._tasks_on: dict[str, dict[str, SimTask]] = {}  # node name -> its tasks
        self._resets: dict[str, ssm.GpuReset] = {}  # SSM command id -> reset
        self._events: list[dict[str, Any]] = []
        self._actions = FleetActions()
        self._watchers: dict[tuple[str, str], SimEvent] = {}
        self._agent_events = AgentEvents(clock)
        self._recording = False  # setup (placing the initial jobs) is not something done *to* the fleet
        self._unpatch: Callable[[], None] = lambda: None
        self._backend: EC2ContainerServiceBackend | None = None
        self.account_id = ""

    # ----------------------------------------------------------------------------------------- public API

    def __enter__(self) -> SimFleet:
        self._unpatch = moto_patches.apply(self)
        try:
            self._build()
        except BaseException:
            self._unpatch()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._unpatch()

    def instance_id(self, node_name: str) -> str:
        with self._lock:
            return self._nodes[node_name].instance_id

    def instance_ids(self) -> list[str]:
        return [node.instance_id for node in self._nodes.values()]

    def node_name(self, instance_id: str) -> str:
        with self._lock:
            return self._by_instance[instance_id].spec.name

    def container_instance_arn(self, node_name: str) -> str:
        with self._lock:
            return str(self._nodes[node_name].ci.container_instance_arn)

    def job_tasks(self, job: str, node_name: str | None = None) -> list[str]:
        """ARNs of the job's RUNNING tasks (the job key is the RunTask ``group``), only those on ``node_name`` if
        given."""
        with self._lock:
            self._settle()
            tasks = self._tasks if node_name is None else self._tasks_on.get(node_name, {})
            return [
                arn
                for arn, st in tasks.items()
                if not st.is_check and st.task.group == job and st.task.last_status == "RUNNING"
            ]

    def fail_task(self, task_arn: str, exit_code: int = 1, reason: str | None = None) -> dict[str, Any]:
        """Make a running job task die (its essential container exits ``exit_code``) and return the
        "ECS Task State Change" event ECS emits for it. The event is handed to the caller only: it is not
        also queued for ``drain_events``, so it cannot be injected twice by accident."""
        with self._lock:
            self._settle()
            st = self._tasks.get(task_arn)
            if st is None or st.is_check or st.task.last_status != "RUNNING":
                raise ValueError(f"{task_arn} is not a running job task of this fleet")
            self._record("task_failed", st.task.group, f"{task_arn.rsplit('/', maxsplit=1)[-1]} exit {exit_code}")
            return self._stop(st, "EssentialContainerExited", ESSENTIAL_EXITED, exit_code, reason, queue=False)

    def drain_events(self) -> list[dict[str, Any]]:
        """Every task state change event ECS emitted since the last call (RUNNING on placement, STOPPED on
        stop): our DCGM checks (startedBy "AWS Step Functions"), tasks stopped by StopTask (UserInitiated),
        tasks killed by reboots and terminations. Not the events ``fail_task`` returned."""
        with self._lock:
            self._settle()
            events, self._events = self._events, []
            return events

    def actions(self) -> dict[str, dict[str, int]]:
        """What was done to the fleet: dcgm_checks, drains, reboots, terminations (per node name) and
        tasks_stopped, tasks_started (per job)."""
        with self._lock:
            keys = ("dcgm_checks", "drains", "reboots", "terminations", "tasks_stopped", "tasks_started")
            return {k: dict(self._actions.counts[k]) for k in keys}

    def gpu_resets(self) -> dict[str, int]:
        """GPU resets (SSM nvidia-smi --gpu-reset commands) per node name; also in the timeline as gpu_reset."""
        with self._lock:
            return dict(self._actions.counts["gpu_resets"])

    def timeline(self) -> list[tuple[float, str, str, str]]:
        """(sim seconds, action, node or job, detail), in the order things happened."""
        with self._lock:
            self._settle()
            return list(self._actions.timeline)

    def seen(self, action: str, target: str) -> SimEvent:
        """An event set once the timeline shows ``action`` on ``target`` (a node or job name)."""
        with self._lock:
            watcher = self._watchers.setdefault((action, target), self.clock.event())
            if any(a == action and t == target for _, a, t, _ in self._actions.timeline):
                watcher.set()
            return watcher

    def subscribe_agent_events(self, listener: AgentListener) -> None:
        """Call ``listener`` with each "ECS Container Instance State Change" of a rebooted node's agent, at the
        simulated moment it disconnects and reconnects (gpu_recovery/sim/agent_events.py)."""
        self._agent_events.subscribe(listener)

    def fault_active(self, node_name: str) -> bool:
        """Whether the node's fault is present now (what the next DCGM check would see)."""
        with self._lock:
            return instances.fault_active(self._nodes[node_name], self.clock.elapsed())

    # ----------------------------------------------------------------------------------------- building

    def _build(self) -> None:
        ecs = boto3.client("ecs", region_name=self.region)
        ec2 = boto3.client("ec2", region_name=self.region)
        logs = boto3.client("logs", region_name=self.region)
        self.cluster_arn = ecs.create_cluster(clusterName=self.cluster_name)["cluster"]["clusterArn"]
        self.account_id = self.cluster_arn.split(":")[4]
        self._backend = ecs_backends[self.account_id][self.region]
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=self.dcgm_log_group)
        self.dcgm_task_definition_arn = self._register_dcgm_task_definition(ecs)

        for spec in self._node_specs:
            instance = ec2.run_instances(
                ImageId="ami-0ecs0gpu0optimized",
                MinCount=1,
                MaxCount=1,
                InstanceType=spec.instance_type,
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": spec.name}]}],
            )["Instances"][0]
            instance_id = instance["InstanceId"]
            document = {
                "instanceId": instance_id,
                "instanceType": spec.instance_type,
                "region": self.region,
                "availabilityZone": instance["Placement"]["AvailabilityZone"],
                "accountId": self.account_id,
            }
            ci_arn = ecs.register_container_instance(
                cluster=self.cluster_name, instanceIdentityDocument=json.dumps(document)
            )["containerInstance"]["containerInstanceArn"]
            ci = self._backend.container_instances[self.cluster_name][ci_arn.split("/")[-1]]
            inventory = dcgm.gpu_inventory(instance_id, spec.gpus)
            node = Node(spec, instance_id, ci, inventory, [g["uuid"] for g in inventory])
            instances.register_resources(node)
            self._nodes[spec.name] = node
            self._by_instance[instance_id] = node

        for job in self._job_specs:
            self._start_job(ecs, job)
        self._events.clear()
        self._recording = True

    def _register_dcgm_task_definition(self, ecs: Any) -> str:
        gpus = max((n.gpus for n in self._node_specs), default=8)
        return str(
            ecs.register_task_definition(
                family=self.dcgm_family,
                requiresCompatibilities=["EC2"],
                networkMode="host",
                containerDefinitions=[
                    {
                        "name": DCGM_CONTAINER,
                        "image": "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04",
                        "essential": True,
                        "memory": 2048,
                        "command": ["dcgmi", "diag", "-r", str(self.diag_level), "-j"],
                        "resourceRequirements": [{"type": "GPU", "value": str(gpus)}],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": self.dcgm_log_group,
                                "awslogs-region": self.region,
                                "awslogs-stream-prefix": DCGM_STREAM_PREFIX,
                            },
                        },
                    }
                ],
            )["taskDefinition"]["taskDefinitionArn"]
        )

    def _start_job(self, ecs: Any, job: JobSpec) -> None:
        first = self._nodes[job.nodes[0]].spec
        gpus_per_task = job.gpus_per_task or max(first.gpus // job.tasks_per_node, 1)
        td_arn = ecs.register_task_definition(
            family=f"{job.name}-train",
            networkMode="host",
            containerDefinitions=[
                {
                    "name": "trainer",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:latest",
                    "essential": True,
                    "memory": 16384,
                    "resourceRequirements": [{"type": "GPU", "value": str(gpus_per_task)}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        for node_name in job.nodes:
            placed = 0
            while placed < job.tasks_per_node:
                count = min(job.tasks_per_node - placed, RUN_TASK_MAX_COUNT)
                response = ecs.run_task(
                    cluster=self.cluster_name,
                    taskDefinition=td_arn,
                    count=count,
                    group=job.name,
                    startedBy=JOB_STARTED_BY,
                    launchType="EC2",
                    placementConstraints=[
                        {"type": "memberOf", "expression": f"ec2InstanceId == {self.instance_id(node_name)}"}
                    ],
                )
                if response["failures"]:
                    raise ValueError(f"job {job.name} does not fit on {node_name}: {response['failures']}")
                placed += count

    # ----------------------------------------------------------------------------------------- moto's calls

    def owns(self, backend: Any, cluster: str) -> bool:
        """Whether a call on moto's ``backend`` is about this fleet's cluster (by name or ARN)."""
        return backend is self._backend and cluster.rsplit("/", maxsplit=1)[-1] == self.cluster_name

    def moto_list_tasks(self, list_tasks: Callable[..., Any], backend: Any, cluster: str, **params: Any) -> Any:
        with self._lock:
            self._settle()
            # AWS lists RUNNING tasks unless asked for STOPPED ones; moto lists everything.
            params["desiredStatus"] = params.get("desiredStatus") or "RUNNING"
            return list_tasks(backend, cluster, **params)

    def moto_describe_container_instances(self, describe: Callable[[], Any]) -> Any:
        """Describe calls report simulated time: bring our cluster up to now before moto answers."""
        # moto iterates the cluster's task dict: under the lock, so that no RunTask inserts meanwhile.
        with self._lock:
            self._settle()
            return describe()

    def moto_instances(self, backend: Any, instance_ids: list[str], action: str) -> None:
        """After moto rebooted or terminated EC2 instances: what that does to ours."""
        if self._backend is None or backend.account_id != self.account_id or backend.region_name != self.region:
            return
        with self._lock:
            self._settle()
            for instance_id in instance_ids:
                node = self._by_instance.get(instance_id)
                if node is not None and not node.terminated:
                    (self._reboot if action == "reboot" else self._terminate)(node)

    # ----------------------------------------------------------------------------------------- time

    def _at(self, seconds: float) -> datetime:
        return self._epoch + timedelta(seconds=seconds)

    def _settle(self) -> None:
        """Apply, in time order, everything that has happened by now: checks finishing, agents reconnecting."""
        now = self.clock.elapsed()
        while True:
            due: list[tuple[float, int, Any]] = []
            for st in self._checks.values():
                running = st.is_check and st.task.last_status == "RUNNING"
                if running and st.check_ends_at is not None and st.check_ends_at <= now:
                    due.append((st.check_ends_at, 0, st))
                if running and st.killed_at is not None and st.killed_at <= now:
                    due.append((st.killed_at, 2, st))
            for node in self._nodes.values():
                if node.reconnect_at is not None and node.reconnect_at <= now:
                    due.append((node.reconnect_at, 1, node))
            if not due:
                return
            at, kind, item = min(due, key=lambda d: (d[0], d[1]))
            if kind == 0:
                self._finish_check(item, at)
            elif kind == 2:  # a hung check SIGKILLed after its stopTimeout
                reason = item.task.stopped_reason
                self._stop(item, "UserInitiated", reason, SIGKILL_EXIT, None, at=at)
            else:
                item.reconnect_at = None
                item.ci.agent_connected = True
                self._record("agent_connected", item.spec.name, item.instance_id, at)

    # ----------------------------------------------------------------------------------------- API behaviour

    def moto_run_task(self, resp: EC2ContainerServiceResponse) -> Any:
        with self._lock:
            self._settle()
            backend = resp.ecs_backend
            td = backend.describe_task_definition(resp._get_param("taskDefinition"))
            constraints = resp._get_param("placementConstraints") or []
            strategies = resp._get_param("placementStrategy") or []
            requirements = backend._calculate_task_resource_requirements(td)
            cpu_memory = int(requirements.get("CPU") or 0), int(requirements.get("MEMORY") or 0)
            count = resp._get_int_param("count", 1) or 1
            group = resp._get_param("group") or f"family:{td.family}"
            is_check = td.family == self.dcgm_family
            tasks: list[Any] = []
            failures: list[dict[str, str]] = []
            for _ in range(count):
                node, reasons = self._choose_node(
                    td, cpu_memory, constraints, strategies, group=group, is_check=is_check
                )
                if node is None:
                    failures.extend(f for f in reasons if f not in failures)
                    continue
                tasks.append(
                    self._start_task(
                        backend, td, node, group, is_check,
                        overrides=resp._get_param("overrides") or {},
                        started_by=resp._get_param("startedBy") or "",
                        tags=resp._get_param("tags") or [],
                    )
                )  # fmt: skip
            return ActionResult({"tasks": tasks, "failures": failures})

    def _choose_node(
        self,
        td: Any,
        cpu_memory: tuple[int, int],
        constraints: list[dict[str, Any]],
        strategies: list[dict[str, Any]],
        *,
        group: str,
        is_check: bool,
    ) -> tuple[Node | None, list[dict[str, str]]]:
        """ECS placement: only ACTIVE instances are candidates; memberOf filters them (no match: "MemberOf placement
        constraint unsatisfied."); placement.place decides among them with the task's strategies, or says why
        each instance refuses (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html).
        The check needs every GPU of its node free, whatever its task definition says."""
        nodes = [n for n in self._nodes.values() if not n.terminated and n.ci.status == "ACTIVE"]
        for constraint in constraints:
            if constraint.get("type") == "memberOf":
                nodes = [n for n in nodes if instances.member_of(constraint.get("expression", ""), n)]
        if not nodes:
            if constraints:
                return None, [{"reason": "MemberOf placement constraint unsatisfied."}]
            return None, [{"reason": "No Container Instances were found in your cluster."}]
        need = placement.Need(0 if is_check else tasks.gpus_needed(td, nodes[0], is_check), *cpu_memory)
        now = self.clock.elapsed()
        candidates = [
            placement.Candidate(
                arn=n.ci.container_instance_arn,
                agent_connected=n.ci.agent_connected,
                free_gpus=len(n.free_gpus),
                free_cpu=instances.remaining(n, "CPU"),
                free_memory=instances.remaining(n, "MEMORY"),
                group_tasks=sum(1 for st in self._running_on(n) if st.task.group == group),
                # The check's faulty GPU is missing from what the agent hands out, so "all GPUs" never fits.
                refuses_gpus=is_check
                and (instances.behaviour(n, now).check_unplaceable or len(n.free_gpus) < n.spec.gpus),
            )
            for n in nodes
        ]
        index, failures = placement.place(candidates, need, strategies)
        return (None, failures) if index is None else (nodes[index], [])

    def _start_task(
        self,
        backend: Any,
        td: Any,
        node: Node,
        group: str,
        is_check: bool,
        *,
        overrides: dict[str, Any],
        started_by: str,
        tags: list[dict[str, str]],
    ) -> Any:
        requirements = backend._calculate_task_resource_requirements(td)
        now = self.clock.elapsed()
        at = self._at(now)
        gpus = tasks.gpus_needed(td, node, is_check)
        gpu_ids, node.free_gpus = node.free_gpus[:gpus], node.free_gpus[gpus:]
        task = tasks.new_task(
            backend, self.cluster_arn, td, node, requirements=requirements, gpu_ids=gpu_ids, at=at,
            group=group, overrides=overrides, started_by=started_by, tags=tags,
        )  # fmt: skip
        task.model_name = moto_patches.TASK_MODEL
        cpu = int(requirements.get("CPU") or 0)
        memory = int(requirements.get("MEMORY") or 0)
        backend.tasks.setdefault(self.cluster_name, {})[task.task_arn] = task
        st = SimTask(task, node, gpu_ids, cpu, memory, is_check, stop_timeout=tasks.stop_timeout(td))
        self._tasks[task.task_arn] = st
        self._tasks_by_id[task.id] = st
        self._tasks_on.setdefault(node.spec.name, {})[task.task_arn] = st
        if is_check:
            self._checks[task.task_arn] = st
        tasks.adjust_resources(node, st, -1)
        if is_check:
            self._begin_check(st, td, overrides, now)
        elif self._recording:
            self._actions.counts["tasks_started"][group] += 1
            self._record("task_started", group, f"{task.id} on {node.spec.name}")
        self._emit(task, at)
        return task

    def _begin_check(self, st: SimTask, td: Any, overrides: dict[str, Any], now: float) -> None:
        node = st.node
        st.check_level = tasks.diag_level(td, overrides, self.diag_level)
        hangs = instances.behaviour(node, now).check_hangs
        st.check_ends_at = None if hangs else now + self.timings.diag_seconds
        options = (td.container_definitions[0].get("logConfiguration") or {}).get("options") or {}
        st.log_group = options.get("awslogs-group", self.dcgm_log_group)
        prefix = options.get("awslogs-stream-prefix", DCGM_STREAM_PREFIX)
        # The awslogs driver names streams prefix/container-name/task-id and creates them at container start.
        st.log_stream = f"{prefix}/{st.task.containers[0].name}/{st.task.id}"
        self._write_logs(st, dcgm.start_lines(node.spec.gpus, st.check_level), now)
        self._actions.counts["dcgm_checks"][node.spec.name] += 1
        self._record("dcgm_check_started", node.spec.name, f"{st.task.id}{' (hangs)' if hangs else ''}", now)

    def _finish_check(self, st: SimTask, at: float) -> None:
        node = st.node
        kind = instances.active_kind(node, st.check_ends_at if st.check_ends_at is not None else at)
        bad = node.spec.fault.gpus if node.spec.fault else []
        output = dcgm.run_check(node.inventory, st.check_level, kind, bad)
        self._write_logs(st, output.lines, at)
        if output.exit_code == 0 and node.cleared:
            node.healthy_checks_since_clear += 1
        self._record("dcgm_check_finished", node.spec.name, f"{st.task.id} exit {output.exit_code}", at)
        self._stop(st, "EssentialContainerExited", ESSENTIAL_EXITED, output.exit_code, None, at=at)

    def moto_describe_tasks(self, ids: list[str]) -> list[Any]:
        """moto compares every requested ARN with every task of every cluster (by substring); ECS looks the tasks
        up in the named cluster, by ARN or ID, and answers in request order."""
        if not ids:
            raise InvalidParameterException("Tasks cannot be empty.")
        with self._lock:
            self._settle()
            found = (self._tasks_by_id.get(arn.rsplit("/", maxsplit=1)[-1]) for arn in ids)
            return [st.task for st in found if st is not None]

    def moto_stop_task(self, task_str: str, reason: str) -> Any:
        with self._lock:
            self._settle()
            st = self._tasks_by_id.get(task_str.rsplit("/", maxsplit=1)[-1])
            if st is None:
                raise InvalidParameterException(f"The referenced task was not found: {task_str}")
            if st.task.last_status == "STOPPED" or st.killed_at is not None:
                return st.task  # AWS answers StopTask on a stopped (or stopping) task with the task, unchanged
            if st.is_check and st.check_ends_at is None:
                # A hung dcgmi ignores SIGTERM: ECS SIGKILLs it after the container's stopTimeout. Until then the
                # task keeps its GPUs, RUNNING with desiredStatus STOPPED.
                self._record("dcgm_check_stopped", st.node.spec.name, st.task.id)
                st.killed_at = self.clock.elapsed() + st.stop_timeout
                st.task.desired_status = "STOPPED"
                st.task.stopped_reason = reason or "Task stopped by user"
                st.task.stopping_at = self._at(self.clock.elapsed())
                return st.task
            if st.is_check:
                self._record("dcgm_check_stopped", st.node.spec.name, st.task.id)
                exit_code: int | None = SIGTERM_EXIT
            else:
                self._actions.counts["tasks_stopped"][st.task.group] += 1
                self._record("task_stopped", st.task.group, f"{st.task.id} ({reason or 'no reason'})")
                exit_code = SIGTERM_EXIT
            self._stop(st, "UserInitiated", reason or "Task stopped by user", exit_code, None)
            return st.task

    def moto_update_container_instances_state(self, update: Callable[[], Any], ids: list[str], status: str) -> Any:
        with self._lock:
            self._settle()
            wanted = {i.split("/")[-1] for i in ids}
            nodes = [n for n in self._nodes.values() if n.ci.container_instance_arn.split("/")[-1] in wanted]
            result, failures = update()
            for node in nodes:
                if node.terminated:
                    node.ci.status = "INACTIVE"  # a deregistered instance cannot be drained or reactivated
                    continue
                if status.upper() == "DRAINING":
                    self._actions.counts["drains"][node.spec.name] += 1
                self._record(f"set_{status.lower()}", node.spec.name, node.instance_id)
            return result, failures

    def _reboot(self, node: Node) -> None:
        now = self.clock.elapsed()
        never = instances.behaviour(node, now).agent_never_returns
        self._actions.counts["reboots"][node.spec.name] += 1
        self._record("reboot", node.spec.name, node.instance_id + (" (never returns)" if never else ""), now)
        for st in self._running_on(node):
            # The OS shutdown SIGTERMs the containers; the agent reports them exited when it is back.
            self._stop(st, "EssentialContainerExited", ESSENTIAL_EXITED, SIGTERM_EXIT, None)
        instances.reboot(node, now, self.timings.reboot_seconds, never_returns=never)
        assert node.reconnect_at is not None  # a rebooted instance comes back at a time (inf: never)
        self._agent_events.rebooted(lambda: self._agent_event(node), node.reconnect_at)

    def moto_send_command(self, backend: Any, command: Any) -> None:
        """SSM Run Command of the stack's GPU reset document on our instances (gpu_recovery.sim.ssm)."""
        if backend.account_id != self.account_id or backend.region_name != self.region:
            return
        gpus = ssm.reset_gpus(command)
        if not gpus:
            return
        with self._lock:
            self._settle()
            now = self.clock.elapsed()
            for instance_id in command.instance_ids:
                node = self._by_instance.get(instance_id)
                if node is None or node.terminated:
                    continue
                done = self._resets[command.command_id] = ssm.reset(node, gpus, now, self.timings.reset_seconds)
                self._actions.counts["gpu_resets"][node.spec.name] += 1
                listed = ",".join(str(i) for i in gpus)
                self._record("gpu_reset", node.spec.name, f"GPU {listed} {'ok' if done.succeeded else 'failed'}", now)

    def moto_command_invocation(self, command_id: str, invocation: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            done = self._resets.get(command_id)
            return invocation if done is None else ssm.invocation(done, self.clock.elapsed(), invocation)

    def _agent_event(self, node: Node) -> dict[str, Any] | None:
        with self._lock:
            self._settle()
            if node.terminated:
                return None
            at = self._at(self.clock.elapsed())
            return container_instance_state_change(node.ci, self.cluster_arn, self.account_id, self.region, at)

    def _terminate(self, node: Node) -> None:
        self._actions.counts["terminations"][node.spec.name] += 1
        self._record("terminate", node.spec.name, node.instance_id)
        for st in self._running_on(node):
            reason = f"Host EC2 (instance {node.instance_id}) terminated."
            self._stop(st, "TerminationNotice", reason, None, None)
        instances.terminate(node)

    # ----------------------------------------------------------------------------------------- helpers

    def _running_on(self, node: Node) -> Iterator[SimTask]:
        on_node = self._tasks_on.get(node.spec.name, {}).values()
        return iter([s for s in on_node if s.task.last_status == "RUNNING"])

    def _stop(
        self,
        st: SimTask,
        stop_code: str,
        reason: str,
        exit_code: int | None,
        container_reason: str | None,
        *,
        at: float | None = None,
        queue: bool = True,
    ) -> dict[str, Any]:
        when = self._at(self.clock.elapsed() if at is None else at)
        tasks.mark_stopped(st, stop_code, reason, exit_code=exit_code, container_reason=container_reason, when=when)
        tasks.adjust_resources(st.node, st, +1)
        event = task_state_change(st.task, self.account_id, self.region, when)
        if queue:
            self._events.append(event)
        return event

    def _emit(self, task: Any, at: datetime) -> None:
        self._events.append(task_state_change(task, self.account_id, self.region, at))

    def _write_logs(self, st: SimTask, lines: list[str], at: float) -> None:
        backend = logs_backends[self.account_id][self.region]
        if st.log_group not in backend.groups:
            backend.create_log_group(st.log_group, {})
        group = backend.groups[st.log_group]
        if st.log_stream not in group.streams:
            group.create_log_stream(st.log_stream)
        millis = int(self._at(at).timestamp() * 1000)
        # Straight into the group: moto's PutLogEvents drops events older than 14 days of *real* time.
        group.put_log_events(st.log_stream, [{"timestamp": millis, "message": line} for line in lines])

    def _record(self, action: str, target: str, detail: str, at: float | None = None) -> None:
        if self._recording:
            self._actions.timeline.append((self.clock.elapsed() if at is None else at, action, target, detail))
            watcher = self._watchers.get((action, target))
            if watcher is not None:
                watcher.set()
