"""Each provider's batch API (openai and together, anthropic, google) on its own SDK client, against model/batch/protocol.py."""
