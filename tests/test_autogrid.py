"""The ``"auto:FMIN:FMAX[:N]"`` frequency spec (femfreq.grid): points in every half-power band.

References: the closed-form modes and FRF of a two-mass spring chain (quadratic roots and the
2 x 2 inverse), the discrete fixed-free chain's eigenvalues, and the loss factor of
proportional damping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

import femfreq
from femfreq.grid import DEFAULT_POINTS_PER_BAND, auto_grid, modal_bands, parse_auto, peak_grid
from femfreq.model import Damping
from femfreq.spectra import frequency_grid
from femfreq.system import System
from helpers import spring_mass_chain

G = 0.02
K1, K2 = 4.0e5, 2.0e5  # N/m
R0, R1 = 2.0, 2.0  # rod masses: lumped m1 = 2, m2 = 1 kg


def _chain(g=G):
    return spring_mass_chain([K1, K2], [R0, R1], damping=Damping(g=g))


def _closed_form():
    """(natural frequencies Hz, FRF(f) -> (2,) complex) of the chain, from its 2 x 2 matrices."""
    m1, m2 = (R0 + R1) / 2, R1 / 2
    K = np.array([[K1 + K2, -K2], [-K2, K2]])
    # det(K - lam M) = m1 m2 lam^2 - (m1 K22 + m2 K11) lam + det K
    a, b, c = m1 * m2, -(m1 * K[1, 1] + m2 * K[0, 0]), np.linalg.det(K)
    lam = np.array([(-b - math.sqrt(b * b - 4 * a * c)) / (2 * a), (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)])

    def frf(f):
        w2 = (2 * np.pi * f) ** 2
        A = K * (1 + 1j * G) - w2 * np.diag([m1, m2])
        det = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
        return np.array([-A[0, 1], A[0, 0]]) / det  # adj(A) @ [0, 1] / det (load on mass 2)

    return np.sqrt(lam) / (2 * np.pi), frf


def _bands(fk, eta):
    return fk * np.sqrt(1 - eta), fk * np.sqrt(1 + eta)


def test_modal_bands_match_the_closed_form_modes_and_loss_factor():
    fk, _ = _closed_form()
    modes = modal_bands(_chain().system(), 1.0, 1000.0)
    np.testing.assert_allclose(modes.freqs_hz, fk, rtol=1e-8)
    np.testing.assert_allclose(modes.loss_factors, G, rtol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 5, DEFAULT_POINTS_PER_BAND, 9])
def test_every_half_power_band_gets_n_points(n):
    fk, _ = _closed_form()
    f = frequency_grid(f"auto:5:500:{n}", system=_chain().system())
    assert f.dtype == np.float64 and np.all(np.diff(f) > 0) and f[0] == 5.0 and f[-1] == 500.0
    for lo, hi in zip(*_bands(fk, G)):
        assert np.count_nonzero((f >= lo) & (f <= hi)) >= n


@pytest.mark.parametrize("n", [5, DEFAULT_POINTS_PER_BAND])
def test_peaks_are_captured_to_99_percent_of_the_closed_form(n):
    fk, frf = _closed_form()
    f = frequency_grid(f"auto:5:500:{n}", system=_chain().system())
    H = np.array([frf(x) for x in f])
    for lo, hi in zip(*_bands(fk, G)):
        inside = (f >= lo) & (f <= hi)
        for j in range(2):
            peak = -minimize_scalar(lambda x: -abs(frf(x)[j]), bounds=(lo, hi), method="bounded",
                                    options={"xatol": 1e-10}).fun
            assert np.abs(H[inside, j]).max() >= 0.99 * peak


def test_the_default_rfft_grid_under_resolves_the_low_band():
    # what the spec is for: 0.488 Hz steps put 1 or 2 points in the ~0.5 Hz wide band at ~25 Hz
    fk, _ = _closed_form()
    f = np.fft.rfftfreq(4096, 1 / 2000.0)
    lo, hi = _bands(fk, G)
    assert np.count_nonzero((f >= lo[0]) & (f <= hi[0])) < 3


def test_proportional_damping_gives_the_viscous_loss_factor():
    chain = _chain(g=0.0).system()
    alpha, beta = 3.0, 2e-5
    s = System(K=chain.K, C=alpha * chain.M + beta * chain.K, M=chain.M, b=chain.b)
    modes = modal_bands(s, 1.0, 1000.0)
    w = 2 * np.pi * _closed_form()[0]
    np.testing.assert_allclose(modes.loss_factors, alpha / w + beta * w, rtol=1e-9)  # 2 zeta


def test_sliced_eigensolver_finds_the_chain_modes():
    # fixed-free chain of N unit masses and springs k: lam_j = 4k sin^2((2j - 1) pi / (2 (2N + 1)))
    n, k = 800, 1.0e6
    K = sp.diags([-k * np.ones(n - 1), 2 * k * np.ones(n), -k * np.ones(n - 1)], [-1, 0, 1], format="lil")
    K[n - 1, n - 1] = k
    s = System(K=K.tocsc(), C=None, M=sp.eye(n, format="csc"), b=np.eye(n)[-1], g=G)
    j = np.arange(1, n + 1)
    exact = np.sqrt(4 * k * np.sin((2 * j - 1) * np.pi / (2 * (2 * n + 1))) ** 2) / (2 * np.pi)
    modes = modal_bands(s, 1.0, 100.0)
    found_to = min(modes.overlap_from_hz, 100.0)
    want = exact[(exact >= 1.0) & (exact < found_to)]
    assert want.size >= 10
    np.testing.assert_allclose(modes.freqs_hz[modes.freqs_hz < found_to], want, rtol=1e-8)
    # above the overlap the grid still puts n points in every band, without listing the modes
    f = auto_grid(s, "auto:1:100:5", modes=modes)
    for lo, hi in zip(*_bands(exact[(exact > 1.0) & (exact < 99.0)], G)):
        assert np.count_nonzero((f >= lo) & (f <= hi)) >= 5


@pytest.mark.parametrize("spec", ["auto:10", "auto:-1:5", "auto:5:1", "auto:1:5:0", "auto:0:5", "auto:a:5",
                                  "auto:1:5:2.5", "auto:1:inf", "auto:1:5:7:9"])
def test_bad_specs_raise_naming_the_spec(spec):
    with pytest.raises(ValueError, match=f"'{spec}'"):
        parse_auto(spec)
    with pytest.raises(ValueError, match=f"'{spec}'"):
        frequency_grid(spec, system=_chain().system())
    with pytest.raises(ValueError, match=f"'{spec}'"):
        femfreq.solve(_chain(), freqs_hz=spec, cluster=None, progress=False)


def test_auto_spec_needs_a_model():
    with pytest.raises(ValueError, match="'auto:20:2000'.*model"):
        frequency_grid("auto:20:2000")


def test_peak_grid_rejects_bad_modes():
    with pytest.raises(ValueError, match="loss factors"):
        peak_grid([10.0], [-0.1], 1.0, 100.0)
    with pytest.raises(ValueError, match="mode frequencies"):
        peak_grid([0.0], [0.02], 1.0, 100.0)
    with pytest.raises(ValueError, match="above"):
        peak_grid([10.0], [0.02], 100.0, 1.0)


@pytest.mark.parametrize("method", ["direct", "fast"])
def test_solve_with_an_auto_grid_end_to_end(method):
    model = _chain()
    fk, frf = _closed_form()
    r = femfreq.solve(model, freqs_hz="auto:20:2000", method=method, cluster=None, progress=False)
    np.testing.assert_array_equal(r.freqs_hz, auto_grid(model.system(), "auto:20:2000"))
    expected = np.array([frf(x) for x in r.freqs_hz])
    np.testing.assert_allclose(r.response, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    assert abs(r.response[:, 1]).max() >= 0.99 * abs(frf(fk[0])[1])


_RUN_AUTO = """
import hashlib, sys
import femfreq
from femfreq.spectra import frequency_grid
model = femfreq.load_model("satellite", level=2)
grid = frequency_grid("auto:1:400", system=model.system())
r = femfreq.solve(model, freqs_hz="auto:1:400", method="direct", cluster=None, progress=False,
                  out=sys.argv[1], resume=sys.argv[2] == "resume")
print(hashlib.sha1(grid.tobytes()).hexdigest(), r.complete, hashlib.sha1(r.freqs_hz.tobytes()).hexdigest())
"""


def test_an_auto_grid_sweep_resumes_with_other_blas_threads(tmp_path):
    """The auto grid comes from the model's modes, whose last bits depend on the BLAS/MKL
    threads: a sweep written with 1 thread was refused on resume with 2 ("freqs_hz
    differ"). The resume now runs on the file's own grid."""
    import os
    import subprocess
    import sys

    out = tmp_path / "auto.h5"
    runs = []
    for threads, mode in ((1, "new"), (2, "resume")):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads))
        proc = subprocess.run([sys.executable, "-c", _RUN_AUTO, str(out), mode], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(proc.stdout.split())
    (grid1, complete1, used1), (grid2, complete2, used2) = runs
    if grid1 == grid2:
        pytest.skip("the auto grids agree bit for bit with 1 and 2 threads on this machine: nothing to resume across")
    assert complete1 == complete2 == "True"
    assert used1 == grid1 and used2 == grid1  # the resumed run kept the file's grid
