"""ECS GPU Recovery: operator CLI and the local simulation of the recovery workflow."""

import sys

from gpu_recovery.resources import FUNCTIONS_DIR

# The simulator runs the step Lambdas' code in-process, and the Lambda asset root is functions/ (its shared
# package is imported as `recovery`, exactly as in Lambda).
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(FUNCTIONS_DIR))
