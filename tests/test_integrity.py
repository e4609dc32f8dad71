"""Result files are never mixed or lost: a resume belongs to the same model, one output has
one writer, a failed start leaves nothing behind, a full disk ends in one line, and the
file reads naturally in h5py. Real processes and real files throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import femfreq
from femfreq.errors import OutputLockedError
from femfreq.results import ResultWriter, read_results

ROOT = Path(__file__).resolve().parents[1]
ROD = ROOT / "models" / "rod.toml"
FREQS = "1:400:40"
FIXED = '[[constraints]]\nselect = { near = [0.0, 0.0] }\nfix = "xy"\n'  # without it: free-free


def _cli(*args, cwd, limit=None, timeout=120):
    """Run ``femfreq ARGS`` in a new process (with a file size limit in bytes, if given)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prefix = [sys.executable, "-m", "femfreq"]
    if limit is not None:  # SIGXFSZ ignored: write() beyond the limit fails with EFBIG, as on a full disk
        code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                f"resource.setrlimit(resource.RLIMIT_FSIZE, ({int(limit)}, resource.RLIM_INFINITY)); "
                "from femfreq._cli.main import main; sys.exit(main(sys.argv[1:]))")
        prefix = [sys.executable, "-c", code]
    return subprocess.run([*prefix, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _one_error_line(proc, *fragments):
    """Exit 2 and exactly one ``femfreq: error:`` line containing every fragment, no traceback."""
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("femfreq: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _rod_toml(tmp_path, name="rod.toml", **replace):
    text = ROD.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def _litter(tmp_path, name):
    """Leftovers of a writer next to ``name``: temporaries and lock files."""
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name + "."))


def _chain(n=6, k=4.0, m=1.0):
    """A fixed spring-mass chain: K, M, b (unit load at the free end)."""
    K = np.diag(np.full(n, 2 * k)) - k * (np.eye(n, k=1) + np.eye(n, k=-1))
    K[-1, -1] = k
    b = np.zeros(n)
    b[-1] = 1.0
    return K, m * np.eye(n), b


def _sweep(K, M, b, out, **kw):
    kw = {"freqs_hz": np.linspace(0.1, 1.0, 12), "cluster": None, "progress": False, **kw}
    return femfreq.solve(K, None, M, b, out=out, **kw)


# --------------------------------------------------------------------------- 1: resume the same model only

@pytest.mark.parametrize(
    "change, message",
    [
        (dict(scale_K=4.0), "stiffness K differs"),
        (dict(g=0.01), "structural damping g 0.0 (file) vs 0.01 (this sweep)"),
        (dict(method=femfreq.Direct(tol=1e-8)), "tol 1e-06 (file) vs 1e-08 (this sweep)"),
        (dict(method="fast"), "method direct (file) vs fast (this sweep)"),
        (dict(scale_M=2.0, g=0.01), "mass M differs; structural damping g"),
    ],
)
def test_resume_refuses_a_file_of_another_model_or_method(tmp_path, change, message):
    K, M, b = _chain()
    out = tmp_path / "chain.h5"
    first = _sweep(K, M, b, out, freqs_hz=np.linspace(0.1, 1.0, 12))
    with h5py.File(out, "r+") as h5:  # as if interrupted after half the sweep
        h5["done"][6:] = False
    before = out.read_bytes()
    change = dict(change)
    K2 = K * change.pop("scale_K", 1.0)
    M2 = M * change.pop("scale_M", 1.0)
    with pytest.raises(ValueError, match="the file was written for another model or method") as info:
        _sweep(K2, M2, b, out, resume=True, **change)
    assert message in str(info.value)
    assert out.read_bytes() == before and _litter(tmp_path, "chain.h5") == []
    again = _sweep(K, M, b, out, resume=True)  # the model that wrote it resumes it
    np.testing.assert_array_equal(again.response, first.response)


def test_cli_resume_with_another_material_or_damping_is_refused(tmp_path):
    rod = _rod_toml(tmp_path)
    assert _cli("sweep", rod, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5", cwd=tmp_path).returncode == 0
    with h5py.File(tmp_path / "r.h5", "r+") as h5:
        h5["done"][20:] = False
        h5.attrs["status"] = "running"
    stiffer = _rod_toml(tmp_path, "stiff.toml", **{"E = 1.0e7": "E = 4.0e7"})
    proc = _cli("sweep", stiffer, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5", "--resume",
                cwd=tmp_path)
    _one_error_line(proc, "cannot resume 'r.h5'", "stiffness K differs")
    proc = _cli("sweep", rod, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5", "--resume",
                "-g", "0.05", "--tol", "1e-9", cwd=tmp_path)
    _one_error_line(proc, "structural damping g 0.02 (file) vs 0.05 (this sweep)", "tol 1e-06 (file) vs 1e-09")
    assert _cli("sweep", rod, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5", "--resume",
                cwd=tmp_path).returncode == 0
    assert read_results(tmp_path / "r.h5").complete


def _as_version_2(path):
    """Rewrite a result file as femfreq wrote it before fingerprints (format version 2)."""
    with h5py.File(path, "r+") as h5:
        del h5["fingerprint"]
        h5.attrs["format_version"] = 2
        h5.attrs["status"] = np.bytes_(b"running\0")
        h5.attrs["finished"] = np.bytes_(b"\0" * 32)
        h5["done"][6:] = False


def test_a_version_2_file_without_fingerprint_resumes_with_a_warning_and_gets_one(tmp_path):
    K, M, b = _chain()
    out = tmp_path / "v2.h5"
    first = _sweep(K, M, b, out)
    _as_version_2(out)
    assert read_results(out).attrs["format_version"] == 2  # still reads
    with pytest.warns(UserWarning, match="without a fingerprint of the model: resuming it cannot check"):
        again = _sweep(K, M, b, out, resume=True)
    np.testing.assert_array_equal(again.response, first.response)
    assert again.complete and again.attrs["format_version"] == 4
    with h5py.File(out, "r") as h5:
        assert "rows written before were not checked" in h5["fingerprint"].attrs["note"]
        assert h5.attrs["status"] == "complete"
    with h5py.File(out, "r+") as h5:
        h5["done"][6:] = False
    with pytest.raises(ValueError, match="stiffness K differs"):  # from now on it is checked
        _sweep(2 * K, M, b, out, resume=True)


# --------------------------------------------------------------------------- 2: one writer per output

_HOLD = textwrap.dedent("""
    import sys, numpy as np
    from femfreq.results import ResultWriter
    with ResultWriter.create(sys.argv[1], freqs_hz=[1.0, 2.0], outputs={"dof": [0]}, defer=True):
        print("holding", flush=True)
        sys.stdin.read()
""")


def test_a_second_writer_of_one_output_fails_at_once_naming_the_holder(tmp_path):
    out = tmp_path / "r.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        proc = _cli("sweep", ROD, "--serial", "--no-progress", "--freqs", FREQS, "-o", out, "--overwrite",
                    cwd=tmp_path, timeout=60)
        _one_error_line(proc, f"result file '{out}' is being written by another femfreq process",
                        f"PID {holder.pid}")
        K, M, b = _chain()
        with pytest.raises(OutputLockedError, match=f"PID {holder.pid}") as caught:
            _sweep(K, M, b, out)
        assert caught.value.pid == holder.pid and caught.value.path == str(out)
        assert not out.exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock, the stale lock file must not block
        holder.wait()
    assert (tmp_path / "r.h5.lock").exists()
    assert _cli("sweep", ROD, "--serial", "--no-progress", "--freqs", FREQS, "-o", out, cwd=tmp_path).returncode == 0
    assert read_results(out).complete and _litter(tmp_path, "r.h5") == []


def test_two_sweeps_started_together_on_one_output_leave_one_result(tmp_path):
    """Both start at once: exactly one wins, the other fails with the lock message; the file is
    the winner's, whole."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["sweep", str(ROD), "--serial", "--no-progress", "--freqs", "1:400:400", "-o", "r.h5"]
    procs = [subprocess.Popen([sys.executable, "-m", "femfreq", *args, "-g", g], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for g in ("0.01", "0.03")]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] == 2, results
    loser = next(err for code, err in results if code == 2)
    assert "being written by another femfreq process" in loser or "already exists" in loser, loser
    winner_g = ("0.01", "0.03")[[code for code, _ in results].index(0)]
    r = read_results(tmp_path / "r.h5")
    assert r.complete and r.attrs["g"] == float(winner_g)


# --------------------------------------------------------------------------- 3: a failed start leaves nothing

def test_failed_starts_leave_no_file_and_keep_an_old_one(tmp_path):
    K, M, b = _chain()
    free = K.copy()
    free[0, 0] = 4.0  # the first spring cut: free-free, singular at 0 Hz
    out = tmp_path / "r.h5"
    with pytest.raises(femfreq.errors.SingularMatrixError):
        _sweep(free, M, b, out, freqs_hz=[0.0, 1.0])
    assert not out.exists() and _litter(tmp_path, "r.h5") == []
    good = _sweep(K, M, b, out)  # the same path, no overwrite needed
    before = out.read_bytes()
    with pytest.raises(femfreq.errors.SingularMatrixError):
        _sweep(free, M, b, out, freqs_hz=[0.0, 1.0], overwrite=True)
    with pytest.raises(femfreq.errors.SingularMatrixError):  # on a dask cluster too
        _sweep(free, M, b, out, freqs_hz=[0.0, 1.0], overwrite=True, cluster=femfreq.options.Local(n_workers=1))
    assert out.read_bytes() == before and _litter(tmp_path, "r.h5") == []
    np.testing.assert_array_equal(read_results(out).response, good.response)


def test_cli_overwrite_with_a_bad_start_keeps_the_good_file(tmp_path):
    assert _cli("sweep", ROD, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5", cwd=tmp_path).returncode == 0
    before = (tmp_path / "r.h5").read_bytes()
    free = _rod_toml(tmp_path, "free.toml", **{FIXED: ""})
    for argv in (["--solver", "pardsio"], ["--workers", "0"], ["--scheduler", "tls://127.0.0.1:1", "--tls-ca", "missing-ca.pem"],
                 ["--calibration", "missing.json"]):
        proc = _cli("sweep", ROD, "--no-progress", "--freqs", FREQS, "-o", "r.h5", "--overwrite", *argv,
                    cwd=tmp_path)
        _one_error_line(proc)
        assert (tmp_path / "r.h5").read_bytes() == before, argv
    proc = _cli("sweep", free, "--serial", "--no-progress", "--freqs", "0:400:40", "-o", "r.h5", "--overwrite",
                cwd=tmp_path)
    _one_error_line(proc, "singular")
    assert (tmp_path / "r.h5").read_bytes() == before and _litter(tmp_path, "r.h5") == []
    proc = _cli("sweep", free, "--serial", "--no-progress", "--freqs", "0:400:40", "-o", "new.h5", cwd=tmp_path)
    _one_error_line(proc, "singular")
    assert not (tmp_path / "new.h5").exists() and _litter(tmp_path, "new.h5") == []


# --------------------------------------------------------------------------- 6: a full disk

def test_full_disk_at_creation_ends_in_one_line_and_keeps_the_old_file(tmp_path):
    args = ["sweep", ROD, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5"]
    proc = _cli(*args, cwd=tmp_path, limit=20_000)
    _one_error_line(proc, "cannot write result file 'r.h5': File too large; nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert _cli(*args, cwd=tmp_path).returncode == 0
    before = (tmp_path / "r.h5").read_bytes()
    proc = _cli(*args, "--overwrite", cwd=tmp_path, limit=20_000)
    _one_error_line(proc, "File too large; nothing was written; the existing file is unchanged")
    assert (tmp_path / "r.h5").read_bytes() == before and _litter(tmp_path, "r.h5") == []


def test_full_disk_mid_sweep_keeps_what_was_written_resumable(tmp_path):
    args = ["sweep", ROD, "--serial", "--no-progress", "--freqs", FREQS, "-o", "r.h5"]
    assert _cli(*args, cwd=tmp_path).returncode == 0
    clean = read_results(tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r+") as h5:  # as a sweep interrupted after 20 of 40 frequencies
        h5["done"][20:] = False
        h5["method"][20:] = 0
        h5["response"][20:] = np.nan
        h5.attrs.modify("status", "running")
        # the /chunks table lies last in the file: a limit at its offset fails the next chunk's write
        limit = h5["chunks"].id.get_chunk_info(0).byte_offset
    proc = _cli(*args, "--resume", cwd=tmp_path, limit=limit)
    _one_error_line(proc, "cannot write result file 'r.h5': File too large",
                    "it keeps the 20 of 40 frequencies written before")
    partial = read_results(tmp_path / "r.h5")
    assert partial.done.sum() == 20 and _litter(tmp_path, "r.h5") == []
    np.testing.assert_array_equal(partial.response[:20], clean.response[:20])
    assert _cli(*args, "--resume", cwd=tmp_path).returncode == 0
    np.testing.assert_array_equal(read_results(tmp_path / "r.h5").response, clean.response)


def test_a_file_exactly_at_the_size_limit_finishes(tmp_path):
    """Writing rows, the time response and finishing never grow the file created at the start."""
    args = ["sweep", ROD, "--serial", "--no-progress", "--n-fft", "512", "-o", "r.h5"]
    assert _cli(*args, cwd=tmp_path).returncode == 0
    size = (tmp_path / "r.h5").stat().st_size
    os.remove(tmp_path / "r.h5")
    proc = _cli(*args, cwd=tmp_path, limit=size)
    assert proc.returncode == 0, proc.stderr
    assert read_results(tmp_path / "r.h5").complete


# --------------------------------------------------------------------------- 14: natural to read

def test_file_reads_naturally_in_h5py(tmp_path):
    free = _rod_toml(tmp_path, "free.toml", **{FIXED: ""})
    proc = _cli("sweep", free, "--serial", "--no-progress", "--freqs", "0:400:5", "--skip-singular", "-o", "r.h5",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nan" not in proc.stdout and "; 1 skipped as singular" in proc.stdout, proc.stdout
    assert "max relative residual" in proc.stdout
    r = read_results(tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as h5:
        assert h5.attrs["status"] == "complete" and isinstance(h5.attrs["finished"], str)
        assert h5.attrs["finished"].startswith("20")
        assert h5["chunks"].shape == (len(r.chunks["start"]),) and (h5["chunks"]["count"] > 0).all()
        assert "3 skipped" in h5["method"].attrs["meaning"]
        assert h5["fingerprint"].attrs["method"] == "direct"


def test_writer_defer_writes_nothing_until_the_first_chunk(tmp_path):
    out = tmp_path / "d.h5"
    with ResultWriter.create(out, freqs_hz=[1.0, 2.0], outputs={"dof": [0]}, defer=True) as w:
        assert not w.on_disk and not out.exists() and (tmp_path / "d.h5.lock").exists()
    assert _litter(tmp_path, "d.h5") == [] and not out.exists()
