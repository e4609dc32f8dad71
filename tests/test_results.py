"""results: the HDF5 layout, round trips, resume, refusing to clobber, SIGKILL crash safety."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import femfreq
from femfreq.codes import MEANING, Method
from femfreq.results import FORMAT, FORMAT_VERSION, ResultWriter, SweepResult, read_results


def _outputs(n_out):
    node = np.arange(n_out, dtype=np.int64) * 5 + 3
    direction = (np.arange(n_out) % 2).astype(np.int8)
    return {"node": node, "direction": direction, "dof": 2 * node + direction,
            "xy": np.column_stack([node * 0.5, node * 0.25 + 1])}


def _chunk(idx, n_out, *, worker="tcp://127.0.0.1:1234", method=1, seed=None):
    idx = np.asarray(idx, dtype=np.int64)
    j = np.arange(n_out)
    response = np.sin(idx[:, None] * 1.3 + j) + 1j * np.cos(idx[:, None] * 0.7 - 2 * j)
    return SimpleNamespace(index=idx, response=response, rel_residual=1e-14 * (idx + 1),
                           backward_error=1e-16 * (idx + 2), method=np.full(idx.size, method, np.int8),
                           worker=worker, t_start=1.7e9 + idx.sum(), t_end=1.7e9 + idx.sum() + 0.5)


def _create(path, F=10, n_out=3, **kw):
    kw.setdefault("attrs", {"method": "direct", "solver": "superlu", "model_name": "toy", "n_fft": 2 * (F - 1) or 2,
                            "dt": 1e-3})
    return ResultWriter.create(path, freqs_hz=np.arange(F) * 2.5, load_spectrum=np.linspace(1, 2, F) * (1 - 1j),
                               outputs=_outputs(n_out), **kw)


# --------------------------------------------------------------------------- round trip and layout


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 40), st.integers(1, 5), st.integers(1, 9), st.booleans(), st.integers(0, 2**31 - 1))
def test_round_trip(tmp_path, F, n_out, chunk, with_time, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / f"r{seed}.h5"
    freqs = np.sort(rng.uniform(0, 1000, F))
    P = rng.standard_normal(F) + 1j * rng.standard_normal(F)
    outs = _outputs(n_out)
    n_fft = 2 * F + 1 if with_time else None
    order = rng.permutation(F)
    model = {"name": "toy", "n_dof": 12, "E": 1e7, "levels": ["pq", "rpq34"]}
    with ResultWriter.create(path, freqs_hz=freqs, load_spectrum=P, outputs=outs, n_fft=n_fft, overwrite=True,
                             attrs={"method": "direct", "solver": "superlu", "extra": {"a": 1}}, model=model) as w:
        assert not w.done.any()
        for s in range(0, F, chunk):
            w.write_chunk(_chunk(order[s:s + chunk], n_out, worker=f"w{s}"))
        if with_time:
            x_t = rng.standard_normal((n_fft, n_out))
            w.write_time(np.arange(n_fft) * 1e-3, x_t)
        w.finish(timings={"wall_s": 1.5})
    r = read_results(path)
    ref = _chunk(np.arange(F), n_out)
    np.testing.assert_array_equal(r.freqs_hz, freqs)
    np.testing.assert_array_equal(r.load_spectrum, P)
    np.testing.assert_array_equal(r.response, ref.response)
    np.testing.assert_array_equal(r.rel_residual, ref.rel_residual)
    np.testing.assert_array_equal(r.backward_error, ref.backward_error)
    np.testing.assert_array_equal(r.method, np.ones(F))
    assert r.done.all() and r.complete and r.status == "complete"
    for key in outs:
        np.testing.assert_array_equal(r.outputs[key], outs[key])
    if with_time:
        np.testing.assert_array_equal(r.t, np.arange(n_fft) * 1e-3)
        np.testing.assert_array_equal(r.time_response, x_t)
    else:
        assert r.t is None and r.time_response is None
    n_chunks = -(-F // chunk)
    assert list(r.chunks["worker"]) == [f"w{s}" for s in range(0, F, chunk)]
    np.testing.assert_array_equal(r.chunks["count"], [min(chunk, F - s) for s in range(0, F, chunk)])
    np.testing.assert_array_equal(r.chunks["start"], [order[s:s + chunk].min() for s in range(0, F, chunk)])
    assert r.chunks["t_start"].shape == (n_chunks,) and np.all(r.chunks["t_end"] > r.chunks["t_start"])
    assert r.attrs["solver"] == "superlu" and r.attrs["extra"] == {"a": 1} and r.attrs["time_wall_s"] == 1.5
    assert r.model == {"name": "toy", "n_dof": 12, "E": 1e7, "levels": ["pq", "rpq34"]}
    assert set(r.versions) >= {"femfreq", "numpy", "scipy", "h5py", "dask", "distributed", "hdf5"}


def test_layout_matches_the_documented_one(tmp_path):
    path = tmp_path / "layout.h5"
    F, n_out, n_fft = 9, 4, 16
    with _create(path, F=F, n_out=n_out) as w:
        size0 = os.path.getsize(path)
        w.write_chunk(_chunk([0, 1, 2], n_out))
        w.write_chunk(_chunk([5, 8], n_out))  # not contiguous
        w.write_time(np.arange(n_fft) * 1e-3, np.ones((n_fft, n_out)))
        # everything was preallocated: writing results never grows the file
        assert os.path.getsize(path) == size0
    expected = {
        "freqs_hz": ((F,), np.float64), "load_spectrum": ((F,), np.complex128),
        "response": ((F, n_out), np.complex128), "done": ((F,), np.bool_),
        "rel_residual": ((F,), np.float64), "backward_error": ((F,), np.float64), "method": ((F,), np.int8),
        "outputs/node": ((n_out,), np.int64), "outputs/direction": ((n_out,), np.int8),
        "outputs/dof": ((n_out,), np.int64), "outputs/xy": ((n_out, 2), np.float64),
        "time/t": ((n_fft,), np.float64), "time/response": ((n_fft, n_out), np.float64),
    }
    assert path.read_bytes()[8] == 0  # superblock version 0 (see the crash-safety notes)
    with h5py.File(path, "r") as h5:
        found = []
        h5.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert sorted(found) == sorted([*expected, "chunks"])
        for name, (shape, dtype) in expected.items():
            assert h5[name].shape == shape, name
            assert h5[name].dtype == np.dtype(dtype), name
        # complex as h5py's compound (r, i), readable from MATLAB/Octave
        assert h5["response"].id.get_type().get_class() == h5py.h5t.COMPOUND
        table = h5["chunks"]
        assert table.maxshape == (None,) and table.dtype.names == ("start", "count", "worker", "t_start", "t_end")
        assert {"format", "format_version", "femfreq_version", "created", "status", "method", "solver",
                "model_name", "n_fft", "dt"} <= set(h5.attrs)
        assert h5.attrs["format"] == FORMAT and h5.attrs["status"] == "running"  # a str in h5py, char in MATLAB
        assert table.shape == (2,)  # only the chunks that ran
        assert isinstance(h5["model"], h5py.Group) and "numpy" in h5["versions"].attrs
        np.testing.assert_array_equal(h5["done"][()], np.isin(np.arange(F), [0, 1, 2, 5, 8]))
        assert np.isnan(h5["response"][3]).all()  # not done: NaN, never a plausible zero


def _raw_data_regions(h5):
    """(offset, size) of every dataset's raw data in the file."""
    regions = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            offset = obj.id.get_offset()
            if offset is not None:  # contiguous
                regions.append((offset, obj.id.get_storage_size()))
            else:  # chunked
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    regions.append((info.byte_offset, info.size))

    h5.visititems(visit)
    return regions


def test_writing_results_never_touches_metadata(tmp_path):
    """The crash-safety argument, checked byte by byte: resuming, writing chunks and the
    time response change only raw data, never a byte of HDF5 metadata, so a kill at any
    instant leaves the structure written at creation."""
    path = tmp_path / "meta.h5"
    F, n_out, n_fft = 50, 3, 98
    _create(path, F=F, n_out=n_out).close()
    with _create(path, F=F, n_out=n_out, resume=True) as w:
        # (opening for writing sets the superblock's file-consistency flags, once; superblock
        # version 0 does not enforce them, so a killed writer's file still opens)
        before = np.frombuffer(path.read_bytes(), np.uint8)
        for s in range(0, F, 7):
            w.write_chunk(_chunk(np.arange(s, min(s + 7, F)), n_out))
        w.write_time(np.arange(n_fft) * 1e-3, np.ones((n_fft, n_out)))
        after = np.frombuffer(path.read_bytes(), np.uint8)  # flushed, still open
        regions = _raw_data_regions(w._h5)
        w.finish()
        finished = np.frombuffer(path.read_bytes(), np.uint8)
    assert after.size == before.size
    metadata = np.ones(before.size, bool)
    for offset, size in regions:
        metadata[offset:offset + size] = False
    changed = np.flatnonzero(before != after)
    assert changed.size > 0 and not metadata[changed].any()
    # finish() rewrites the attributes created with the file (status, finished, n_done) and
    # trims /chunks: a few metadata bytes, no raw data, no growth of the file
    assert finished.size == after.size
    changed = np.flatnonzero(finished != after)
    assert 0 < changed.size < 512 and metadata[changed].all()
    r = read_results(path)
    assert r.complete and r.attrs["status"] == "complete" and r.attrs["n_done"] == F


# --------------------------------------------------------------------------- resume and overwrite


def test_refuses_to_clobber_existing_results(tmp_path):
    path = tmp_path / "r.h5"
    with _create(path) as w:
        w.write_chunk(_chunk([0, 1], 3))
    with pytest.raises(FileExistsError, match=r"already exists; pass resume=True \(--resume\).*overwrite=True"):
        _create(path)
    assert read_results(path).done.sum() == 2  # untouched
    with pytest.raises(ValueError, match="either resume=True or overwrite=True, not both"):
        _create(path, resume=True, overwrite=True)
    with _create(path, overwrite=True) as w:
        assert not w.done.any()


def test_resume_keeps_what_is_done_and_finishes(tmp_path):
    path = tmp_path / "r.h5"
    with _create(tmp_path / "new.h5", resume=True) as w:  # resume of a missing file creates it
        assert w.missing.size == 10
    with _create(path) as w:
        w.write_chunk(_chunk([0, 1, 2], 3))
        w.write_chunk(_chunk([7], 3))
    r = read_results(path)
    assert not r.complete and r.status == "running"
    np.testing.assert_array_equal(r.missing, [3, 4, 5, 6, 8, 9])
    with _create(path, resume=True) as w:
        np.testing.assert_array_equal(w.missing, [3, 4, 5, 6, 8, 9])
        for chunk in np.array_split(w.missing, 2):
            w.write_chunk(_chunk(chunk, 3, worker="again"))
        w.finish()
    r = read_results(path)
    assert r.complete
    np.testing.assert_array_equal(r.response, _chunk(np.arange(10), 3).response)
    assert list(r.chunks["worker"]).count("again") == 2 and len(r.chunks["worker"]) == 4


def test_interrupted_block_stays_running(tmp_path):
    path = tmp_path / "r.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with _create(path) as w:
            w.write_chunk(_chunk([4], 3))
            raise RuntimeError("boom")
    r = read_results(path)
    assert r.status == "running" and not r.complete and r.done.sum() == 1


@pytest.mark.parametrize("change, match", [
    (dict(freqs_hz=np.arange(11) * 2.5, load_spectrum=np.ones(11)),
     "freqs_hz differ: the file has 10 frequencies, this sweep 11"),
    (dict(freqs_hz=np.r_[np.arange(9) * 2.5, 99.0]), r"freqs_hz differ at 1 positions, first at 9: file 22.5 Hz"),
    (dict(outputs=_outputs(4)), "n_out differs: the file has 3 output DOF, this sweep 4"),
    (dict(outputs={**_outputs(3), "dof": _outputs(3)["dof"] + 2}), "outputs dof differ at position 0"),
    (dict(outputs={**_outputs(3), "xy": _outputs(3)["xy"] + 1}), "outputs xy"),
    (dict(load_spectrum=np.ones(10)), "load_spectrum differs"),
])
def test_resume_mismatch_is_named(tmp_path, change, match):
    path = tmp_path / "r.h5"
    with _create(path) as w:
        w.write_chunk(_chunk([0], 3))
    kw = dict(freqs_hz=np.arange(10) * 2.5, load_spectrum=np.linspace(1, 2, 10) * (1 - 1j), outputs=_outputs(3))
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        ResultWriter.create(path, resume=True, **kw)
    assert read_results(path).done.sum() == 1


def test_not_a_result_file(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = [1, 2]
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"other\.h5' is not a femfreq result file"):
        read_results(other)
    with pytest.raises(ValueError, match=r"notes\.h5' is not an HDF5 file"):
        read_results(text)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_results(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match=r"cannot resume .*other\.h5'.*not a femfreq result file"):
        _create(other, resume=True)
    with pytest.raises(ValueError, match=r"cannot resume .*notes\.h5'.*not an HDF5 file"):
        _create(text, resume=True)


# --------------------------------------------------------------------------- bad input


def test_write_chunk_rejects_bad_chunks(tmp_path):
    with _create(tmp_path / "r.h5", F=5, n_out=2) as w:
        with pytest.raises(ValueError, match=r"chunk index\[1\] = 5 is out of range \[0, 5\)"):
            w.write_chunk(_chunk([3, 5], 2))
        with pytest.raises(ValueError, match="chunk index repeats frequency 1"):
            w.write_chunk(_chunk([1, 1], 2))
        with pytest.raises(ValueError, match=r"response must have shape \(2, 2\) \(has \(2, 3\)\)"):
            w.write_chunk(_chunk([0, 1], 3))
        bad = _chunk([0, 1], 2)
        bad.rel_residual = np.ones(3)
        with pytest.raises(ValueError, match=r"rel_residual must have shape \(2,\) \(has \(3,\)\)"):
            w.write_chunk(bad)
        with pytest.raises(ValueError, match=r"chunk method has code 7, not one of 0 not done; 1 direct.*3 skipped"):
            w.write_chunk(_chunk([0, 1], 2, method=7))
        with pytest.raises(TypeError, match="needs a ChunkResult-like object"):
            w.write_chunk(SimpleNamespace(index=[0], response=np.zeros((1, 2))))
        with pytest.raises(ValueError, match=r"time response must be t \(8,\) and response \(8, 2\)"):
            w.write_time(np.arange(8), np.ones((7, 2)))
        assert not w.done.any()
    with ResultWriter.create(tmp_path / "nofft.h5", freqs_hz=[1.0, 2.0], outputs={"dof": [3]}) as w:
        with pytest.raises(ValueError, match="no time grid"):
            w.write_time(np.arange(4), np.ones(4))


@pytest.mark.parametrize("kw, err, match", [
    (dict(freqs_hz=[]), ValueError, "freqs_hz must not be empty"),
    (dict(freqs_hz=[[1.0, 2.0]]), ValueError, r"freqs_hz must be one-dimensional \(got shape \(1, 2\)\)"),
    (dict(freqs_hz=[1.0, -1.0]), ValueError, r"freqs_hz must be finite and >= 0 Hz \(got \S*-1.0\S* at index 1\)"),
    (dict(load_spectrum=[1.0, 2.0, 3.0]), ValueError, "load_spectrum has 3 values but there are 2 frequencies"),
    (dict(load_spectrum=[1.0, np.nan]), ValueError, "load_spectrum has a non-finite value at index 1"),
    (dict(outputs={"dof": []}), ValueError, "selects no DOF"),
    (dict(outputs={"xy": [[0, 0]]}), ValueError, "needs 'dof' or both 'node' and 'direction'"),
    (dict(outputs={"dof": [1, 2], "xy": [[0, 0]]}), ValueError, r"outputs\['xy'\] must have shape \(2, 2\)"),
    (dict(outputs={"dof": [1], "bogus": 1}), ValueError, r"unknown outputs keys \['bogus'\]"),
    (dict(outputs=[1, 2]), TypeError, "outputs must be a dict"),
    (dict(n_fft=1), ValueError, r"n_fft must be >= 2 \(got 1\)"),
])
def test_create_rejects_bad_arguments(tmp_path, kw, err, match):
    args = dict(freqs_hz=[1.0, 2.0], outputs={"dof": [0, 1]})
    args.update(kw)
    with pytest.raises(err, match=match):
        ResultWriter.create(tmp_path / "x.h5", **args)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("where", ["attrs", "model", "fingerprint"])
@pytest.mark.parametrize("defer", [True, False])
def test_an_attribute_hdf5_cannot_hold_is_refused_at_creation(tmp_path, where, defer):
    # also when the file itself is only written with the first chunk (defer)
    kw = {where: {"method": "fast", "bad": {1, 2}}}
    with pytest.raises(TypeError, match=r"attribute 'bad' = \{1, 2\} cannot be stored in HDF5"):
        ResultWriter.create(tmp_path / "x.h5", freqs_hz=[1.0, 2.0], outputs={"dof": [0, 1]}, defer=defer, **kw)
    assert list(tmp_path.iterdir()) == []
    with _create(tmp_path / "x.h5", defer=True):  # and the path is free: the refused writer let its lock go
        pass


def test_skipped_rows_chunk_table_growth_and_outputs_from_dof(tmp_path):
    path = tmp_path / "r.h5"
    with ResultWriter.create(path, freqs_hz=[0.0, 1.0, 2.0], outputs={"dof": [5, 6]}) as w:
        pending = _chunk([0], 2, method=0)
        pending.response = np.full((1, 2), np.nan)
        w.write_chunk(pending)  # code 0: the row is written but stays not done
        for i in [1, 2, 1, 2, 1]:  # more chunks than frequencies: /chunks grows
            w.write_chunk(_chunk([i], 2))
        with pytest.warns(UserWarning, match="finishing with 1 of 3 frequencies not done"):
            w.finish()
    r = read_results(path)
    np.testing.assert_array_equal(r.done, [False, True, True])
    np.testing.assert_array_equal(r.method, [0, 1, 1])
    assert len(r.chunks["start"]) == 6 and r.status == "complete" and not r.complete
    np.testing.assert_array_equal(r.outputs["node"], [2, 3])
    np.testing.assert_array_equal(r.outputs["direction"], [1, 0])
    assert np.isnan(r.outputs["xy"]).all()
    assert r.labels == ["node 2 y", "node 3 x"]


# --------------------------------------------------------------------------- method codes and format versions


def test_skipped_frequency_is_done_named_in_meaning_and_not_resumed(tmp_path, caplog):
    """A singular 0 Hz point skipped on request is final: done, code 3, listed in the file's
    ``meaning``; resuming the file solves nothing (no chunk added, no skip logged again)."""
    K = np.array([[1.0, -1.0], [-1.0, 1.0]])  # two unit masses on a spring, free-free: K singular
    M = np.eye(2)
    b = np.array([1.0, 0.0])
    path = tmp_path / "skip.h5"

    def sweep(**kw):
        return femfreq.solve(K, None, M, b, freqs_hz=[0.0, 1.0], method=femfreq.Direct(skip_singular=True),
                             cluster=None, out=path, progress=False, **kw)

    r = sweep()
    np.testing.assert_array_equal(r.done, [True, True])
    np.testing.assert_array_equal(r.method, [Method.SKIPPED, Method.DIRECT])
    assert np.isnan(r.response[0]).all() and np.isfinite(r.response[1]).all()
    assert r.complete and r.missing.size == 0
    with h5py.File(path, "r") as h5:
        meaning = h5["method"].attrs["meaning"]
        assert h5.attrs["format_version"] == FORMAT_VERSION == 4
    assert meaning == MEANING and "3 skipped" in meaning
    n_chunks = len(r.chunks["start"])
    caplog.clear()
    again = sweep(resume=True)
    assert len(again.chunks["start"]) == n_chunks  # nothing was solved
    assert not [rec for rec in caplog.records if "skipping" in rec.getMessage()]
    np.testing.assert_array_equal(again.method, r.method)


def _version_1_file(path):
    """A result file exactly as format version 1 wrote it: 3 frequencies, the first skipped
    (done, code 3), the second solved directly, the third not done."""
    chunk_dtype = np.dtype([("start", "<i8"), ("count", "<i8"), ("worker", h5py.string_dtype("utf-8", 64)),
                            ("t_start", "<f8"), ("t_end", "<f8")])
    nan_c = complex(np.nan, np.nan)
    with h5py.File(path, "w", libver="earliest") as h5:
        h5["freqs_hz"] = [0.0, 2.5, 5.0]
        h5["load_spectrum"] = np.array([1.0, 1.0, 1.0], np.complex128)
        h5["response"] = np.array([[nan_c], [0.5 - 0.25j], [nan_c]])
        h5["done"] = np.array([True, True, False])
        h5["rel_residual"] = [np.nan, 1e-15, np.nan]
        h5["backward_error"] = [np.nan, 1e-17, np.nan]
        h5["method"] = np.array([3, 1, 0], np.int8)
        h5["method"].attrs["meaning"] = "0 not done, 1 direct, 2 fast"
        h5["outputs/node"] = np.array([4], np.int64)
        h5["outputs/direction"] = np.array([1], np.int8)
        h5["outputs/direction"].attrs["meaning"] = "0 = x, 1 = y"
        h5["outputs/dof"] = np.array([9], np.int64)
        h5["outputs/xy"] = np.array([[1.0, 2.0]])
        h5["time/t"] = np.zeros(0)
        h5["time/response"] = np.zeros((0, 1))
        table = h5.create_dataset("chunks", shape=(3,), maxshape=(None,), chunks=(3,), dtype=chunk_dtype)
        table[0] = (0, 2, "tcp://127.0.0.1:1", 1.7e9, 1.7e9 + 1)
        h5.create_group("model").attrs["name"] = "toy"
        h5.create_group("versions").attrs["femfreq"] = "0.1.0"
        h5.attrs.update({"format": "femfreq-results", "format_version": 1, "femfreq_version": "0.1.0",
                         "created": "2025-01-01T00:00:00+00:00", "method": "direct", "solver": "superlu",
                         "model_name": "toy", "status": np.bytes_(b"running\0"), "finished": np.bytes_(b"\0" * 32),
                         "n_done": np.int64(-1)})


def test_reads_a_version_1_file_and_resuming_upgrades_it(tmp_path):
    path = tmp_path / "v1.h5"
    _version_1_file(path)
    r = read_results(path)
    assert r.attrs["format_version"] == 1 and r.status == "running" and not r.complete
    np.testing.assert_array_equal(r.freqs_hz, [0.0, 2.5, 5.0])
    np.testing.assert_array_equal(r.done, [True, True, False])
    np.testing.assert_array_equal(r.method, [3, 1, 0])
    np.testing.assert_array_equal(r.response[1], [0.5 - 0.25j])
    assert np.isnan(r.response[[0, 2]]).all() and r.t is None
    np.testing.assert_array_equal(r.missing, [2])
    assert list(r.chunks["worker"]) == ["tcp://127.0.0.1:1"] and r.labels == ["node 4 y"]
    assert r.model == {"name": "toy"}
    outputs = {"node": [4], "direction": [1], "dof": [9], "xy": [[1.0, 2.0]]}
    with ResultWriter.create(path, freqs_hz=[0.0, 2.5, 5.0], outputs=outputs, resume=True) as w:
        np.testing.assert_array_equal(w.missing, [2])
        w.write_chunk(_chunk([2], 1, method=Method.SKIPPED))
        w.finish()
    r = read_results(path)
    assert r.complete and r.attrs["format_version"] == 4 and r.attrs["analysis"] == "point_load"
    np.testing.assert_array_equal(r.method, [3, 1, 3])
    np.testing.assert_array_equal(r.response[1], [0.5 - 0.25j])
    with h5py.File(path, "r") as h5:
        assert h5["method"].attrs["meaning"] == MEANING


def test_a_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "v5.h5"
    with _create(path):
        pass
    with h5py.File(path, "r+") as h5:
        h5.attrs["format_version"] = 5
    with pytest.raises(ValueError, match="has result format version 5; this femfreq reads up to 4"):
        read_results(path)
    with pytest.raises(ValueError, match=r"cannot resume .*format version 5; this femfreq writes 4"):
        _create(path, resume=True)


def test_sweep_result_in_memory_and_frf():
    P = np.array([2.0, 0.0, 1j])
    r = SweepResult(freqs_hz=[0, 1, 2], response=np.array([[4.0], [1.0], [1.0]]), load_spectrum=P)
    assert r.complete and r.n_freqs == 3 and r.n_out == 1
    np.testing.assert_allclose(r.frf[[0, 2], 0], [2.0, -1j])
    assert np.isnan(r.frf[1, 0])


# --------------------------------------------------------------------------- SIGKILL


_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from types import SimpleNamespace
    from femfreq.results import ResultWriter

    path, F, n_out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    def expected(idx):
        j = np.arange(n_out)
        return np.sin(idx[:, None] * 1.3 + j) + 1j * np.cos(idx[:, None] * 0.7 - 2 * j)
    with ResultWriter.create(path, freqs_hz=np.arange(F) * 0.5, load_spectrum=np.ones(F),
                             outputs={"dof": np.arange(n_out)}, attrs={"n_fft": 2 * (F - 1)},
                             resume=True) as w:
        todo = w.missing
        print("ready", todo.size, flush=True)
        for s in range(0, todo.size, 3):
            idx = todo[s:s + 3]
            w.write_chunk(SimpleNamespace(index=idx, response=expected(idx), rel_residual=idx * 1e-3,
                                          backward_error=idx * 1e-4, method=np.ones(idx.size, np.int8),
                                          worker="pid%d" % s, t_start=time.time(), t_end=time.time()))
            time.sleep(0.002)
        w.write_time(np.arange(2 * (F - 1)) * 1e-3, np.ones((2 * (F - 1), n_out)))
        w.finish()
    print("finished", flush=True)
""")


def _expected(d, j):
    """What the writer script writes at rows d (same formula as _chunk)."""
    return np.sin(d[:, None] * 1.3 + j) + 1j * np.cos(d[:, None] * 0.7 - 2 * j)


def test_sigkill_mid_sweep_leaves_a_readable_resumable_file(tmp_path):
    """A real writer process is SIGKILLed at several points; read, resume, finish."""
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "crash.h5"
    F, n_out = 1500, 4
    j = np.arange(n_out)
    done_before = 0
    for delay in (0.05, 0.2, 0.4, None):  # kill points; None: let it finish
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(F), str(n_out)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().startswith("ready")
            if delay is None:
                assert proc.wait(timeout=120) == 0
            else:
                time.sleep(delay)
                live = read_results(path)  # readable while the writer holds it open
                assert live.status == "running"
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        r = read_results(path)
        d = np.flatnonzero(r.done)
        # every row flagged done holds exactly what was written, residuals included
        np.testing.assert_array_equal(r.response[d], _expected(d, j))
        np.testing.assert_array_equal(r.rel_residual[d], d * 1e-3)
        assert np.all(r.method[d] == 1)
        assert np.count_nonzero(r.method[~r.done]) <= 3  # at most the chunk in flight is lost
        assert r.done.sum() >= done_before
        done_before = r.done.sum()
        if delay is not None:
            assert not r.complete and r.status == "running", "killed too late: raise F"
    assert r.complete and r.done.all() and r.t is not None


@pytest.mark.slow
def test_sigkill_at_many_points_including_creation(tmp_path):
    """Stress version: 12 kills at random moments, some before the file exists."""
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "crash.h5"
    F, n_out = 4000, 6
    j = np.arange(n_out)
    rng = np.random.default_rng(7)
    for k in range(13):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(F), str(n_out)],
                                stdout=subprocess.PIPE, text=True)
        try:
            if k == 12:
                assert proc.wait(timeout=300) == 0
            elif k % 4 == 0:
                time.sleep(rng.uniform(0.0, 1.0))  # maybe before or during creation
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            else:
                assert proc.stdout.readline().startswith("ready")
                time.sleep(rng.uniform(0.0, 0.6))
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not path.exists():
            continue
        r = read_results(path)
        d = np.flatnonzero(r.done)
        np.testing.assert_array_equal(r.response[d], _expected(d, j))
    assert r.complete and r.done.all()
