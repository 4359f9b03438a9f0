"""Serving models over an OpenAI-compatible API: the `vllm serve` command line
(`vllm_command`), the Modal deployment that runs it (`modal_app`, needs the `modal` extra) and
the endpoint address clients use (`modal_endpoint`)."""
