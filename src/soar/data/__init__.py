"""Problem sets (files, Hugging Face datasets, bundled), splits, and prompts."""
