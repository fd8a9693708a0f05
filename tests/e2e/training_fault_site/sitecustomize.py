"""Arms the one-shot training fault of tests/training_fault.py in every Python process started with
this folder on PYTHONPATH and the fault file's path in DREAMCORE_TEST_TRAINING_FAULT_FILE.

The e2e `served` fixture sets both for `dreamcore serve`. Prefect runs each flow run of a served
deployment in a fresh `python -m prefect.engine` process that only the environment reaches, and
Python imports `sitecustomize` from sys.path when it starts: so the fault is armed there too,
without a hook in production code.
"""

import os
from pathlib import Path

from tests.training_fault import FAULT_FILE_ENV, install_training_fault

if os.environ.get(FAULT_FILE_ENV):
    install_training_fault(Path(os.environ[FAULT_FILE_ENV]))
