"""Structure of ``fastgd bench`` on tiny sizes: keys, types, backends, ratios,
files. Never timings: the figures depend on the machine and its load."""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest

import fastgd
from fastgd import bench, cli

TINY = dict(sizes=[100, 400], features=[1, 3], dtypes=["float64", "float32"], repeats=1, progress=False,
            budget_s=0.5, small=False)
RECORD_KEYS = {
    "kind": str, "impl": str, "kernel": str, "dtype": str, "n_features": int, "n_samples": int,
    "rows_run": int, "fit_intercept": bool, "bytes": int, "repeats": int, "times_s": list, "median_s": float,
    "min_s": float, "max_s": float, "spread": float, "ns_per_sample": float, "min_ns_per_sample": float,
    "gb_per_s": float, "ratios": dict,
}


def _available_cpu_backends():
    return [info.name for info in fastgd.backends() if info.available and info.name != "cuda"]


@pytest.fixture(scope="module")
def report():
    return bench.run_matrix(peers=bench.available_peers(), **TINY)


def test_report_top_level(report):
    assert {"machine", "settings", "results", "skipped", "targets", "load_average", "started",
            "elapsed_s"} <= set(report)
    machine = report["machine"]
    for key in ("cpu", "cores", "memory_bytes", "versions", "threads", "date"):
        assert key in machine
    assert isinstance(machine["cpu"], str) and machine["cpu"]
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert machine["versions"]["numpy"]
    assert "numba" in machine["threads"]
    json.dumps(report)  # everything is plain JSON


def test_records_have_every_figure(report):
    assert report["results"]
    for record in report["results"]:
        for key, kind in RECORD_KEYS.items():
            assert isinstance(record[key], kind), (key, record)
        assert record["kind"] in ("backend", "peer", "bandwidth")
        assert len(record["times_s"]) == record["repeats"] == 1
        assert record["min_s"] <= record["median_s"] <= record["max_s"]
        assert record["median_s"] > 0 and record["ns_per_sample"] > 0 and record["gb_per_s"] > 0
        frac = record["fraction_of_bandwidth"]
        assert frac is None or frac > 0


def test_every_backend_kernel_and_shape_appears(report):
    shapes = {(r["dtype"], r["n_features"], r["n_samples"]) for r in report["results"]}
    assert {dtype for dtype, _, _ in shapes} == {"float64", "float32"}
    assert {d for _, d, _ in shapes} == {1, 3}
    for backend in _available_cpu_backends():
        kernels = {r["kernel"] for r in report["results"] if r["kind"] == "backend" and r["impl"] == backend}
        assert kernels == set(bench.KERNELS), backend
    reads = [r for r in report["results"] if r["kind"] == "bandwidth"]
    assert {(r["dtype"], r["n_features"], r["n_samples"]) for r in reads} == shapes


def test_ratios_are_positive_and_name_peers(report):
    peers = set(bench.available_peers())
    seen = set()
    for record in report["results"]:
        if record["kind"] != "backend":
            assert record["ratios"] == {}
        for peer, ratio in record["ratios"].items():
            assert peer in peers
            assert ratio > 0
            seen.add(peer)
    assert seen == peers


def test_targets_are_listed(report):
    for target in report["targets"]:
        assert {"target", "goal", "measured", "measured_from_min", "met", "at"} <= set(target)
        assert target["met"] in (True, False, None)


def test_backend_option_restricts(tmp_path):
    backend = _available_cpu_backends()[-1]
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    out = tmp_path / "one.json"
    args = parser.parse_args(["--backend", backend, "--sizes", "200", "--features", "2", "--dtypes", "float64",
                              "--repeats", "1", "--no-peers", "--json", str(out)])
    assert bench.run(args) == 0
    report = json.loads(out.read_text())
    assert {r["impl"] for r in report["results"] if r["kind"] == "backend"} == {backend}
    assert not [r for r in report["results"] if r["kind"] == "peer"]
    assert report["settings"]["backends"] == [backend]


def test_cli_writes_json_and_plot(tmp_path, capsys):
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed: --plot needs it")
    json_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    code = cli.main(["bench", "--quick", "--sizes", "100", "--features", "1", "--dtypes", "float32",
                     "--repeats", "1", "--no-peers", "--json", str(json_path), "--plot", str(plot_path)])
    assert code == 0
    assert plot_path.stat().st_size > 0
    report = json.loads(json_path.read_text())
    assert report["settings"]["quick"] is True
    small = report["small"]
    for key in ("tutorial_fastgd_s", "tutorial_reference_s", "tutorial_ratio", "import_s", "first_fit_s"):
        assert small[key] > 0
    assert "import fastgd (s)" in {t["target"] for t in report["targets"]}
    assert "ns/sample" in capsys.readouterr().out


def test_bad_arguments_exit_with_a_message():
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    for argv in (["--sizes", "0"], ["--sizes", "ten"], ["--dtypes", "float16"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            bench.run(parser.parse_args(argv))


def test_format_table_lists_every_record(report):
    table = bench.format_table(report)
    assert table.count("\n") >= len(report["results"])
