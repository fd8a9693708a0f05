"""The start-up benchmark's own parts: a timed process reports the heavy modules it imported and the
moment a line appears, and the table has a column per checkout."""

import argparse
from pathlib import Path


def test_a_timed_process_reports_its_heavy_modules_and_the_line_it_waited_for():
    import startup

    code = "import json\nprint('train 1/4', flush=True)\n" + startup.LOADED.format(heavy=("json", "torch"))
    seconds, loaded = startup.timed(code, startup.environment(startup.REPOSITORY), until_line="train 1/")

    assert seconds > 0 and loaded == ["json"]


def test_the_table_has_a_column_per_tree():
    import startup

    args = argparse.Namespace(trees=[Path("/before"), Path("/after")], repeats=3)
    table = startup._table({"dreamcore --help": [(1.5, ["numpy"]), (0.4, [])]}, args)

    assert "| what | /before s | /after s | heavy modules imported |" in table
    assert "| dreamcore --help | 1.50 | 0.40 | numpy / none |" in table
