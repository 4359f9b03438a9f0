"""Run exported prompt packs against any OpenAI-compatible endpoint, without DSPy.

Imports only the standard library, pydantic and `liftdspy.ir`; `import dspy` never happens here
(tests check it), so a production service needs none of the optimizer stack.
"""

from liftdspy.runtime.endpoint import ChatEndpoint, EndpointError, TruncatedAnswerError
from liftdspy.runtime.outputs import OutputError, parse_outputs
from liftdspy.runtime.pack import (
    PACK_FILE,
    FieldSpec,
    MessageTemplate,
    ModelTarget,
    PackError,
    PredictorPrompt,
    PromptPack,
    SamplingParams,
    load_pack,
    placeholder,
)
from liftdspy.runtime.runtime import PipelineResult, PromptRuntime

__all__ = [
    "PACK_FILE",
    "ChatEndpoint",
    "EndpointError",
    "FieldSpec",
    "MessageTemplate",
    "ModelTarget",
    "OutputError",
    "PackError",
    "PipelineResult",
    "PredictorPrompt",
    "PromptPack",
    "PromptRuntime",
    "SamplingParams",
    "TruncatedAnswerError",
    "load_pack",
    "parse_outputs",
    "placeholder",
]
