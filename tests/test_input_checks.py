"""Inputs that were silently accepted (or failed late, or with the wrong reason) now stop at
once with one line naming the value: the CLI through real ``python -m femfreq`` processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import femfreq
from femfreq.spectra import History

ROOT = Path(femfreq.__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _femfreq(*args, cwd):
    return subprocess.run([sys.executable, "-m", "femfreq", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=ENV, timeout=300)


def _error(r, pattern):
    """Exit 2 and the last stderr line is one ``femfreq: error:`` line matching ``pattern``
    (info lines about the model may come before it)."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("femfreq: error: ") and re.search(pattern, last), r.stderr


def test_boolean_mask_as_output_dofs_is_refused():
    with pytest.raises(TypeError, match="output_dofs must be integer indices, not a boolean mask"):
        femfreq.solve(np.eye(4) * 4, None, np.eye(4), np.ones(4), freqs_hz=[1.0],
                      output_dofs=np.array([True, True, False, True]), cluster=None, progress=False)


def test_n_fft_must_be_an_integer_below_the_cap():
    with pytest.raises(TypeError, match=r"n_fft must be an integer \(got 16.5\)"):
        History(np.ones(8), dt=0.01, n_fft=16.5)
    with pytest.raises(ValueError, match=r"n_fft must be <= 134217728 \(got 2000000000\)"):
        History(np.ones(8), dt=0.01, n_fft=2_000_000_000)


def test_cli_n_fft_too_long_is_one_line(tmp_path):
    _error(_femfreq("sweep", "rod", "--n-fft", "2000000000", "--serial", "--no-progress", "-o", "r.h5", cwd=tmp_path),
           r"n_fft must be <= 134217728 \(got 2000000000\)")
    assert not (tmp_path / "r.h5").exists()


def test_one_column_history_file_needs_dt(tmp_path):
    (tmp_path / "h1.txt").write_text("1\n2\n3\n4\n")
    text = (ROOT / "models" / "rod.toml").read_text()
    text = re.sub(r'history\s*=\s*"pyroshock"', 'history = "h1.txt"', text)
    text = re.sub(r"(?m)^dt\s*=.*$", "", text)
    (tmp_path / "m.toml").write_text(text)
    _error(_femfreq("sweep", "m.toml", "--serial", "--no-progress", "-o", "m.h5", cwd=tmp_path),
           r"h1\.txt: a one-column load history needs dt")
    (tmp_path / "m.toml").write_text(text.replace('history = "h1.txt"', 'history = "h1.txt"\ndt = 0.001'))
    r = _femfreq("sweep", "m.toml", "--serial", "--no-progress", "-o", "m.h5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert femfreq.read_results(tmp_path / "m.h5").freqs_hz[1] == pytest.approx(1 / (4096 * 0.001))


def test_info_negative_modes(tmp_path):
    _error(_femfreq("info", "rod", "--modes", "-3", cwd=tmp_path), r"--modes must be >= 0 \(got -3\)")


@pytest.mark.parametrize("solver", ["superlu", "pardiso"])
def test_absurd_frequency_is_refused_by_name(tmp_path, solver):
    r = _femfreq("sweep", "rod", "--freqs", "1e160", "--solver", solver, "--serial", "--no-progress", "-o", "r.h5",
                 cwd=tmp_path)
    _error(r, r"frequency 1e\+160 Hz is beyond what this model can resolve: omega\^2 max\|M\| overflows")
    assert not (tmp_path / "r.h5").exists()
    r = _femfreq("sweep", "rod", "--freqs", "1e12", "--solver", solver, "--serial", "--no-progress", "-o", "r.h5",
                 cwd=tmp_path)
    _error(r, r"frequency 1e\+12 Hz is beyond .* below about 3\.02e\+11 Hz")


@pytest.mark.parametrize("command", [["mesh", "satellite", "--level", "1"], ["field", "rod", "--freq", "10"],
                                     ["modes", "rod", "-k", "2"]])
def test_unknown_mesh_suffix_before_any_work(tmp_path, command):
    r = _femfreq(*command, "-o", "x.xyz", cwd=tmp_path)
    _error(r, r"-o x\.xyz: unknown mesh format '\.xyz'")
    assert "nodes" not in r.stdout and "Hz" not in r.stdout  # nothing was computed


def test_plot_truncated_file_says_truncated(tmp_path):
    r = _femfreq("sweep", "rod", "--freqs", "1,2", "--serial", "--no-progress", "-o", "r.h5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "cut.h5").write_bytes((tmp_path / "r.h5").read_bytes()[:3000])
    r = _femfreq("plot", "cut.h5", cwd=tmp_path)
    _error(r, r"cut\.h5: not a readable HDF5 result file: it is truncated or corrupt")
    assert "running sweep" not in r.stderr


def test_tls_ca_alone(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    r = _femfreq("sweep", "rod", "--freqs", "1,2", "--scheduler", "tls://127.0.0.1:1", "--tls-ca", "ca.pem",
                 "-o", "r.h5", cwd=tmp_path)
    _error(r, r"--tls-ca alone: TLS needs --tls-ca and --tls-cert")
    assert len(r.stderr.strip().splitlines()) == 1


def test_system_refuses_a_boolean_mask_as_output_dofs():
    import scipy.sparse as sp

    from femfreq.system import System

    with pytest.raises(TypeError, match="not a boolean mask"):
        System(K=sp.eye(3), C=None, M=sp.eye(3), b=np.ones(3), output_dofs=np.array([True, False, True]))
