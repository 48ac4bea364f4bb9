"""ExecuTorch backend: a bundle's step.pte through the pip wheel's runtime (XNNPACK delegate).

Note: the pip wheel's Python runtime (`executorch.runtime`) itself links and imports libtorch.
On a device, the native runner (export/executorch/runner/) runs the same .pte with no Python and no torch.
"""
from __future__ import annotations

from pathlib import Path

from trm_edge.runtime.backend import ManifestStep, load_error


class ExecuTorchStep(ManifestStep):
    name = "executorch"

    def __init__(self, model_file, manifest: dict, threads: int | None = None):
        # the wheel's import and XNNPACK's start-up print torchao, pytree and cpuinfo chatter: Bundle opens
        # every backend inside quiet() (runtime/bundle.py open_backend), which keeps it off the terminal
        from executorch.runtime import Runtime, Verification
        if threads:   # XNNPACK runs on ExecuTorch's threadpool; resize it BEFORE a program binds to it
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
            _unsafe_reset_threadpool(threads)
        try:
            program = Runtime.get().load_program(Path(model_file), verification=Verification.InternalConsistency)
            self.method = program.load_method("forward")
        except Exception as e:   # the runtime raises RuntimeError/ValueError with multi-line texts
            raise load_error("ExecuTorch", model_file, e) from None
        import torch   # the runtime already loaded it; tensors cross the boundary as torch tensors
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.read_manifest(manifest)

    def __call__(self, tokens, puzzle_emb, y, z):
        args = [self._torch.from_numpy(a) for a in self.feed(tokens, puzzle_emb, y, z).values()]
        return tuple(o.numpy() for o in self.method.execute(args))
