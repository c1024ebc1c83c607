"""OpenAI (chat, completions, Azure OpenAI), the OpenAI-compatible services, and the chat-completions wire shape."""
