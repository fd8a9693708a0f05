"""`dreamcore serve` with the one-shot training fault of tests/training_fault.py armed: the `served`
fixture runs `python -m tests.e2e.serve_with_training_fault serve ...` instead of `dreamcore serve ...`.

Prefect runs each flow run of a served deployment in a spawned process, and a spawned process
imports its parent's main module again (as `__mp_main__`, without running the `__main__` block).
So the fault is armed here, at import: in the serving process and in every flow-run process alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.training_fault import FAULT_FILE_ENV, install_training_fault

install_training_fault(Path(os.environ[FAULT_FILE_ENV]))

if __name__ == "__main__":
    from dreamcore.cli import main

    raise SystemExit(main(sys.argv[1:]))
