"""Exporters: the step of a TRM -> a bundle (model file + init.npz + init.bin + manifest.json) for one target.

One module per target (its row of trm_edge/targets.py names it), each following the `Exporter`
protocol (export/protocol.py): `export(step, stage_dir, precision, batch) -> Exported`. `bundle.export_bundle`
is the shared pipeline: export, write init and manifest, let the format embed the manifest, check
parity with the target's real runtime on that very file, and move the finished bundle into place
(nothing is left behind when a stage fails).
"""
