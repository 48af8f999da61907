"""Shared code of the step Lambdas: models, settings, pure policy, and the AWS adapters."""
