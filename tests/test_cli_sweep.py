"""`femfreq sweep`: the command line end to end (serial and on a local cluster)."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import femfreq
from femfreq._cli.main import main


def test_sweep_rod_serial_writes_results_and_plots(tmp_path, capsys):
    out = tmp_path / "rod.h5"
    code = main(["sweep", "rod", "--serial", "--freqs", "0:600:61", "-o", str(out),
                 "--plot", str(tmp_path / "plots"), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    r = femfreq.read_results(out)
    assert r.complete and r.response.shape[0] == 61
    # the same sweep through the library gives the same numbers
    ref = femfreq.solve(femfreq.load_model("rod"), freqs_hz="0:600:61", cluster=None, progress=False)
    np.testing.assert_allclose(r.response, ref.response, rtol=1e-12)
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert any("frf" in p for p in pngs) and all((tmp_path / "plots" / p).stat().st_size > 1000 for p in pngs)


def test_sweep_refuses_to_clobber_and_resumes(tmp_path, capsys):
    out = tmp_path / "rod.h5"
    args = ["sweep", "rod", "--serial", "--freqs", "10,20,30", "-o", str(out), "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert main(args + ["--overwrite"]) == 0


def test_sweep_on_local_cluster_equals_serial(tmp_path):
    out = tmp_path / "beam.h5"
    assert main(["sweep", "beam", "--workers", "2", "--freqs", "1:300:24", "-o", str(out), "--no-progress"]) == 0
    ref = femfreq.solve(femfreq.load_model("beam"), freqs_hz="1:300:24", cluster=None, progress=False)
    np.testing.assert_allclose(femfreq.read_results(out).response, ref.response, rtol=1e-12)


def test_sweep_matrices_from_a_mat_file(tmp_path):
    k = 1000.0
    K = sp.csc_matrix(np.array([[2 * k, -k], [-k, k]]))
    M = sp.csc_matrix(np.eye(2))
    freqs = np.array([1.0, 2.0, 5.0])
    scipy.io.savemat(tmp_path / "in.mat", {"K": K, "C": 0.01 * K, "M": M, "b": np.array([[0.0], [1.0]]),
                                           "freqs": freqs, "P": np.ones(3), "output_dofs": np.array([2.0])})
    out = tmp_path / "out.mat"
    assert main(["sweep", "--matrices", str(tmp_path / "in.mat"), "-o", str(out), "--serial", "--no-progress"]) == 0
    got = scipy.io.loadmat(out)["response"]
    w = 2 * np.pi * freqs
    ref = [np.linalg.solve(K.toarray() * (1 + 0.01j * wi) - wi**2 * np.eye(2), [0, 1.0])[1] for wi in w]
    np.testing.assert_allclose(got.ravel(), ref, rtol=1e-12)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "nosuchmodel", "--serial"], "nosuchmodel"),
        (["sweep", "rod", "--serial", "--freqs=-5:10:3"], "-5"),
        (["sweep", "--serial"], "give a model"),
        (["sweep", "rod", "--serial", "--solver", "magic", "--freqs", "1"], "unknown solver 'magic'"),
    ],
)
def test_sweep_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("femfreq: error:") and message in err[-1]


def test_field_export_matches_a_dense_solve(tmp_path, capsys):
    import meshio

    out = tmp_path / "beam.vtu"
    assert main(["field", "beam", "--level", "1", "--freq", "40", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    model = femfreq.load_model("beam", level=1)
    K, C, M, b = model.matrices()
    w = 2 * np.pi * 40
    A = K.toarray() * (1 + 1j * model.damping.g) + 1j * w * C.toarray() - w**2 * M.toarray()
    x = model.expand(np.linalg.solve(A, b)).reshape(-1, 2)
    got = meshio.read(out).point_data["amplitude"][:, :2]
    np.testing.assert_allclose(got, np.abs(x), rtol=1e-9, atol=1e-12 * np.abs(x).max())
    from helpers import vtu_field_data

    assert vtu_field_data(out)["frequency_hz"].tolist() == [40.0]  # ParaView shows it with the data


def test_field_rejects_negative_frequency(capsys):
    assert main(["field", "beam", "--level", "1", "--freq=-3", "-o", "x.vtu"]) == 2
    assert "freq_hz must be finite and >= 0 (got -3.0)" in capsys.readouterr().err
