"""The built-in providers, registered through the `evalkit_providers` hook like any plugin.

Factories are `module:attr` paths, so registering imports no SDK.
"""

from __future__ import annotations

from typing import Callable

from evalkit.model.registry import hookimpl

_P = "evalkit.providers"

# name, factory, summary, SDK modules it needs, environment variables, pip extra
BUILTIN: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str]] = [
    ("mockllm", f"{_P}.mock:MockLLM", "Deterministic offline model for tests and examples", (), (), ""),
    ("openai", f"{_P}.openai:OpenAIAPI",
     "OpenAI chat or legacy completions (openai/<model>, -M api=completions), Azure OpenAI (openai/azure/<deployment>)",
     ("openai",), ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AZUREAI_OPENAI_API_KEY",
                   "AZUREAI_OPENAI_BASE_URL", "OPENAI_API_VERSION"), "evalkit[openai]"),
    ("openai-api", f"{_P}.compatible:OpenAICompatibleAPI", "Any OpenAI-compatible API (openai-api/<service>/<model>)",
     ("openai",), ("<SERVICE>_API_KEY", "<SERVICE>_BASE_URL"), "evalkit[openai]"),
    ("together", f"{_P}.compatible:TogetherAPI", "Together AI (OpenAI-compatible)",
     ("openai",), ("TOGETHER_API_KEY", "TOGETHER_BASE_URL"), "evalkit[openai]"),
    ("groq", f"{_P}.compatible:GroqAPI", "Groq (OpenAI-compatible)", ("openai",), ("GROQ_API_KEY", "GROQ_BASE_URL"), "evalkit[openai]"),
    ("grok", f"{_P}.compatible:GrokAPI", "xAI Grok (OpenAI-compatible)", ("openai",), ("GROK_API_KEY", "GROK_BASE_URL"), "evalkit[openai]"),
    ("fireworks", f"{_P}.compatible:FireworksAPI", "Fireworks AI (OpenAI-compatible)",
     ("openai",), ("FIREWORKS_API_KEY", "FIREWORKS_BASE_URL"), "evalkit[openai]"),
    ("deepseek", f"{_P}.compatible:DeepSeekAPI", "DeepSeek (OpenAI-compatible)",
     ("openai",), ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"), "evalkit[openai]"),
    ("openrouter", f"{_P}.compatible:OpenRouterAPI", "OpenRouter (OpenAI-compatible; -M models/provider/transforms go in the body)",
     ("openai",), ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"), "evalkit[openai]"),
    ("ollama", f"{_P}.compatible:OllamaAPI", "Ollama server, no key (default http://localhost:11434/v1)",
     ("openai",), ("OLLAMA_BASE_URL", "OLLAMA_API_KEY"), "evalkit[openai]"),
    ("llama-cpp-python", f"{_P}.compatible:LlamaCppPythonAPI", "llama-cpp-python or llama.cpp server, no key (default http://localhost:8000/v1)",
     ("openai",), ("LLAMA_CPP_PYTHON_BASE_URL", "LLAMA_CPP_PYTHON_API_KEY"), "evalkit[openai]"),
    ("vllm-server", f"{_P}.compatible:VLLMServerAPI", "A running vLLM OpenAI-compatible server (default http://localhost:8000/v1)",
     ("openai",), ("VLLM_BASE_URL", "VLLM_API_KEY"), "evalkit[openai]"),
    ("databricks", f"{_P}.compatible:DatabricksAPI", "Databricks model serving endpoints (DATABRICKS_BASE_URL=https://<workspace>/serving-endpoints)",
     ("openai",), ("DATABRICKS_API_KEY", "DATABRICKS_BASE_URL"), "evalkit[openai]"),
    ("anthropic", f"{_P}.anthropic:AnthropicAPI",
     "Anthropic Claude (anthropic/<model>), on Bedrock (anthropic/bedrock/<model-id>) or Vertex (anthropic/vertex/<model>)",
     ("anthropic",), ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL", "AWS_REGION",
                      "ANTHROPIC_VERTEX_PROJECT_ID", "ANTHROPIC_VERTEX_REGION"), "evalkit[anthropic]"),
    ("hf", f"{_P}.hf:HuggingFaceAPI", "Local Hugging Face transformers models, batched (hf/<hub-id>, hf/local, hf/bundled)",
     ("torch", "transformers"), ("HF_TOKEN", "HF_HOME"), "evalkit[hf]"),
    ("hf-pipeline", f"{_P}.hf_pipeline:HFPipelineAPI",
     "Local transformers task models: classification, zero-shot, QA, summarization, translation, fill-mask, NER (hf-pipeline/<task>/<model>)",
     ("torch", "transformers"), ("HF_TOKEN", "HF_HOME"), "evalkit[hf]"),
    ("vllm", f"{_P}.vllm:VLLMAPI", "vLLM engine in this process, batched (vllm/<hub-id>, vllm/local, vllm/bundled)",
     ("vllm",), ("HF_TOKEN", "HF_HOME"), "evalkit[vllm]"),
    ("bedrock", f"{_P}.bedrock:BedrockAPI", "Amazon Bedrock models through the Converse API (bedrock/<model-id>)",
     ("aioboto3",), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "BEDROCK_BASE_URL"),
     "evalkit[bedrock]"),
    ("google", f"{_P}.google:GoogleAPI", "Gemini API models (google/<model>)",
     ("google.genai",), ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_BASE_URL"), "evalkit[google]"),
    ("vertex", f"{_P}.google:VertexAPI", "Gemini on Google Cloud Vertex AI (vertex/<model>)",
     ("google.genai",), ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_API_KEY", "GOOGLE_VERTEX_BASE_URL"),
     "evalkit[google]"),
    ("transform", f"{_P}.transform:TransformAPI", "Any HTTP inference API mapped by a JMESPath transform spec (transform/<model>, -M spec=PATH or JSON)",
     ("jmespath",), ("EVALKIT_TRANSFORM_SPEC", "TRANSFORM_API_KEY", "TRANSFORM_BASE_URL"), "evalkit[transform]"),
    ("sagemaker", f"{_P}.sagemaker:SageMakerAPI", "Amazon SageMaker real-time endpoints, TGI or messages JSON (sagemaker/<endpoint>)",
     ("aioboto3",), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "SAGEMAKER_BASE_URL"),
     "evalkit[bedrock]"),
    ("azureml", f"{_P}.azureml:AzureMLAPI", "Azure Machine Learning online endpoints, chat-completions JSON (azureml/<deployment>)",
     (), ("AZUREML_BASE_URL", "AZUREML_API_KEY"), ""),
]


@hookimpl
def evalkit_providers(register: Callable[..., None]) -> None:
    for name, factory, summary, needs, env, pip in BUILTIN:
        register(name, factory, summary=summary, needs=needs, env=env, pip=pip)
