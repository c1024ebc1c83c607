"""Local inference: hf, hf-pipeline, vllm, the request batcher, the bundled model, chat prompts and tool-call parsing."""
