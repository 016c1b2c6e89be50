"""The token contract every backend and the trainers share.

- A *message* becomes a *prompt* through the tokenizer's chat template (with the generation prompt) when
  it has one, else it is the prompt as is (:func:`format_prompt`).
- A prompt is encoded with the tokenizer's special tokens (BOS) unless its text already starts with the
  BOS token, as a rendered chat template does (:func:`encode_prompt`): BOS is never doubled.
- A continuation (a completion, a candidate step, a verdict label) is encoded on its own, without special
  tokens (:func:`encode_continuation`), and appended to the prompt's ids: scoring, generation and DPO
  all see the same boundary. Training may append EOS to a completion (:func:`encode_completion`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError


def format_prompt(tokenizer: Any, message: str) -> str:
    """The prompt text for a user ``message`` (chat template with generation prompt, or the message)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )
    return message


def has_chat_template(model_dir: str | Path) -> bool:
    """Whether the tokenizer saved in ``model_dir`` has a chat template (``chat_template.jinja`` or the
    ``chat_template`` key of ``tokenizer_config.json``), read from the files without loading it."""
    import json

    path = Path(model_dir)
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(config.get("chat_template"))


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt text, BOS added unless the text already starts with it."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def encode_continuation(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a continuation: no special tokens (an empty text has none)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_completion(tokenizer: Any, text: str, add_eos: bool) -> list[int]:
    """A training completion: :func:`encode_continuation`, with EOS appended when ``add_eos``."""
    ids = encode_continuation(tokenizer, text)
    if add_eos:
        if tokenizer.eos_token_id is None:
            raise UserError("the tokenizer has no EOS token; cannot mark the end of a completion")
        ids.append(tokenizer.eos_token_id)
    return ids
