"""Exporters: the step of a TRM -> a bundle (model file + init.npz + manifest.json) for one target.

One module per target (`onnx`, ...) with `export(step, stage_dir, precision, batch) -> model file name`;
`bundle.export_bundle` is the shared pipeline: export, write init and manifest, check parity with the
target's real runtime, embed the manifest where the format can carry it, and move the finished
bundle into place (nothing is left behind when a stage fails).
"""
