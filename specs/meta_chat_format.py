"""Run Meta's own ``ChatFormat.encode_dialog_prompt`` (llama-models 0.3.0) on conversations: the oracle of
``specs/test_meta_chat.py``, run by it in a subprocess so nothing of Meta's code enters the test process.

Usage: ``python specs/meta_chat_format.py ASSET_DIR < requests.json``, where ASSET_DIR is the sha256-checked
``meta-llama-models`` cache entry (the ``llama_models`` package's files, members named in the manifest) and each
request is ``{"version": "llama3"|"llama4", "messages": [{role, content}], "add_generation_prompt": bool}``.
Prints one JSON list of token-id lists (or ``{"error": "..."}`` per request Meta's code refused).

Meta's ``llama4/preprocess.py`` imports torchvision for images at import time; the text path never calls it, so an
empty stand-in module takes its place (torchvision is not a dependency of llmfound).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import types


def main(asset: str) -> None:
    # Python would write Meta's modules' bytecode (__pycache__) into the cache entry, which `llmfound assets
    # verify` then rightly calls corrupt: a file llmfound did not write
    sys.dont_write_bytecode = True
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                        "torchvision.transforms.functional": tv.transforms.functional})
    root = tempfile.mkdtemp()
    os.symlink(asset, os.path.join(root, "llama_models"))
    sys.path.insert(0, root)
    from llama_models.datatypes import RawMessage, RawTextItem
    from llama_models.llama3.chat_format import ChatFormat as ChatFormat3
    from llama_models.llama3.tokenizer import Tokenizer as Tokenizer3
    from llama_models.llama4.chat_format import ChatFormat as ChatFormat4
    from llama_models.llama4.tokenizer import Tokenizer as Tokenizer4

    formats = {"llama3": ChatFormat3(Tokenizer3.get_instance()), "llama4": ChatFormat4(Tokenizer4.get_instance())}
    out = []
    for req in json.load(sys.stdin):
        try:
            msgs = [RawMessage(role=m["role"], content=m["content"] if isinstance(m["content"], str) else
                               [RawTextItem(text=p["text"]) for p in m["content"]]) for m in req["messages"]]
            tokens = formats[req["version"]].encode_dialog_prompt(msgs).tokens
            if not req["add_generation_prompt"]:  # encode_dialog_prompt always appends the assistant header
                tokens = tokens[:-len(formats[req["version"]]._encode_header("assistant"))]
            out.append(tokens)
        except Exception as e:  # noqa: BLE001 - Meta's refusal is a result the spec compares
            out.append({"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
