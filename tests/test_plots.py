"""plots: figures are written, non-empty, and carry the expected axes, labels and lines."""

from types import SimpleNamespace

import numpy as np
import pytest

from femfreq._cli.main import main
from femfreq.plots import plot_all, plot_frf, plot_load, plot_mesh, plot_model, plot_residuals, plot_time
from femfreq.results import ResultWriter, SweepResult
from femfreq.spectra import load_spectrum, pyroshock, rfft_freqs, to_time

PNG = b"\x89PNG\r\n\x1a\n"


def _sdof_result(n_out=3, n_fft=256, dt=5e-4, done=None):
    """A sweep of uncoupled spring-mass-dampers (f_n = 40, 80, 120 ... Hz) under a pyroshock."""
    freqs = rfft_freqs(n_fft, dt)
    f = pyroshock(dt=dt, n=n_fft)
    P = load_spectrum(f, n_fft)
    w = 2 * np.pi * freqs[:, None]
    k = (2 * np.pi * 40.0 * np.arange(1, n_out + 1)) ** 2
    H = 1.0 / (k - w**2 + 1j * w * 0.02 * np.sqrt(k))
    x = H * P[:, None]
    F = freqs.size
    done = np.ones(F, bool) if done is None else done
    method = np.where(done, np.where(freqs < 200, 1, 2), 0).astype(np.int8)
    return SweepResult(freqs_hz=freqs, response=np.where(done[:, None], x, np.nan), done=done, load_spectrum=P,
                       rel_residual=np.where(done, 1e-14 + 1e-15 * freqs, np.nan),
                       backward_error=np.where(done, 1e-17, np.nan), method=method,
                       outputs={"node": np.arange(n_out), "direction": np.zeros(n_out, np.int8),
                                "dof": 2 * np.arange(n_out), "xy": np.zeros((n_out, 2))},
                       t=np.arange(n_fft) * dt, time_response=to_time(x, n_fft),
                       attrs={"model_name": "sdof", "tol": 1e-6})


def _check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000


def test_frf_few_outputs(tmp_path):
    r = _sdof_result(n_out=3)
    fig = plot_frf(r, tmp_path / "frf.png")
    _check_png(tmp_path / "frf.png")
    ax_mag, ax_ph = fig.axes[:2]
    assert ax_mag.get_yscale() == "log"
    assert "x / P" in ax_mag.get_ylabel() and "[Hz]" in ax_ph.get_xlabel() and "[deg]" in ax_ph.get_ylabel()
    assert "sdof" in ax_mag.get_title()
    labels = [line.get_label() for line in ax_mag.get_lines()]
    assert labels == ["node 0 x", "node 1 x", "node 2 x"]  # all shown: no RMS line
    # the plotted magnitude is |H| = |x / P|: the SDOF receptance peaks near 40 Hz
    xdata, ydata = ax_mag.get_lines()[0].get_data()
    assert abs(xdata[np.nanargmax(ydata)] - 40.0) < 5


def test_frf_many_outputs_plots_a_few_and_the_envelope(tmp_path):
    r = _sdof_result(n_out=12)
    fig = plot_frf(r, tmp_path / "frf.png", max_lines=4)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 5 and lines[-1].get_label() == "RMS of all 12 outputs"
    assert fig.axes[0].get_legend().get_title().get_text() == "4 of 12 outputs (largest peaks)"
    # largest peaks first: the softest spring (node 0)
    assert lines[0].get_label() == "node 0 x"
    rms = lines[-1].get_ydata()
    np.testing.assert_allclose(rms, np.sqrt(np.mean(np.abs(r.frf) ** 2, axis=1)), rtol=1e-12)


def test_frf_of_a_partial_result_and_of_plain_arrays(tmp_path):
    done = np.zeros(129, bool)
    done[:60] = True
    fig = plot_frf(_sdof_result(done=done), tmp_path / "partial.png", quantity="response")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "partial: 60 of 129 frequencies done" in texts
    assert fig.axes[0].get_ylabel().startswith("|x|")
    fig = plot_frf((np.linspace(0, 10, 11), np.ones((11, 1)) * (1 + 1j)), tmp_path / "arrays.png")
    assert len(fig.axes[0].get_lines()) == 1
    with pytest.raises(ValueError, match="quantity must be 'frf' or 'response'"):
        plot_frf(_sdof_result(), quantity="bogus")
    with pytest.raises(ValueError, match="no frequency is done"):
        plot_frf(_sdof_result(done=np.zeros(129, bool)))
    with pytest.raises(TypeError, match="expected a SweepResult"):
        plot_frf(42)


def test_time_response(tmp_path):
    r = _sdof_result(n_out=6)
    fig = plot_time(r, tmp_path / "time.png", max_lines=2)
    _check_png(tmp_path / "time.png")
    ax_load, ax = fig.axes
    assert "[s]" in ax.get_xlabel() and "displacement" in ax.get_ylabel() and "load" in ax_load.get_ylabel()
    np.testing.assert_allclose(ax_load.get_lines()[0].get_ydata(), pyroshock(dt=5e-4, n=256), atol=1e-12)
    assert [line.get_label() for line in ax.get_lines()] == ["node 0 x", "node 1 x"]
    assert any("range of all 6 outputs" in str(c.get_label()) for c in ax.collections)
    fig = plot_time(r, show_load=False, t_max=np.inf)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlim()[1] == pytest.approx(r.t[-1])
    with pytest.raises(ValueError, match="no time response"):
        plot_time(SweepResult(freqs_hz=[1.0, 2.0], response=np.ones((2, 1))))


def test_load_and_residuals(tmp_path):
    t = np.arange(4096) * 5e-4
    f = pyroshock()
    fig = plot_load(t, f, rfft_freqs(4096, 5e-4), load_spectrum(f), tmp_path / "load.png", force_unit="N")
    _check_png(tmp_path / "load.png")
    assert fig.axes[0].get_xlabel() == "time  [s]" and fig.axes[0].get_ylabel() == "force  [N]"
    assert fig.axes[1].get_yscale() == "log" and "[Hz]" in fig.axes[1].get_xlabel()
    with pytest.raises(ValueError, match="t and f must be 1-D of the same length"):
        plot_load(t[:-1], f, [0.0], [1.0])
    fig = plot_residuals(_sdof_result(), tmp_path / "res.png")
    _check_png(tmp_path / "res.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "[Hz]" in ax.get_xlabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("direct" in s for s in legend) and any("fast" in s for s in legend) and "tol = 1e-06" in legend


def test_mesh(tmp_path):
    # a 3 x 2 grid of squares split into triangles
    xs, ys = np.meshgrid(np.arange(4.0), np.arange(3.0))
    points = np.column_stack([xs.ravel(), ys.ravel()])
    edges = np.array([[i, i + 1] for i in range(12) if i % 4 != 3] + [[i, i + 4] for i in range(8)]
                     + [[i, i + 5] for i in range(8) if i % 4 != 3])
    fig = plot_mesh(points, edges, tmp_path / "mesh.png", fixed_nodes=[0, 4, 8], load_nodes=[11],
                    output_nodes=[5, 6], load_direction=[0, 1])
    _check_png(tmp_path / "mesh.png")
    ax = fig.axes[0]
    assert ax.get_aspect() == 1.0
    segs = ax.collections[0].get_segments()
    assert len(segs) == len(edges)
    np.testing.assert_array_equal(segs[0], points[edges[0]])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["fixed (3 nodes)", "output (2 nodes)", "load (1 node)"]
    assert len(ax.texts) == 1  # the load arrow, inside the axes limits
    assert ax.get_ylim()[1] > 2 + 0.12 * 3  # the limits include the arrow tip
    assert "[length]" in ax.get_xlabel()
    with pytest.raises(ValueError, match=r"output_nodes has node 99; nodes are 0..11"):
        plot_mesh(points, edges, output_nodes=[99])
    with pytest.raises(ValueError, match=r"edges refer to node 12"):
        plot_mesh(points, [[0, 12]])
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        plot_mesh(np.ones((3, 3)), edges)


def test_plot_model_marks_constraints_load_and_outputs(tmp_path):
    model = SimpleNamespace(name="toy", points=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
                            edges=np.array([[0, 1], [1, 2], [0, 2]]), fixed_dofs=np.array([0, 1, 3]),
                            load_dofs=np.array([5]), b_full=np.array([0, 0, 0, 0, 0, 1.0]),
                            output_nodes=np.array([1]), n_free=3)
    fig = plot_model(model, tmp_path / "m.png")
    _check_png(tmp_path / "m.png")
    assert fig.axes[0].get_title() == "toy: 3 nodes, 3 rods, 3 free DOF"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "fixed (2 nodes)", "output (1 node)", "load (1 node)"]


def test_plot_all_and_cli(tmp_path, capsys):
    r = _sdof_result()
    path = tmp_path / "sdof.h5"
    with ResultWriter.create(path, freqs_hz=r.freqs_hz, load_spectrum=r.load_spectrum, outputs=r.outputs,
                             attrs={"model_name": "sdof", "n_fft": 256, "dt": 5e-4, "tol": 1e-6}) as w:
        w.write_chunk(SimpleNamespace(index=np.arange(r.n_freqs), response=r.response, rel_residual=r.rel_residual,
                                      backward_error=r.backward_error, method=r.method, worker="local",
                                      t_start=0.0, t_end=1.0))
        w.write_time(r.t, r.time_response)
        w.finish()
    assert main(["plot", str(path), "-o", str(tmp_path / "out"), "--what", "frf,time,residual,load"]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in printed] == ["sdof_frf.png", "sdof_time.png", "sdof_residual.png",
                                                      "sdof_load.png"]
    for p in printed:
        _check_png(tmp_path / "out" / p.rsplit("/", 1)[1])
    assert main(["plot", str(path)]) == 0  # default: next to the file
    assert len(list(tmp_path.glob("sdof_*.png"))) == 3
    assert main(["plot", str(path), "--what", "frf,bogus"]) == 2
    assert "unknown plot 'bogus'" in capsys.readouterr().err
    files = plot_all(SweepResult(freqs_hz=[1.0, 2.0], response=np.ones((2, 1))), tmp_path / "x", fmt="svg")
    assert [f.rsplit("/", 1)[1] for f in files] == ["femfreq_frf.svg", "femfreq_residual.svg"]
    with pytest.raises(ValueError, match="mesh plot needs the model"):
        plot_all(r, tmp_path, what="mesh")
    with pytest.raises(ValueError, match="cannot plot 'time'"):
        plot_all(SweepResult(freqs_hz=[1.0, 2.0], response=np.ones((2, 1))), tmp_path, what=["time"])
