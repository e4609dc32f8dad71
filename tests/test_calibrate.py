"""Calibration workloads (primes, Mandelbrot), cluster calibration and its CLI.

References are independent: a numba sieve and sympy for the primes (and the published
[2, 10**7) figure), pure-Python complex iteration for the Mandelbrot counts, block means
computed pixel by pixel for the preview. Dask runs on real worker processes.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq.calibrate import (
    DEFAULT_CALIBRATION,
    calibrate,
    load_calibration,
    min_chunk_items,
    min_task_seconds,
    save_calibration,
)
from femfreq.calibrate.mandelbrot import (
    REFERENCE_WINDOW,
    _Preview,
    mandelbrot_block,
    mandelbrot_image,
    mandelbrot_numpy,
    mandelbrot_on_dask,
    read_mandelbrot,
)
from femfreq.calibrate.primes import (
    REFERENCE_SUM,
    PrimesRun,
    primes_metrics,
    primes_on_dask,
    primes_serial,
    primes_sieve,
    split_range,
)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            c.wait_for_workers(2, timeout=60)
            yield c


# ---------------------------------------------------------------- primes


@pytest.mark.parametrize("a, b", [(2, 10**4), (10**5, 2 * 10**5)])
def test_sympy_sum_matches_sieve(a, b):
    assert primes_serial(a, b) == primes_sieve(a, b)


def test_sieve_reproduces_reference_figure():
    a, b, total = REFERENCE_SUM
    assert primes_sieve(a, b) == total == 5495501355056


def test_small_sums_by_hand():
    # 2..10: 2, 3, 2, 5, 2+3, 7, 2, 3, 2+5; 0 and 1 have no prime factors
    assert primes_serial(2, 11) == primes_sieve(2, 11) == 36
    assert primes_serial(0, 2) == primes_sieve(0, 2) == 0
    assert primes_serial(5, 5) == primes_sieve(5, 5) == 0


@settings(max_examples=40, deadline=None)
@given(a=st.integers(0, 5000), n=st.integers(0, 400))
def test_sieve_equals_sympy_on_random_ranges(a, n):
    assert primes_sieve(a, a + n) == primes_serial(a, a + n)


@settings(max_examples=60, deadline=None)
@given(a=st.integers(0, 1000), n=st.integers(0, 300), n_tasks=st.integers(1, 40), split=st.sampled_from(["chunks", "strided"]))
def test_split_range_covers_every_integer_once(a, n, n_tasks, split):
    pieces = split_range(a, a + n, n_tasks, split)
    covered = sorted(i for p in pieces for i in range(*p))
    assert covered == list(range(a, a + n))
    assert 1 <= len(pieces) <= n_tasks


def test_primes_on_dask_both_splits(client):
    a, b = 2, 20000
    expected = primes_sieve(a, b)
    workers = set(client.scheduler_info()["workers"])
    for split, n_tasks, want_tasks in (("chunks", None, 16), ("strided", None, 2), ("chunks", 5, 5), ("strided", 3, 3)):
        run = primes_on_dask(client, a, b, split=split, n_tasks=n_tasks)
        assert run.total == expected
        assert len(run.tasks) == want_tasks
        assert {t["worker"] for t in run.tasks} <= workers
        assert sum(t["count"] for t in run.tasks) == b - a
        m = primes_metrics(run, serial_s=1.0)
        assert m["n_tasks"] == want_tasks and m["n_workers"] == 2
        assert m["imbalance"] >= 1.0 - 1e-12
        assert m["task_sum_s"] == pytest.approx(sum(t["seconds"] for t in run.tasks))
        assert m["efficiency"] == pytest.approx(m["speedup"] / 2)


def test_primes_metrics_closed_form():
    tasks = [
        {"worker": "w1", "seconds": 3.0, "cpu_seconds": 2.0},
        {"worker": "w1", "seconds": 1.0, "cpu_seconds": 1.0},
        {"worker": "w2", "seconds": 2.0, "cpu_seconds": 2.0},
    ]
    run = PrimesRun(total=0, tasks=tasks, wall_s=4.0, split="chunks", a=2, b=10, n_workers=2)
    m = primes_metrics(run, serial_s=3.0)
    assert m["worker_busy_s"] == {"w1#0": 4.0, "w2#0": 2.0}
    assert m["imbalance"] == pytest.approx(4.0 / 3.0)
    assert m["overhead"] == pytest.approx(2.0)
    assert m["speedup"] == pytest.approx(0.75)
    assert m["efficiency"] == pytest.approx(0.375)
    assert m["idle_fraction"] == pytest.approx(1 - 6.0 / 8.0)
    assert m["task_spread"] == pytest.approx(3.0 / 2.0)
    c = primes_metrics(run, serial_s=2.5, clock="cpu")
    assert c["imbalance"] == pytest.approx(3.0 / 2.5) and c["overhead"] == pytest.approx(5.0 / 2.5)
    # a worker that got no task counts as idle
    three = PrimesRun(total=0, tasks=tasks, wall_s=4.0, n_workers=3)
    assert primes_metrics(three)["imbalance"] == pytest.approx(4.0 / 2.0)
    assert math.isnan(primes_metrics(run)["overhead"])


def test_primes_bad_input(client):
    with pytest.raises(ValueError, match=r"reversed range \[5, 3\)"):
        primes_serial(5, 3)
    with pytest.raises(ValueError, match=r"must be >= 0 \(got a=-1\)"):
        primes_sieve(-1, 3)
    with pytest.raises(TypeError, match="b must be an integer"):
        primes_serial(2, 3.5)
    with pytest.raises(ValueError, match="step must be >= 1"):
        primes_serial(2, 30, 0)
    with pytest.raises(ValueError, match="unknown split 'zigzag'"):
        split_range(2, 30, 4, "zigzag")
    with pytest.raises(ValueError, match="n_tasks must be a positive integer"):
        split_range(2, 30, 0)
    with pytest.raises(ValueError, match="unknown split 'zigzag'"):
        primes_on_dask(client, 2, 30, split="zigzag")
    with pytest.raises(ValueError, match="unknown clock 'gpu'"):
        primes_metrics(PrimesRun(total=0), clock="gpu")


@pytest.mark.slow
def test_primes_on_dask_million(client):
    run = primes_on_dask(client, 2, 10**6)
    assert run.total == primes_sieve(2, 10**6)


# ---------------------------------------------------------------- Mandelbrot


def _python_counts(re, im, max_iter):
    """Independent reference: plain Python complex iteration, same count definition."""
    out = np.empty((len(im), len(re)), dtype=np.uint8)
    for i, y in enumerate(im):
        for j, x in enumerate(re):
            c, z, n = complex(x, y), 0j, 0
            while n < max_iter and not (z.real * z.real + z.imag * z.imag > 4.0):
                z = z * z + c
                n += 1
            out[i, j] = n
    return out


def _point(c: complex, max_iter: int = 255) -> int:
    """The count of one point: a 1 x 1 image is the pixel (re_min, im_max)."""
    return int(mandelbrot_block(c.real, c.real + 1.0, c.imag - 1.0, c.imag, 1, 1, 0, 1, max_iter)[0, 0])


def test_known_points():
    assert _point(0j) == 255
    assert _point(-1 + 0j, 100) == 100  # period-2 cycle 0, -1, 0, ...
    assert _point(-2 + 0j) == 255  # z stays at 2 = the escape radius, never above
    assert _point(3 + 0j) == 1  # z_1 = 3
    assert _point(1 + 1j) == 2  # z_1 = 1+1j (|z| < 2), z_2 = 1+3j
    assert _point(0.5 + 0j, 50) == 5  # 0, .5, .75, 1.0625, 1.6289, 3.153


def test_numba_numpy_python_agree_on_reference_window():
    w, h, it = 40, 30, 255
    a = mandelbrot_block(*REFERENCE_WINDOW, w, h, 0, h, it)
    b = mandelbrot_numpy(*REFERENCE_WINDOW, w, h, 0, h, it)
    re = np.linspace(REFERENCE_WINDOW[0], REFERENCE_WINDOW[1], w)
    im = np.linspace(REFERENCE_WINDOW[3], REFERENCE_WINDOW[2], h)
    assert a.dtype == np.uint8 and a.shape == (h, w)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, _python_counts(re, im, it))
    assert 0 < a.min() and a.max() == it  # the window holds both escaping and bounded points


@settings(max_examples=25, deadline=None)
@given(
    x0=st.floats(-2.5, 1.0),
    y0=st.floats(-1.5, 1.4),
    dx=st.floats(1e-6, 1.5),
    dy=st.floats(1e-6, 1.5),
    w=st.integers(1, 12),
    h=st.integers(1, 12),
    it=st.integers(1, 255),
    data=st.data(),
)
def test_kernels_agree_on_random_windows(x0, y0, dx, dy, w, h, it, data):
    r0 = data.draw(st.integers(0, h))
    r1 = data.draw(st.integers(r0, h))
    a = mandelbrot_block(x0, x0 + dx, y0, y0 + dy, w, h, r0, r1, it)
    b = mandelbrot_numpy(x0, x0 + dx, y0, y0 + dy, w, h, r0, r1, it)
    np.testing.assert_array_equal(a, b)
    full = mandelbrot_block(x0, x0 + dx, y0, y0 + dy, w, h, 0, h, it)
    np.testing.assert_array_equal(a, full[r0:r1])  # a block is the slice of the whole image


@settings(max_examples=30, deadline=None)
@given(w=st.integers(1, 40), h=st.integers(1, 40), size=st.integers(1, 15), data=st.data())
def test_preview_is_the_block_mean(w, h, size, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    img = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    acc = _Preview(w, h, size)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, h), max_size=6)))) if h > 1 else []
    edges = [0] + [c for c in cuts if c < h] + [h]
    for r0, r1 in reversed(list(zip(edges[:-1], edges[1:]))):  # any order, like as_completed
        acc.add(r0, img[r0:r1])
    f = acc.factor
    assert max(acc.sums.shape) <= size or f == 1
    ref = np.array([[img[i * f:(i + 1) * f, j * f:(j + 1) * f].mean() for j in range(acc.sums.shape[1])]
                    for i in range(acc.sums.shape[0])])
    np.testing.assert_allclose(acc.image(), ref, rtol=1e-12)


def test_mandelbrot_on_dask_matches_in_process(client, tmp_path):
    w, h = 203, 157  # rows_per_task does not divide h: the last block is short
    run = mandelbrot_on_dask(client, tmp_path / "m.h5", w, h, REFERENCE_WINDOW, 255, 10, preview_size=50)
    np.testing.assert_array_equal(read_mandelbrot(run.path), mandelbrot_image(w, h))
    with h5py.File(run.path) as f:
        assert f["counts"].dtype == np.uint8 and f["counts"].chunks[0] == 10
        assert f.attrs["status"] == "complete"
        np.testing.assert_array_equal(f["counts"].attrs["window"], REFERENCE_WINDOW)
    import matplotlib.image

    png = matplotlib.image.imread(run.preview)
    assert run.preview == tmp_path / "m.png"
    assert png.shape[:2] == (math.ceil(h / 5), math.ceil(w / 5))  # factor ceil(203 / 50) = 5
    assert len(run.tasks) == 16 and sum(t["pixels"] for t in run.tasks) == w * h
    assert run.bytes_moved == w * h
    m = run.metrics()
    assert m["pixels"] == w * h and m["n_workers"] == 2
    assert m["bytes_per_s"] == pytest.approx(w * h / run.wall_s)
    assert set(m["compute_pixels_per_s_per_worker"]) <= set(client.scheduler_info()["workers"])


def test_mandelbrot_in_flight_bound(client, tmp_path):
    # one block in flight: each task starts after the previous block was received
    run = mandelbrot_on_dask(client, tmp_path / "one.h5", 64, 40, REFERENCE_WINDOW, 50, 5, preview=False,
                             max_in_flight=1, compression="gzip")
    assert run.preview is None and not (tmp_path / "one.png").exists()
    tasks = sorted(run.tasks, key=lambda t: t["t_start"])
    for prev, nxt in zip(tasks, tasks[1:]):
        assert nxt["t_start"] >= prev["received"] - 1e-3
    np.testing.assert_array_equal(read_mandelbrot(run.path), mandelbrot_image(64, 40, max_iter=50))


def test_a_second_mandelbrot_run_on_the_same_output_is_refused_and_the_first_image_kept(client, tmp_path):
    from femfreq.errors import OutputLockedError
    from femfreq.results import OutputLock

    first = mandelbrot_on_dask(client, tmp_path / "m.h5", 32, 24, REFERENCE_WINDOW, 40, 6, preview=False)
    with OutputLock(first.path):  # another writer holds the output
        with pytest.raises(OutputLockedError, match="m.h5"):
            mandelbrot_on_dask(client, first.path, 16, 8, REFERENCE_WINDOW, 40, 4, preview=False, overwrite=True)
    # the refused run did not truncate or rewrite the image
    np.testing.assert_array_equal(read_mandelbrot(first.path), mandelbrot_image(32, 24, max_iter=40))
    assert not (tmp_path / "m.h5.lock").exists()


def test_a_failed_mandelbrot_run_leaves_no_file_or_keeps_the_rows_it_wrote(client, tmp_path, monkeypatch):
    import femfreq.calibrate.mandelbrot as mb

    real = mb.mandelbrot_task

    def fails_from_row(first_bad):
        def task(window, width, height, row0, row1, max_iter):  # pickled by value to the workers
            if row0 >= first_bad:
                raise RuntimeError(f"block at row {row0} failed")
            return real(window, width, height, row0, row1, max_iter)
        return task

    monkeypatch.setattr(mb, "mandelbrot_task", fails_from_row(0))
    with pytest.raises(RuntimeError, match=r"block at row \d+ failed"):  # every block fails: any comes first
        mandelbrot_on_dask(client, tmp_path / "none.h5", 16, 12, REFERENCE_WINDOW, 40, 4, preview=False)
    assert not (tmp_path / "none.h5").exists() and not (tmp_path / "none.h5.lock").exists()

    monkeypatch.setattr(mb, "mandelbrot_task", fails_from_row(4))
    with pytest.raises(RuntimeError, match="block at row 4 failed"):  # one block in flight: rows 0..3 first
        mandelbrot_on_dask(client, tmp_path / "part.h5", 16, 12, REFERENCE_WINDOW, 40, 4, preview=False,
                           max_in_flight=1)
    with h5py.File(tmp_path / "part.h5") as f:
        assert f.attrs["status"] == "failed: RuntimeError: block at row 4 failed"
    np.testing.assert_array_equal(read_mandelbrot(tmp_path / "part.h5", slice(0, 4)),
                                  mandelbrot_image(16, 12, max_iter=40)[:4])


def test_mandelbrot_bad_input(client, tmp_path):
    with pytest.raises(ValueError, match=r"max_iter must be in \[1, 255\] .*got 256"):
        mandelbrot_block(*REFERENCE_WINDOW, 4, 4, 0, 4, 256)
    with pytest.raises(ValueError, match="re_min < re_max"):
        mandelbrot_numpy(1.0, -1.0, 0.0, 1.0, 4, 4, 0, 4, 10)
    with pytest.raises(ValueError, match="finite"):
        mandelbrot_block(float("nan"), 1.0, 0.0, 1.0, 4, 4, 0, 4, 10)
    with pytest.raises(ValueError, match=r"rows \[2, 9\) outside the image height 4"):
        mandelbrot_block(*REFERENCE_WINDOW, 4, 4, 2, 9, 10)
    with pytest.raises(ValueError, match="at least 1 x 1"):
        mandelbrot_block(*REFERENCE_WINDOW, 0, 4, 0, 4, 10)
    with pytest.raises(TypeError, match="width must be an integer"):
        mandelbrot_block(*REFERENCE_WINDOW, 4.0, 4, 0, 4, 10)
    with pytest.raises(ValueError, match="rows_per_task must be a positive integer"):
        mandelbrot_on_dask(client, tmp_path / "a.h5", 8, 8, REFERENCE_WINDOW, 10, 0)
    with pytest.raises(ValueError, match="unknown compression 'zip'"):
        mandelbrot_on_dask(client, tmp_path / "a.h5", 8, 8, REFERENCE_WINDOW, 10, 2, compression="zip")
    (tmp_path / "b.h5").write_bytes(b"")
    with pytest.raises(FileExistsError, match="b.h5 exists"):
        mandelbrot_on_dask(client, tmp_path / "b.h5", 8, 8, REFERENCE_WINDOW, 10, 2)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="no /counts dataset"):
        read_mandelbrot(tmp_path / "c.h5")


# ---------------------------------------------------------------- calibration


def test_calibrate_measures_the_cluster(client, tmp_path):
    calib = calibrate(client, quick=True)
    workers = set(client.scheduler_info()["workers"])
    assert calib["n_workers"] == 2 and set(calib["worker_speed"]) == workers
    for key in ("task_latency_s", "task_overhead_s", "tasks_per_s", "result_bandwidth_Bps"):
        assert math.isfinite(calib[key]) and calib[key] > 0, key
    for s in calib["worker_speed"].values():
        assert s["mandelbrot_mpix_s"] > 0 and s["matmul_gflops"] > 0
    assert calib["speed_spread"] >= 1.0
    assert [b["bytes"] for b in calib["bandwidth_by_size"]] == [1 << 20, 8 << 20, 32 << 20]
    path = save_calibration(tmp_path / "sub" / "calib.json", calib)
    assert load_calibration(path) == json.loads(json.dumps(calib))


def test_calibration_file_errors(tmp_path):
    (tmp_path / "bad.json").write_text('{"task_overhead_s": 1,\n oops}')
    with pytest.raises(ValueError, match=r"bad.json:2: not a JSON calibration file"):
        load_calibration(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text('{"task_overhead_s": 0.01}')
    with pytest.raises(ValueError, match="missing task_latency_s, result_bandwidth_Bps"):
        load_calibration(tmp_path / "partial.json")
    with pytest.raises(ValueError, match=r"task_overhead_s must be a finite number >= 0 \(got -1\)"):
        save_calibration(tmp_path / "x.json", {**DEFAULT_CALIBRATION, "task_overhead_s": -1})
    with pytest.raises(TypeError, match="must be a dict"):
        save_calibration(tmp_path / "x.json", [1, 2])
    with pytest.raises(FileNotFoundError):
        load_calibration(tmp_path / "missing.json")


def test_chunk_planning_helpers():
    calib = {**DEFAULT_CALIBRATION, "task_overhead_s": 0.01}
    assert min_task_seconds(calib, max_overhead=0.05) == pytest.approx(0.2)
    assert min_chunk_items(0.03, calib, max_overhead=0.05) == 7  # ceil(0.2 / 0.03)
    assert min_chunk_items(5.0, calib) == 1
    assert min_task_seconds() == pytest.approx(DEFAULT_CALIBRATION["task_overhead_s"] / 0.05)
    with pytest.raises(ValueError, match=r"max_overhead must be in \(0, 1\]"):
        min_task_seconds(calib, max_overhead=0)
    with pytest.raises(ValueError, match="seconds_per_item must be a positive number"):
        min_chunk_items(-1.0, calib)


def test_calibrate_needs_workers():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, Client(cluster) as c:
        with pytest.raises(ValueError, match="has no workers"):
            calibrate(c)


def test_cli_calibrate(client, tmp_path, capsys):
    from femfreq._cli.main import main

    out, h5 = tmp_path / "calib.json", tmp_path / "m.h5"
    address = client.scheduler.address
    code = main(["calibrate", "--scheduler", address, "-o", str(out), "--primes", "2:3000",
                 "--mandelbrot", "64x48", "--mandelbrot-out", str(h5)])
    assert code == 0
    calib = load_calibration(out)
    assert calib["scheduler"] == address and calib["n_workers"] == 2
    assert calib["primes"]["sum"] == primes_sieve(2, 3000)
    assert calib["mandelbrot"]["size"] == [64, 48]
    np.testing.assert_array_equal(read_mandelbrot(h5), mandelbrot_image(64, 48))
    assert (tmp_path / "m.png").exists()
    text = capsys.readouterr().out
    assert "task overhead" in text and f"wrote {out}" in text


@pytest.mark.parametrize("args, message", [
    (["--primes", "5:3"], "expected 0 <= A < B"),
    (["--primes", "7"], "expected A:B"),
    (["--mandelbrot", "3x"], "is not an integer"),
    (["--mandelbrot", "0x5"], "positive size"),
])
def test_cli_calibrate_bad_args(args, message, capsys):
    from femfreq._cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["calibrate", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
