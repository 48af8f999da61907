"""The SSM Command document ResetGpu sends (GPU_RESET_ENABLED): its only parameter is a validated list of GPU
indexes, so the state machine's ssm:SendCommand runs `nvidia-smi --gpu-reset` and nothing else, unlike
AWS-RunShellScript, which runs any shell command it is given.

Importable without aws_cdk: the local stack creates the same document in the local account.
"""

from __future__ import annotations

from typing import Any, Final

GPU_RESET_PARAMETER: Final = "gpuIndexes"
# Comma-separated GPU indexes, 0-99 each, at most 16 (the largest instance has 16 GPUs). Systems Manager checks a
# parameter against its allowedPattern when the command is sent and refuses the command otherwise (Systems Manager
# user guide, "Data elements and parameters": allowedPattern), so no other text can reach the script.
GPU_INDEX_LIST_PATTERN: Final = r"^[0-9]{1,2}(,[0-9]{1,2}){0,15}$"


def gpu_reset_document() -> dict[str, Any]:
    """The document's content (schema 2.2, one aws:runShellScript step). `set -e`: the first GPU that cannot be
    reset fails the command, which the workflow escalates to a reboot."""
    return {
        "schemaVersion": "2.2",
        "description": "ECS GPU Recovery: nvidia-smi --gpu-reset of the listed GPUs",
        "parameters": {
            GPU_RESET_PARAMETER: {
                "type": "String",
                "description": "GPU indexes to reset, comma-separated, e.g. 0,3",
                "allowedPattern": GPU_INDEX_LIST_PATTERN,
            }
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "resetGpus",
                "inputs": {
                    "runCommand": [
                        "set -e",
                        f"for index in $(echo '{{{{ {GPU_RESET_PARAMETER} }}}}' | tr ',' ' '); do "
                        'nvidia-smi --gpu-reset -i "$index"; done',
                    ]
                },
            }
        ],
    }
