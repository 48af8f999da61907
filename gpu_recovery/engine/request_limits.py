"""Correction: moto accepts requests AWS refuses for their size.

moto 5.2.5 describes any number of ECS tasks or container instances in one call, runs any RunTask ``count``,
publishes SNS subjects and messages of any length, and starts executions under any name. AWS refuses them:

* ECS ``DescribeTasks`` and ``DescribeContainerInstances``: at most 100 IDs; ``RunTask`` ``count``: 1 to 10
  (Amazon ECS API Reference, the request parameters of each) -> ``InvalidParameterException``;
* SNS ``Publish``: a subject under 100 characters with no line breaks or control characters, a message of at
  most 256 KB (Amazon SNS API Reference, Publish) -> ``InvalidParameter``;
* Step Functions ``StartExecution``: a name of 1-80 characters; this project keeps to ``A-Z a-z 0-9 - _`` (the
  names CloudWatch Logs and metrics accept unchanged, Step Functions developer guide, "Naming") -> ``InvalidName``.

Every call is checked, whoever makes it: the limits are the service's. Remove when moto enforces them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from unittest import mock

from botocore.client import BaseClient

MAX_DESCRIBE_IDS: Final = 100
MAX_RUN_TASK_COUNT: Final = 10
MAX_SNS_SUBJECT: Final = 99
MAX_SNS_MESSAGE_BYTES: Final = 256 * 1024
EXECUTION_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def limit_violation(service: str, operation: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """(error code, message) when the request breaks a size limit of the service, else None."""
    if service == "ecs" and operation in ("DescribeTasks", "DescribeContainerInstances"):
        member = "tasks" if operation == "DescribeTasks" else "containerInstances"
        if len(params.get(member, [])) > MAX_DESCRIBE_IDS:
            return "InvalidParameterException", f"{member} can have at most {MAX_DESCRIBE_IDS} items"
    if service == "ecs" and operation == "RunTask" and not 1 <= params.get("count", 1) <= MAX_RUN_TASK_COUNT:
        return "InvalidParameterException", f"count must be between 1 and {MAX_RUN_TASK_COUNT}"
    if service == "sns" and operation == "Publish":
        subject = params.get("Subject")
        if subject is not None and (len(subject) > MAX_SNS_SUBJECT or _CONTROL.search(subject)):
            return "InvalidParameter", "Subject must be under 100 characters without line breaks or control characters"
        if len(str(params.get("Message", "")).encode()) > MAX_SNS_MESSAGE_BYTES:
            return "InvalidParameter", "Message too long"
    if service == "stepfunctions" and operation == "StartExecution":
        name = params.get("name")
        if name is not None and not EXECUTION_NAME.match(name):
            return "InvalidName", f"execution name {name!r} is not 1-80 of A-Z a-z 0-9 - _"
    return None


@contextmanager
def correct_request_limits_not_enforced() -> Iterator[None]:
    make_api_call = BaseClient._make_api_call

    def limited(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        violation = limit_violation(client.meta.service_model.service_name, operation, params)
        if violation is not None:
            code, message = violation
            response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
            raise client.exceptions.from_code(code)(response, operation)
        return make_api_call(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", limited):
        yield
