"""The IAM policies of the synthesized stack, resolved for the local engine: the same CDK app ``cdk synth`` builds
(infra/), with every intrinsic (Ref, Fn::GetAtt, Fn::Join, pseudo parameters) replaced by the name or ARN the
resource has in the local account. The local stack hands these to the engine's authorizer, so a grant missing from
infra/ fails a local run exactly where it would fail in AWS.

Synthesis takes about 17 s (jsii and its Node kernel), so each configuration's template is kept on disk in
``.cache/stack-templates/`` (gitignored), under a digest of everything the synth reads: the CDK app and what it
bundles, the definition, the libraries that render it and the configuration. Every process (the demo, each test
worker) then synthesizes a configuration at most once between changes to those inputs, and never reads a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from gpu_recovery.engine.iam_not_enforced import Principal, RuleTarget

_LAMBDA_FUNCTION: Final = "AWS::Lambda::Function"
# The local name of the stack's GPU reset document (CloudFormation would generate one).
GPU_RESET_DOCUMENT: Final = "GpuResetDocument"
# jsii prints an end-of-life banner for this machine's Node on every synth (see the Makefile); it changes nothing.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


ROOT: Final = Path(__file__).resolve().parent.parent
CACHE_DIR: Final = ROOT / ".cache" / "stack-templates"
# What `build_app` reads, relative to ROOT: the app and its constructs, the definition (infra/history_budget.py), the
# check's wrapper script (infra/dcgm_task.py), the Lambda code asset (infra/lambdas.py) and this module's main().
SYNTH_INPUTS: Final = (
    "app.py",
    "cdk.json",
    "infra",
    "statemachine",
    "dcgm-check",
    "functions",
    "gpu_recovery/stack_policies.py",
)
# The libraries that turn the app into a template (the CDK's own Node code is vendored in aws-cdk-lib).
SYNTH_LIBRARIES: Final = ("aws-cdk-lib", "constructs", "cdk-nag", "jsii")


def inputs_digest(root: Path = ROOT) -> str:
    """SHA-256 over every file the synth reads (path and content) and the versions of the libraries it runs."""
    digest = hashlib.sha256()
    for name in SYNTH_INPUTS:
        top = root / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" not in path.parts:
                content = path.read_bytes()
                digest.update(f"{path.relative_to(root).as_posix()}\0{len(content)}\0".encode())
                digest.update(content)
    for library in SYNTH_LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\0".encode())
    return digest.hexdigest()


@cache
def _inputs_digest() -> str:
    return inputs_digest()


@cache
def _template(context: str) -> dict[str, Any]:
    key = hashlib.sha256(f"{_inputs_digest()}\0{context}".encode()).hexdigest()
    cached = CACHE_DIR / f"{key}.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    text = _synthesize(context)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed into place (atomic on POSIX): a concurrent reader sees the whole file or none,
    # and two processes synthesizing the same configuration write the same bytes.
    with tempfile.NamedTemporaryFile("w", dir=CACHE_DIR, suffix=".tmp", delete=False) as partial:
        partial.write(text)
    Path(partial.name).replace(cached)
    return dict(json.loads(text))


def _synthesize(context: str) -> str:
    # In a child process: the CDK app (jsii and its Node kernel, thousands of objects) would otherwise stay in the
    # simulation's process and slow every execution that follows.
    synth = subprocess.run(
        [sys.executable, "-m", "gpu_recovery.stack_policies"],
        input=context,
        capture_output=True,
        text=True,
        check=False,
    )
    if synth.returncode != 0:
        raise RuntimeError(f"cdk synth for the local stack failed: {synth.stderr.strip().splitlines()[-1:]}")
    return synth.stdout


def synthesized_template(context: Mapping[str, Any]) -> dict[str, Any]:
    """The stack's CloudFormation template for this configuration (cdk context), cached."""
    return _template(json.dumps(dict(context), sort_keys=True))


class UnresolvedIntrinsic(ValueError):
    """The template uses an intrinsic or references a resource the local engine cannot name."""


@dataclass(frozen=True)
class StackPolicies:
    """Each role of the template: its ARN and the statements of the policies attached to it."""

    roles: dict[str, Principal]
    # Step Lambda handler module -> (role logical ID, log group name); the state machine's role logical ID.
    functions: dict[str, tuple[str, str]]
    state_machine_role: str
    # Target ARN -> how each EventBridge rule of the template is allowed to reach it.
    rule_targets: dict[str, RuleTarget]

    @classmethod
    def resolve(
        cls,
        template: Mapping[str, Any],
        region: str,
        account: str,
        function_names: Mapping[str, str],
        state_machine_name: str,
    ) -> StackPolicies:
        """``function_names`` maps a step Lambda's handler module to its local function name;
        ``state_machine_name`` is the local state machine's (CloudFormation would generate one)."""
        resources: dict[str, Any] = template["Resources"]
        names = _physical_names(resources, region, account, function_names, state_machine_name)
        resolver = _Resolver(names, region, account)
        statements: dict[str, list[dict[str, Any]]] = {
            lid: [s for p in r["Properties"].get("Policies", []) for s in resolver(p["PolicyDocument"])["Statement"]]
            for lid, r in resources.items()
            if r["Type"] == "AWS::IAM::Role"
        }
        for resource in resources.values():
            if resource["Type"] == "AWS::IAM::Policy":
                document = resolver(resource["Properties"]["PolicyDocument"])
                for role in resource["Properties"]["Roles"]:
                    statements[role["Ref"]] += document["Statement"]
        roles = {lid: Principal(names[lid]["Arn"], tuple(s)) for lid, s in statements.items()}
        functions = {
            r["Properties"]["Handler"].split(".")[0]: (
                r["Properties"]["Role"]["Fn::GetAtt"][0],
                resolver(r["Properties"]["LoggingConfig"]["LogGroup"]),
            )
            for r in resources.values()
            if r["Type"] == _LAMBDA_FUNCTION
        }
        (machine,) = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
        rule_targets = _rule_targets(resources, names, resolver, roles)
        return cls(roles, functions, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0], rule_targets)


def _rule_targets(
    resources: Mapping[str, Any], names: dict[str, dict[str, str]], resolver: _Resolver, roles: dict[str, Principal]
) -> dict[str, RuleTarget]:
    """Every target of every EventBridge rule: EventBridge reaches a target with the target's role (RoleArn; e.g.
    Step Functions) or, with none, through the target's resource-based policy (Lambda; EventBridge user guide,
    "Using resource-based policies for Amazon EventBridge"). A Lambda's policy holds one statement per
    AWS::Lambda::Permission, with SourceArn and SourceAccount as ``AWS:SourceArn``/``AWS:SourceAccount`` conditions
    (Lambda developer guide, "Viewing resource-based IAM policies in Lambda")."""
    permissions: dict[str, list[dict[str, Any]]] = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::Permission":
            props = resolver(resource["Properties"])
            condition = {"ArnLike": {"AWS:SourceArn": props["SourceArn"]}} if "SourceArn" in props else {}
            if "SourceAccount" in props:
                condition["StringEquals"] = {"AWS:SourceAccount": props["SourceAccount"]}
            statement = {
                "Effect": "Allow",
                "Principal": {"Service": props["Principal"]},
                "Action": props["Action"],
                "Resource": props["FunctionName"],
                "Condition": condition,
            }
            permissions.setdefault(props["FunctionName"], []).append(statement)
    targets: dict[str, RuleTarget] = {}
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        for target in resource["Properties"].get("Targets", []):
            arn = resolver(target["Arn"])
            role = roles[target["RoleArn"]["Fn::GetAtt"][0]] if "RoleArn" in target else None
            if role is None and ":lambda:" not in arn:
                raise UnresolvedIntrinsic(f"rule {lid}: target {arn} has no role and is not a Lambda function")
            targets[arn] = RuleTarget(names[lid]["Arn"], role, tuple(permissions.get(arn, ())))
    return targets


def _physical_names(
    resources: Mapping[str, Any],
    region: str,
    account: str,
    function_names: Mapping[str, str],
    state_machine_name: str,
) -> dict[str, dict[str, str]]:
    """Ref and Arn of each resource, as the local stack creates it (names CloudFormation would generate are
    replaced by the logical ID, or for the Lambdas and the state machine by their local names)."""

    def arn(service: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{account}:{resource}"

    names: dict[str, dict[str, str]] = {}
    for lid, resource in resources.items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::DynamoDB::Table":
            names[lid] = {"Ref": props["TableName"], "Arn": arn("dynamodb", f"table/{props['TableName']}")}
        elif kind == "AWS::SNS::Topic":
            topic = arn("sns", props["TopicName"])
            names[lid] = {"Ref": topic, "TopicArn": topic}
        elif kind == _LAMBDA_FUNCTION:
            name = function_names[props["Handler"].split(".")[0]]
            names[lid] = {"Ref": name, "Arn": arn("lambda", f"function:{name}")}
        elif kind == "AWS::Logs::LogGroup":
            group = props.get("LogGroupName", lid)
            # A log group's Arn attribute ends in ":*" (CloudFormation AWS::Logs::LogGroup return values).
            names[lid] = {"Ref": group, "Arn": arn("logs", f"log-group:{group}:*")}
        elif kind == "AWS::IAM::Role":
            names[lid] = {"Ref": lid, "Arn": f"arn:aws:iam::{account}:role/{lid}"}
        elif kind == "AWS::KMS::Key":
            names[lid] = {"Ref": lid, "Arn": arn("kms", f"key/{lid}")}
        elif kind == "AWS::ECS::TaskDefinition":
            names[lid] = {"Ref": arn("ecs", f"task-definition/{props['Family']}:1")}
        elif kind == "AWS::SSM::Document":
            names[lid] = {"Ref": GPU_RESET_DOCUMENT}
        elif kind == "AWS::SQS::Queue":
            names[lid] = {"Ref": lid, "Arn": arn("sqs", lid), "QueueName": lid}
        elif kind == "AWS::StepFunctions::StateMachine":
            names[lid] = {"Ref": arn("states", f"stateMachine:{state_machine_name}"), "Name": state_machine_name}
        elif kind == "AWS::Events::Rule":
            names[lid] = {"Ref": lid, "Arn": arn("events", f"rule/{lid}")}
    return names


class _Resolver:
    def __init__(self, names: dict[str, dict[str, str]], region: str, account: str) -> None:
        self.names = names
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._attribute(argument, "Ref")
            if key == "Fn::GetAtt":
                return self._attribute(argument[0], argument[1])
            if key == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self(p)) for p in parts)
            if key.startswith("Fn::"):
                raise UnresolvedIntrinsic(f"{key} is not resolved by gpu_recovery.stack_policies")
        return {k: self(v) for k, v in value.items()}

    def _attribute(self, logical_id: str, attribute: str) -> str:
        if attribute == "Ref" and logical_id in self.pseudo:
            return self.pseudo[logical_id]
        try:
            return self.names[logical_id][attribute]
        except KeyError:
            raise UnresolvedIntrinsic(f"{logical_id}.{attribute} has no local name") from None


def main() -> None:
    """``python -m gpu_recovery.stack_policies``: the context (JSON) on stdin, the stack's template on stdout."""
    from infra.application import build_app  # noqa: PLC0415 - the CDK app loads only in this child process

    app, stack = build_app(env={}, context=json.loads(sys.stdin.read()))
    json.dump(app.synth().get_stack_by_name(stack.stack_name).template, sys.stdout)


if __name__ == "__main__":
    main()
