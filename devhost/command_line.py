"""What the dev host's command lines share."""

from __future__ import annotations

import sys
from pathlib import Path


def program_name(module: str) -> str:
    """How the user started the program, for --help and messages: `python -m <module>` when run with -m,
    else the console script's own name (e.g. `functions-devhost`)."""
    script = Path(sys.argv[0]).name
    if script in ("__main__.py", f"{module.rsplit('.', 1)[-1]}.py"):
        return f"python -m {module}"
    return script or f"python -m {module}"
