"""The error names a Task state can fail with, as Step Functions names them, derived from botocore's service models.

Step Functions names a service error ``<Service>.<Error>``; the error always ends in ``Exception`` (Step Functions
developer guide, "AWS SDK service integrations": "add the Exception suffix ... even if the suffix is not part of the
error name the service provides", e.g. ``S3.BucketAlreadyExistsException``). The service part is the PascalCase
service name for ``aws-sdk:`` integrations (``Ecs``, ``Ec2``, ``Ssm``) and the historical one for the optimized
integrations (``ECS``, ``DynamoDB``, ``SNS``, ``Lambda``). An error the service model does not declare for the
operation (ECS throttling, any EC2 error: the EC2 model declares no exceptions) gets the service's generic name:
``<Service>.<Service>Exception`` for ``aws-sdk:`` and the SDK's base exception for the optimized integrations
(``ECS.AmazonECSException``, ``DynamoDB.AmazonDynamoDBException``, ``SNS.AmazonSNSException``,
``Lambda.AWSLambdaException``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

import botocore.session

# Names the interpreter itself raises (Amazon States Language, "Errors"); Permissions, Runtime and DataLimitExceeded
# can end any Task, Timeout any Task with a timeout (and every .sync task has one here).
STATES_ERRORS: Final = frozenset(
    {"States.ALL", "States.TaskFailed", "States.Timeout", "States.Permissions", "States.Runtime",
     "States.DataLimitExceeded"}
)  # fmt: skip
# An integration's Resource in any partition (aws, aws-cn, aws-us-gov), or with the definition's ${Partition}
# placeholder before substitution: the error names do not depend on it.
_INTEGRATION: Final = re.compile(r"^arn:(?:[a-z-]+|\$\{Partition\}):states:::(?P<integration>.+)$")
# Optimized integrations: (botocore service, operation, error prefix, generic error).
_OPTIMIZED: Final = {
    "dynamodb:updateItem": ("dynamodb", "UpdateItem", "DynamoDB", "AmazonDynamoDBException"),
    "dynamodb:getItem": ("dynamodb", "GetItem", "DynamoDB", "AmazonDynamoDBException"),
    "sns:publish": ("sns", "Publish", "SNS", "AmazonSNSException"),
    "ecs:runTask.sync": ("ecs", "RunTask", "ECS", "AmazonECSException"),
}
# runTask.sync also fails when ECS places no task ("Run Amazon ECS or Fargate tasks with Step Functions": a non-empty
# Failures gives AmazonECS.Unknown) and when the task stops with a non-zero exit code (States.TaskFailed).
_RUN_TASK_SYNC_EXTRA: Final = frozenset({"AmazonECS.Unknown"})
# A Lambda function ARN as Resource is the lambda:invoke integration; the SDK client can also fail before the call,
# and the function itself can die (Lambda.Unknown, or the runtime's own errorType for a process that exited:
# Runtime.ExitError, which the integration passes on as the error name) or time out (Sandbox.Timedout).
_LAMBDA: Final = ("lambda", "Invoke", "Lambda", "AWSLambdaException")
_LAMBDA_EXTRA: Final = frozenset(
    {"Lambda.SdkClientException", "Lambda.Unknown", "Runtime.ExitError", "Sandbox.Timedout"}
)
_AWS_SDK: Final = re.compile(r"^aws-sdk:(?P<service>[a-z0-9]+):(?P<action>\w+)$")
# aws-sdk service names whose PascalCase is not the plain capitalisation (none used here yet besides these).
_SDK_PREFIX: Final = {"dynamodb": "DynamoDb"}
# aws-sdk service names that are not botocore's (the SDK for Java's client names, which Step Functions uses).
_BOTOCORE_SERVICE: Final = {"sfn": "stepfunctions"}


def _integration(resource: str) -> str:
    """``arn:<partition>:states:::sns:publish`` -> ``sns:publish``; a Lambda function ARN stays as it is."""
    match = _INTEGRATION.match(resource)
    return match["integration"] if match else resource


def exception_name(shape_name: str) -> str:
    return shape_name if shape_name.endswith("Exception") else f"{shape_name}Exception"


@cache
def _modelled(service: str, operation: str) -> frozenset[str]:
    model = botocore.session.get_session().get_service_model(service)
    return frozenset(exception_name(shape.name) for shape in model.operation_model(operation).error_shapes)


def sdk_prefix(service: str) -> str:
    """The service part of an ``aws-sdk:<service>:...`` error name: ``ecs`` -> ``Ecs``."""
    return _SDK_PREFIX.get(service, service.capitalize())


def generic_error(resource: str) -> str:
    """The name of an error the service model does not declare, for a Task with this Resource."""
    integration = _integration(resource)
    if integration in _OPTIMIZED:
        _, _, prefix, generic = _OPTIMIZED[integration]
        return f"{prefix}.{generic}"
    match = _AWS_SDK.match(integration)
    if match:
        prefix = sdk_prefix(match["service"])
        return f"{prefix}.{prefix}Exception"
    return f"{_LAMBDA[2]}.{_LAMBDA[3]}"


def service_errors(resource: str) -> frozenset[str]:
    """Every service error name a Task with this Resource can raise (``States.*`` and handler errors excluded)."""
    integration = _integration(resource)
    if integration in _OPTIMIZED:
        service, operation, prefix, _ = _OPTIMIZED[integration]
        extra = _RUN_TASK_SYNC_EXTRA if integration.endswith(".sync") else frozenset()
    elif match := _AWS_SDK.match(integration):
        service = _BOTOCORE_SERVICE.get(match["service"], match["service"])
        prefix, extra = sdk_prefix(match["service"]), frozenset()
        model = botocore.session.get_session().get_service_model(service)
        operation = next(name for name in model.operation_names if name.lower() == match["action"].lower())
    else:
        service, operation, prefix, _ = _LAMBDA
        extra = _LAMBDA_EXTRA
    return frozenset(f"{prefix}.{name}" for name in _modelled(service, operation)) | {generic_error(resource)} | extra


def integration_error(resource: str, error_class: str, modelled: bool) -> str:
    """The name Step Functions gives a service error: the modelled exception under the integration's prefix, or
    the generic name for an error the service model does not declare (botocore raises those as ClientError)."""
    integration = _integration(resource)
    if not modelled:
        return generic_error(resource)
    if integration in _OPTIMIZED:
        prefix = _OPTIMIZED[integration][2]
    elif match := _AWS_SDK.match(integration):
        prefix = sdk_prefix(match["service"])
    else:
        prefix = _LAMBDA[2]
    return f"{prefix}.{exception_name(error_class)}"
