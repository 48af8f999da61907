"""Local engine: the real ASL on moto's Step Functions interpreter, corrected where moto differs from AWS.

See docs/local-engine.md for each correction and how to remove it.
"""

from gpu_recovery.engine.engine import FUNCTIONS_DIR, LocalEngine
from gpu_recovery.engine.history_path import StateVisit

__all__ = ["FUNCTIONS_DIR", "LocalEngine", "StateVisit"]
