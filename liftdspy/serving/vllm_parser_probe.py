"""Parse a `vllm serve` argv with the installed vLLM's own argument parser (no server started).

Run with the vLLM venv's Python (standalone, like `vllm_launcher.py`):

    python vllm_parser_probe.py '["serve", "MODEL", "--port", "8000", ...]' [SCHEMA.json]

Prints JSON: every option string `vllm serve` accepts, and the parsed namespace (values as
strings); with a JSON schema file, also whether vLLM's XGrammar backend would refuse it
(`xgrammar_unsupported`). A flag the parser does not know makes it exit non-zero with argparse's
message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from vllm_launcher import _install_alias


def main() -> int:
    _install_alias()
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(dest="subparser")
    serve = ServeSubcommand().subparser_init(subparsers)
    options = sorted({o for action in serve._actions for o in action.option_strings})
    namespace = parser.parse_args(json.loads(sys.argv[1]))
    parsed = {key: str(value) for key, value in vars(namespace).items()}
    result: dict[str, object] = {"options": options, "parsed": parsed}
    if len(sys.argv) > 2:
        from vllm.v1.structured_output.backend_xgrammar import (
            has_xgrammar_unsupported_json_features,
        )

        schema = json.loads(Path(sys.argv[2]).read_text())
        result["xgrammar_unsupported"] = has_xgrammar_unsupported_json_features(schema)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
