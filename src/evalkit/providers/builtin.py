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
    ("openai", f"{_P}.openai.api:OpenAIAPI",
     "OpenAI chat or legacy completions (openai/<model>, -M api=completions), Azure OpenAI (openai/azure/<deployment>)",
     ("openai",), ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AZUREAI_OPENAI_API_KEY",
                   "AZUREAI_OPENAI_BASE_URL", "OPENAI_API_VERSION"), "evalkit-ai[openai]"),
    ("openai-api", f"{_P}.openai.compatible:OpenAICompatibleAPI", "Any OpenAI-compatible API (openai-api/<service>/<model>)",
     ("openai",), ("<SERVICE>_API_KEY", "<SERVICE>_BASE_URL"), "evalkit-ai[openai]"),
    ("together", f"{_P}.openai.compatible:TogetherAPI", "Together AI (OpenAI-compatible)",
     ("openai",), ("TOGETHER_API_KEY", "TOGETHER_BASE_URL"), "evalkit-ai[openai]"),
    ("groq", f"{_P}.groq:GroqAPI", "Groq chat completions on the groq SDK (GROQ_BASE_URL is the bare host)",
     ("groq",), ("GROQ_API_KEY", "GROQ_BASE_URL"), "evalkit-ai[groq]"),
    ("grok", f"{_P}.openai.compatible:GrokAPI", "xAI Grok (OpenAI-compatible)", ("openai",), ("GROK_API_KEY", "GROK_BASE_URL"), "evalkit-ai[openai]"),
    ("fireworks", f"{_P}.openai.compatible:FireworksAPI", "Fireworks AI (OpenAI-compatible)",
     ("openai",), ("FIREWORKS_API_KEY", "FIREWORKS_BASE_URL"), "evalkit-ai[openai]"),
    ("deepseek", f"{_P}.openai.compatible:DeepSeekAPI", "DeepSeek (OpenAI-compatible)",
     ("openai",), ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"), "evalkit-ai[openai]"),
    ("openrouter", f"{_P}.openai.compatible:OpenRouterAPI", "OpenRouter (OpenAI-compatible; -M models/provider/transforms go in the body)",
     ("openai",), ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"), "evalkit-ai[openai]"),
    ("ollama", f"{_P}.openai.compatible:OllamaAPI", "Ollama server, no key (default http://localhost:11434/v1)",
     ("openai",), ("OLLAMA_BASE_URL", "OLLAMA_API_KEY"), "evalkit-ai[openai]"),
    ("llama-cpp-python", f"{_P}.openai.compatible:LlamaCppPythonAPI", "llama-cpp-python or llama.cpp server, no key (default http://localhost:8000/v1)",
     ("openai",), ("LLAMA_CPP_PYTHON_BASE_URL", "LLAMA_CPP_PYTHON_API_KEY"), "evalkit-ai[openai]"),
    ("vllm-server", f"{_P}.openai.compatible:VLLMServerAPI", "A running vLLM OpenAI-compatible server (default http://localhost:8000/v1)",
     ("openai",), ("VLLM_BASE_URL", "VLLM_API_KEY"), "evalkit-ai[openai]"),
    ("databricks", f"{_P}.openai.compatible:DatabricksAPI", "Databricks model serving endpoints (DATABRICKS_BASE_URL=https://<workspace>/serving-endpoints)",
     ("openai",), ("DATABRICKS_API_KEY", "DATABRICKS_BASE_URL"), "evalkit-ai[openai]"),
    ("sglang", f"{_P}.openai.compatible:SGLangAPI", "A running SGLang server, no key (default http://localhost:30000/v1, -M port=N)",
     ("openai",), ("SGLANG_BASE_URL", "SGLANG_API_KEY"), "evalkit-ai[openai]"),
    ("perplexity", f"{_P}.openai.compatible:PerplexityAPI", "Perplexity Sonar models (OpenAI-compatible; citations and search results in the output's metadata)",
     ("openai",), ("PERPLEXITY_API_KEY", "PERPLEXITY_BASE_URL"), "evalkit-ai[openai]"),
    ("cf", f"{_P}.http.cloudflare:CloudflareAPI", "Cloudflare Workers AI models through its REST API (cf/<model> runs @cf/<model>)",
     (), ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_BASE_URL"), ""),
    ("goodfire", f"{_P}.goodfire:GoodfireAPI", "Goodfire chat completions over its HTTP API (goodfire/meta-llama/<model>; -M go in the request)",
     (), ("GOODFIRE_API_KEY", "GOODFIRE_BASE_URL"), ""),
    ("anthropic", f"{_P}.anthropic:AnthropicAPI",
     "Anthropic Claude (anthropic/<model>), on Bedrock (anthropic/bedrock/<model-id>) or Vertex (anthropic/vertex/<model>)",
     ("anthropic",), ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL", "AWS_REGION",
                      "ANTHROPIC_VERTEX_PROJECT_ID", "ANTHROPIC_VERTEX_REGION"), "evalkit-ai[anthropic]"),
    ("mistral", f"{_P}.mistral:MistralAPI", "Mistral AI chat and embeddings (mistral/<model>), Mistral on Azure AI (mistral/azure/<deployment>)",
     ("mistralai.client",), ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "AZUREAI_MISTRAL_API_KEY", "AZUREAI_MISTRAL_BASE_URL"),
     "evalkit-ai[mistral]"),
    ("azureai", f"{_P}.azureai:AzureAIAPI", "Azure AI model inference deployments, chat and embeddings (azureai/<deployment>, -M emulate_tools=true|false)",
     ("azure.ai.inference",), ("AZUREAI_API_KEY", "AZUREAI_BASE_URL"), "evalkit-ai[azureai]"),
    ("hf", f"{_P}.local.hf:HuggingFaceAPI", "Local Hugging Face transformers models, batched (hf/<hub-id>, hf/local, hf/bundled)",
     ("torch", "transformers"), ("HF_TOKEN", "HF_HOME"), "evalkit-ai[hf]"),
    ("hf-pipeline", f"{_P}.local.hf_pipeline:HFPipelineAPI",
     "Local transformers task models: classification, zero-shot, QA, summarization, translation, fill-mask, NER (hf-pipeline/<task>/<model>)",
     ("torch", "transformers"), ("HF_TOKEN", "HF_HOME"), "evalkit-ai[hf]"),
    ("vllm", f"{_P}.local.vllm:VLLMAPI", "vLLM engine in this process, batched (vllm/<hub-id>, vllm/local, vllm/bundled)",
     ("vllm",), ("HF_TOKEN", "HF_HOME"), "evalkit-ai[vllm]"),
    ("bedrock", f"{_P}.aws.bedrock:BedrockAPI", "Amazon Bedrock models through the Converse API (bedrock/<model-id>)",
     ("aioboto3",), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "BEDROCK_BASE_URL"),
     "evalkit-ai[bedrock]"),
    ("google", f"{_P}.google.gemini:GoogleAPI", "Gemini API models (google/<model>)",
     ("google.genai",), ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_BASE_URL"), "evalkit-ai[google]"),
    ("vertex", f"{_P}.google.gemini:VertexAPI", "Gemini on Google Cloud Vertex AI (vertex/<model>)",
     ("google.genai",), ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_API_KEY", "GOOGLE_VERTEX_BASE_URL"),
     "evalkit-ai[google]"),
    ("transform", f"{_P}.http.transform:TransformAPI", "Any HTTP inference API mapped by a JMESPath transform spec (transform/<model>, -M spec=PATH or JSON)",
     ("jmespath",), ("EVALKIT_TRANSFORM_SPEC", "TRANSFORM_API_KEY", "TRANSFORM_BASE_URL"), "evalkit-ai[transform]"),
    ("sagemaker", f"{_P}.aws.sagemaker:SageMakerAPI", "Amazon SageMaker real-time endpoints, TGI or messages JSON (sagemaker/<endpoint>)",
     ("aioboto3",), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "SAGEMAKER_BASE_URL"),
     "evalkit-ai[bedrock]"),
    ("azureml", f"{_P}.http.azureml:AzureMLAPI", "Azure Machine Learning online endpoints, chat-completions JSON (azureml/<deployment>)",
     (), ("AZUREML_BASE_URL", "AZUREML_API_KEY"), ""),
    ("cohere", f"{_P}.cohere:CohereAPI", "Cohere v2 chat and embeddings (cohere/<model>)",
     ("cohere",), ("COHERE_API_KEY", "COHERE_BASE_URL"), "evalkit-ai[cohere]"),
    ("hf-inference", f"{_P}.hf_inference:HFInferenceAPI",
     "Hugging Face Inference (hf-inference/<hub-id>) and dedicated Inference Endpoints or TGI/TEI servers (hf-inference/<https URL>), chat and embeddings",
     ("huggingface_hub",), ("HF_TOKEN", "HF_INFERENCE_BASE_URL"), "evalkit-ai[hf-inference]"),
]


@hookimpl
def evalkit_providers(register: Callable[..., None]) -> None:
    for name, factory, summary, needs, env, pip in BUILTIN:
        register(name, factory, summary=summary, needs=needs, env=env, pip=pip)
