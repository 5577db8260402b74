"""Sequence models (memory) for recurrent policies."""
