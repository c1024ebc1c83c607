"""Google: Gemini API and Vertex AI on google-genai, and the Gemini wire mapping."""
