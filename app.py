#!/usr/bin/env python3
"""CDK entry point (cdk.json runs it). A bad setting prints one line and exits 2."""

from __future__ import annotations

import os
import sys

from infra.application import build_app
from infra.config import ConfigError


def main() -> int:
    try:
        app, _ = build_app(os.environ)
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
