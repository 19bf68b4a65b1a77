"""The upgrade gate and the checks of an environment: ``doctor`` (does this box work), the snapshot of behaviour
and its file format, the gate that compares candidate releases in side environments, the ledger of known upstream
breakage, and the behaviour changelog. Import the modules themselves (``from llmfound.upgrade import snapshot``);
this package exports no names of its own."""
__all__: list[str] = []
