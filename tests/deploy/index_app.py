"""Index function_app.py with Microsoft's Functions worker runtime and print what Azure's host would get.

Run with the Python 3.13 of .venv-py313, from the project root (the worker puts the app folder first on
sys.path, then imports function_app.py). Prints one JSON object: the Python version, and for each function
its name and the raw binding JSON the worker hands to the host (trigger type, route, methods, auth level).
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from azure_functions_runtime.loader import index_function_app

PROJECT = Path.cwd()


def main() -> None:
    sys.path.insert(0, str(PROJECT))
    functions = index_function_app(str(PROJECT / "function_app.py"))
    report = {
        "python": platform.python_version(),
        "functions": [
            {
                "name": function.get_function_name(),
                "bindings": [json.loads(binding) for binding in function.get_raw_bindings()],
            }
            for function in functions
        ],
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
