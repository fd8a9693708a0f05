"""The import-footprint benchmark records a real run's modules and prices them (dreamcore side; tests
never need the peer copy)."""


def test_a_run_is_recorded_and_its_module_set_priced(tmp_path, capsys, monkeypatch):
    import import_footprint

    monkeypatch.setitem(import_footprint.SETTINGS, "steps", 2)
    assert import_footprint.main(["--peer-dir", str(tmp_path / "no-peer"), "--workdir", str(tmp_path / "work"),
                                  "--models-dir", str(tmp_path / "models")]) == 0

    record = (tmp_path / "work" / "dreamcore" / "dreamcore-modules.json").read_text()
    assert '"dreamcore.train.trainer"' in record and '"pyarrow"' in record
    out = capsys.readouterr().out
    assert "no peer copy" in out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| dreamcore")]
    assert [row[0] for row in rows] == ["| dreamcore", "| dreamcore's modules without pyarrow"]
    imports = [float(row[3]) for row in rows]
    # the run worked above its imports, and pyarrow costs memory (both measured as each process's own peak: a
    # child of this large test process would otherwise report the test process's size)
    assert float(rows[0][2]) > imports[0] > imports[1]
    resident = {line.split(" | ")[0]: float(line.split(" | ")[1].strip(" |")) for line in out.splitlines()
                if line.startswith(("| anonymous", "| torch's", "| pyarrow's", "| total"))}
    assert resident["| pyarrow's libraries"] > 1 and resident["| torch's libraries"] > 10
    assert resident["| total"] > resident["| anonymous (heap, tensors, Python objects)"] > 100
    # writing the caches through rows_to_parquet keeps pandas out of the process
    assert '"pandas"' not in record


def test_resident_pages_are_grouped_by_the_package_that_maps_them():
    import import_footprint

    record = {"resident_kb": {"": 2048, "/venv/site-packages/torch/lib/libtorch_cpu.so": 1024,
                              "/venv/site-packages/pyarrow/libarrow.so.2600": 512, "/usr/lib/libc.so.6": 512}}

    assert list(import_footprint.resident_by_group(record).values()) == [2.0, 1.0, 0.5, 0.5]


def test_packages_only_one_tool_imported_are_listed_largest_first():
    import import_footprint

    records = {"dreamcore": {"modules": ["torch", "pyarrow", "pandas", "pandas.core", "pandas.io"]},
               "peer": {"modules": ["torch", "torchvision"]}}

    assert import_footprint.only_in(records, "dreamcore", "peer") == [("pandas", 3), ("pyarrow", 1)]
    assert import_footprint.only_in(records, "peer", "dreamcore") == [("torchvision", 1)]
