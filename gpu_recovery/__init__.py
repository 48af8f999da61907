"""ECS GPU Recovery: operator CLI and the local simulation of the recovery workflow."""
