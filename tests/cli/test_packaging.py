"""The built wheel is one self-contained package: the CLI works from it outside the repository, with the step
code, the definition and the shipped scenarios inside, and without moto or the CDK for offline commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FIXTURES = ROOT / "tests" / "unit" / "fixtures"
# The local stack runs the fleet's own check task; the stack's own (dcgm-check/entrypoint.sh) is a deploy's.
DCGM_TASK = "arn:aws:ecs:us-east-1:123456789012:task-definition/gpu-recovery-dcgm-check:1"
SOURCES = ("pyproject.toml", "README.md", "gpu_recovery", "infra", "functions", "statemachine", "scenarios")


def test_every_python_package_is_packaged() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    mapped = {v: k for k, v in PYPROJECT["tool"]["setuptools"]["package-dir"].items()}
    found = set()
    for init in [*ROOT.glob("gpu_recovery/**/__init__.py"), *ROOT.glob("infra/**/__init__.py")]:
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    found |= {f"{mapped['functions']}.{p.parent.name}" for p in ROOT.glob("functions/*/__init__.py")}
    assert found <= listed


def test_operator_install_pulls_neither_the_cdk_nor_moto() -> None:
    base = " ".join(PYPROJECT["project"]["dependencies"])
    assert "aws-cdk-lib" not in base
    assert "moto" not in base
    assert any(d.startswith("moto[") for d in PYPROJECT["project"]["optional-dependencies"]["sim"])
    assert any(d.startswith("aws-cdk-lib==") for d in PYPROJECT["project"]["optional-dependencies"]["deploy"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources with the locked setuptools (no download)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    return next(out.glob("*.whl"))


@pytest.mark.slow
def test_wheel_carries_the_step_code_definition_and_scenarios(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "gpu_recovery/lambda_functions/classify_failure.py",
        "gpu_recovery/lambda_functions/recovery/models.py",
        "gpu_recovery/statemachine/recovery.asl.json",
        "gpu_recovery/scenarios/transient-xid79.yaml",
        "gpu_recovery/scenarios/scenario.schema.json",
        "gpu_recovery/py.typed",
    } <= names


@pytest.mark.slow
def test_the_installed_cli_works_offline_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    # -S: no site processing, so the repository's editable install is invisible; the dependencies come from
    # this environment's site-packages, the package only from the wheel.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]])
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    event = json.loads((FIXTURES / "task_stopped_gpu.json").read_text())
    (tmp_path / "event.json").write_text(json.dumps(event))
    cluster = event["detail"]["clusterArn"].rsplit("/", 1)[-1]
    script = (
        "import sys\n"
        "from gpu_recovery import cli, resources\n"
        "assert str(resources.DEFINITION).startswith(sys.argv[1]), resources.DEFINITION\n"
        "code = cli.main(sys.argv[2:])\n"
        "loaded = {m.split('.')[0] for m in sys.modules} & {'moto', 'aws_cdk'}\n"
        "print('LOADED', sorted(loaded), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-S", "-c", script, str(installed), *argv]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)

    version = run("--version")
    assert version.stdout.strip() == f"gpu-recovery {PYPROJECT['project']['version']}", version.stderr
    classify = run("classify", "event.json", "--offline", "--cluster", cluster, "--json")
    assert classify.returncode == 0, classify.stderr
    assert json.loads(classify.stdout)["decision"] == "RECOVER"
    assert "LOADED []" in classify.stderr
    diagnose = run("diagnose", str(FIXTURES / "dcgm" / "cases" / "v42_r2_pass.json"), "--exit-code", "0", "--json")
    assert diagnose.returncode == 0, diagnose.stderr
    assert json.loads(diagnose.stdout)["status"] == "HEALTHY"
    assert "LOADED []" in diagnose.stderr
    # Loading a scenario checks its configuration, and so the definition's worst-case history (infra reads it).
    scenario = (ROOT / "scenarios" / "transient-xid79.yaml").read_text().replace("{job: job-a,", "{job: job-b,")
    (tmp_path / "bad.yaml").write_text(scenario)
    invalid = run("simulate", "--scenario", "bad.yaml")
    assert (invalid.returncode, invalid.stdout) == (2, ""), invalid.stderr
    assert "job-b" in invalid.stderr
    assert "Traceback" not in invalid.stderr
    # simulate synthesizes the stack from the installed package (the CDK from this environment, as with [sim]).
    synth = subprocess.run(
        [sys.executable, "-S", "-m", "gpu_recovery.stack_policies"],
        input=json.dumps({"ECS_CLUSTER_NAME": cluster, "DCGM_HEALTH_CHECK_TASK": DCGM_TASK, "DCGM_LOG_GROUP": "/dcgm"}),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert synth.returncode == 0, synth.stderr[-2000:]
    assert "AWS::StepFunctions::StateMachine" in synth.stdout


@pytest.mark.parametrize(
    ("hide", "missing"),
    [
        ("sys.modules['moto'] = None\n", "moto"),
        # The CDK is only looked for (it synthesizes in a child process): hide it from find_spec.
        (
            "find_spec = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, *a: None if name == 'aws_cdk' else find_spec(name, *a)\n",
            "aws_cdk",
        ),
    ],
)
def test_simulate_without_the_sim_extra_says_what_to_install(hide: str, missing: str) -> None:
    script = f"import importlib.util, sys\n{hide}from gpu_recovery import cli\nsys.exit(cli.main(['simulate']))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"gpu-recovery simulate: needs the [sim] extra ({missing} is not installed): "
        "pipx install 'ecs-gpu-recovery[sim]' (or pip install 'ecs-gpu-recovery[sim]')"
    )


def test_the_sim_extra_brings_the_cdk() -> None:
    assert "ecs-gpu-recovery[deploy]" in PYPROJECT["project"]["optional-dependencies"]["sim"]
