"""Text encoders, the retrieval index and LLM prompting."""
