"""trm-edge: Tiny Recursive Models from training to phones and boards.

`trm_edge.runtime` needs only numpy, so this package imports nothing heavy up front:
the torch-side names below load on first use.
"""
__version__ = "0.1.0"

_LAZY = {
    "TRM": "trm_edge.model",
    "TRMConfig": "trm_edge.model",
    "load_checkpoint": "trm_edge.checkpoint",
    "save_checkpoint": "trm_edge.checkpoint",
    "Step": "trm_edge.step",
    "open": "trm_edge.solver",
    "Checkpoint": "trm_edge.solver",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trm_edge' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
