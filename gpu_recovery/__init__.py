"""ECS GPU Recovery: operator CLI and the local simulation of the recovery workflow."""

import sys
from pathlib import Path

# The simulator runs the step Lambdas' code in-process, and the Lambda asset root is functions/ (its shared
# package is imported as `recovery`, exactly as in Lambda).
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(FUNCTIONS_DIR))
