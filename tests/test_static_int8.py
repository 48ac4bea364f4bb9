"""Static int8 (W8A8, `--quantize int8-static`): activation scales fixed at export from real puzzles of
the model's task run through every supervision step; the manifest says how; the export's accuracy
guard holds a static bundle to PyTorch fp32 and reports a damaged calibration loudly, naming the worst
activations, which --keep-fp32 accepts. The model is the trained 4x4 Sudoku TRM (tests/trained.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bad_input import refused
from trained import load_trained, trained_model_path

from trm_edge.cli import main
from trm_edge.export.calibration import calibration_set


def test_calibration_covers_every_supervision_step():
    model = load_trained()
    cal = calibration_set(model, count=20, seed=5)
    S = model.config.halt_max_steps
    assert cal.provenance == {"task": "sudoku", "source": "sampler", "count": 20, "seed": 5, "steps": S,
                              "rows_per_activation": 20 * S, "method": "minmax"}
    assert len(cal.feeds) == 2 * S and {f["tokens"].shape[0] for f in cal.feeds} == {16, 4}   # chunks of 16
    first, later = cal.feeds[0], cal.feeds[1]
    np.testing.assert_array_equal(first["tokens"], later["tokens"])      # the same puzzles, step after step
    assert not np.allclose(first["z"], later["z"])                        # with the states the steps made
    assert np.allclose(first["z"], first["z"][0, 0])                      # step 1: the initial state


def test_many_positions_calibrate_in_smaller_batches():
    """An exporter holds a feed's every intermediate at once: the Maze model's 229 positions record 4 puzzles per
    feed, the published Maze/ARC size's 916 one (16 of them made ~36 GB of attention maps in onnxruntime)."""
    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.export.calibration import chunk_for
    maze = load_checkpoint(Path(__file__).resolve().parents[1] / "models" / "maze.safetensors")
    cal = calibration_set(maze, count=6, seed=5, steps=1)
    assert maze.config.positions == 229 and [f["tokens"].shape[0] for f in cal.feeds] == [4, 2]
    assert (chunk_for(97), chunk_for(916)) == (16, 1)


def test_static_bundle_records_its_calibration_and_keeps_fp32_accuracy(trained_bundles):
    import onnx
    path, manifest = trained_bundles("onnx", "int8-static")
    q = manifest["quantization"]
    assert q["scheme"] == "static" and q["format"] == "QDQ" and q["calibration"]["source"] == "sampler"
    assert q["calibration"]["steps"] == manifest["trm_config"]["halt_max_steps"] and q["worst_activations"]
    graph = onnx.load(str(path / "step.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > ops.count("QuantizeLinear")
    guard = manifest["parity"]["accuracy_guard"]
    assert guard["passed"] and guard["lost_points"] <= guard["bound_points"] == 2.0


def test_a_damaged_calibration_fails_the_guard_loudly_and_keep_fp32_takes_the_named_layers(tmp_path, capsys):
    """Calibrated on puzzles with no givens (no digit a real puzzle has), the activation ranges are wrong:
    the bundle loses points beyond the bound, the export says so and names the worst activations."""
    blank = tmp_path / "blank.txt"
    blank.write_text("\n".join(["." * 16] * 20) + "\n")
    out = tmp_path / "damaged"
    assert main(["export", "--target", "onnx", "--quantize", "int8-static", "--model", str(trained_model_path()),
                 "--calibration", str(blank), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    guard = json.loads((out / "manifest.json").read_text())["parity"]["accuracy_guard"]
    print(guard)
    assert not guard["passed"] and guard["lost_points"] > guard["bound_points"]
    assert "WARNING: this static int8 bundle solves" in printed and "--keep-fp32" in printed
    worst = [w["layer"] for w in guard["worst_activations"]]
    assert worst and all(w in printed for w in worst[:4])
    kept = tmp_path / "kept"
    assert main(["export", "--target", "onnx", "--quantize", "int8-static", "--model", str(trained_model_path()),
                 "--calibration", str(blank), "--keep-fp32", ",".join(worst[:4]), "--out", str(kept)]) == 0
    q = json.loads((kept / "manifest.json").read_text())["quantization"]
    assert q["keep_fp32"] == worst[:4] and set(worst[:4]) <= set(q["float_nodes"])
    assert not set(worst[:4]) & {w["layer"] for w in q["worst_activations"]}    # what they compute is not rounded
    import onnx
    graph = onnx.load(str(kept / "step.onnx")).graph
    kept_outputs = {o for n in graph.node if n.name in worst[:4] for o in n.output}
    assert kept_outputs and not any(n.op_type == "QuantizeLinear" and n.input[0] in kept_outputs for n in graph.node)


def _activation_scales(target: str, bundle: Path) -> dict[str, float]:
    """Each per-tensor activation scale of a static bundle, by the tensor it rounds."""
    if target == "onnx":
        import onnx
        from onnx import numpy_helper
        g = onnx.load(str(bundle / "step.onnx")).graph
        init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        return {n.input[0]: float(init[n.input[1]]) for n in g.node if n.op_type == "QuantizeLinear"
                and n.input[1] in init and init[n.input[1]].size == 1}
    from ai_edge_litert.interpreter import Interpreter
    details = Interpreter(model_path=str(bundle / "step.tflite")).get_tensor_details()
    return {t["name"]: float(t["quantization_parameters"]["scales"][0]) for t in details
            if t["dtype"] == np.int8 and len(t["quantization_parameters"]["scales"]) == 1}


@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_percentile_ranges_clip_what_minmax_stretches_and_keep_accuracy(tmp_path, trained_bundles, target):
    """--calibration-method percentile: every activation's range comes from its percentiles (ONNX: given to
    onnxruntime as overrides; LiteRT: in place of the min/max ai-edge-quantizer's calibration saw), so each is at
    most minmax's; the manifest says so; the bundle keeps fp32's accuracy."""
    path, minmax = trained_bundles(target, "int8-static")
    out = tmp_path / "percentile"
    assert main(["export", "--target", target, "--quantize", "int8-static", "--model", str(trained_model_path()),
                 "--calibration-method", "percentile", "--calibration-percentile", "99", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    q = manifest["quantization"]
    assert "percentile 99:" in q["method"] and q["calibration"]["method"] == "percentile"
    assert q["calibration"]["percentile"] == 99.0 and minmax["quantization"]["calibration"]["method"] == "minmax"
    a, b = _activation_scales(target, path), _activation_scales(target, out)
    shared = set(a) & set(b)
    assert len(shared) > 10 and all(b[k] <= a[k] * 1.0001 for k in shared)
    assert sum(b[k] < 0.9 * a[k] for k in shared) > 0                  # some range was really clipped
    guard = manifest["parity"]["accuracy_guard"]
    assert guard["passed"], guard


def test_worst_activations_are_compared_a_group_at_a_time(tmp_path):
    """The worst-activations table compares the float and static graphs' tensors a group at a time under a byte
    budget (all at once held 15 GB at the published Maze size): one tensor per group gives the table one group
    does, and it names what onnxruntime's own qdq_loss_debug comparison (every tensor at once) names."""
    import onnx
    from onnxruntime.quantization import quant_pre_process
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    from trm_edge.export import onnx as target
    from trm_edge.step import make_step
    model = load_trained()
    target.export(make_step(model), tmp_path)
    pre, q = tmp_path / "pre.onnx", tmp_path / "q.onnx"
    quant_pre_process(str(tmp_path / target.MODEL_FILE), str(pre))
    cal = calibration_set(model, count=8, seed=5)
    target._quantize_static(pre, q, cal)
    nodes = {n.output[0]: n.name for n in onnx.load(str(pre)).graph.node if n.output}
    whole = target._worst_activations(pre, q, cal.feeds, nodes, top=1000)
    assert len(whole) > 100 and whole == target._worst_activations(pre, q, cal.feeds, nodes, top=1000, budget=1)
    few = [{k: v[:target.WORST_ROWS] for k, v in f.items()} for f in (cal.feeds[0], cal.feeds[-1])]
    for graph in (pre, q):
        modify_model_output_intermediate_tensors(str(graph), str(graph.with_suffix(".all.onnx")))
    match = create_activation_matching(*(collect_activations(str(g.with_suffix(".all.onnx")), target._Feeds(few))
                                         for g in (q, pre)))
    with np.errstate(divide="ignore", invalid="ignore"):
        theirs = {t: round(float(e["xmodel_err"]), 2) for t, e in compute_activation_error(match).items()
                  if np.isfinite(e.get("xmodel_err", np.inf))}
    ours = {r["tensor"]: r["sqnr_db"] for r in whole}
    assert theirs and all(ours[t] == db for t, db in theirs.items())
    assert [r["sqnr_db"] for r in whole[:8]] == sorted(theirs.values())[:8]


@pytest.mark.parametrize("count", [1, 4])
def test_a_calibration_file_is_its_puzzles(tmp_path, count):
    from trm_edge.data import sudoku
    model = load_trained()
    puzzles = sudoku.TASK.sample(count, 16, 6, seed=9)
    f = tmp_path / "cal.txt"
    cod = sudoku.TASK.codec(16)
    f.write_text("".join(cod.compact(p) + "\n" for p in puzzles))
    cal = calibration_set(model, file=f)
    assert cal.provenance["source"] == "file" and cal.provenance["count"] == count and len(cal.provenance["sha256"]) == 64
    np.testing.assert_array_equal(cal.feeds[0]["tokens"], puzzles)


def test_litert_worst_activations_validate_a_sample_at_a_time(tmp_path):
    """LiteRT's worst-activations table validates one sample per call (given two, ai-edge-quantizer's validator
    holds both samples' interpreters at once: 16.2 GB at the published Maze size) and averages: the table its
    own two-sample validation gives."""
    import math

    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.utils.validation_utils import ValidationErrorMetric

    from trm_edge.export import tflite as target
    from trm_edge.step import make_step
    model = load_trained()
    step = make_step(model, target.SPELLING)
    path = tmp_path / target.MODEL_FILE
    target.export(step, tmp_path)
    qt = quantizer.Quantizer(str(path))
    qt.load_quantization_recipe(target._static_recipe([]))
    samples = target._samples(step, calibration_set(model, count=4, seed=5).feeds, 1)
    qt.quantize(target._calibrate(path, target._signature(qt), samples))
    pair = [samples[0], samples[-1]]
    got = target._worst_activations(qt, path, pair, top=10_000)
    both = qt.validate(test_data={target._signature(qt): pair}, error_metrics=[ValidationErrorMetric.SNR],
                       num_threads=1).get_all_tensor_results()
    want = sorted(({"layer": n, "tensor": n, "sqnr_db": round(10 * math.log10(both[n]["snr"]), 2)}
                   for n in dict.fromkeys(target._op_outputs(path))
                   if n in both and math.isfinite(both[n]["snr"]) and both[n]["snr"] > 0), key=lambda r: r["sqnr_db"])
    assert len(got) > 50 and [r["sqnr_db"] for r in got] == pytest.approx([r["sqnr_db"] for r in want], abs=0.011)
    assert {r["layer"] for r in got} == {r["layer"] for r in want}


def test_litert_static_names_its_worst_activations_and_keeps_the_named_ones_float(tmp_path, trained_bundles, capsys):
    """LiteRT's full-integer graph: the export's table names op outputs (SQNR against the float graph, from
    ai-edge-quantizer's validator); --keep-fp32 with one of them leaves the op computing it in float."""
    from ai_edge_litert.interpreter import Interpreter
    _, manifest = trained_bundles("tflite", "int8-static")
    worst = [w["layer"] for w in manifest["quantization"]["worst_activations"]]
    assert worst and all(w["sqnr_db"] < 60 for w in manifest["quantization"]["worst_activations"])
    out = tmp_path / "kept"
    assert main(["export", "--target", "tflite", "--quantize", "int8-static", "--model", str(trained_model_path()),
                 "--calibration-count", "8", "--keep-fp32", worst[0], "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["quantization"]["keep_fp32"] == [worst[0]]
    dtypes = {t["name"]: t["dtype"] for t in Interpreter(model_path=str(out / "step.tflite")).get_tensor_details()}
    assert dtypes[worst[0]] == np.float32
    bad = tmp_path / "bad"                       # a name that is no op output of the graph: one line, nothing written
    refused(["export", "--target", "tflite", "--quantize", "int8-static", "--model", trained_model_path(),
             "--calibration-count", "8", "--keep-fp32", "attention_of_nothing", "--out", bad], tmp_path, capsys)
    assert not bad.exists()
