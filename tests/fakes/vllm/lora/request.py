"""``vllm.lora.request.LoRARequest`` as soar uses it (see ``tests/fakes/vllm``)."""

from dataclasses import dataclass


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str

    def __post_init__(self) -> None:  # vLLM's own checks (lora/request.py, 0.29.0 and 0.34.0)
        if self.lora_int_id < 1:
            raise ValueError(f"id must be > 0, got {self.lora_int_id}")
        if not self.lora_path:
            raise ValueError("lora_path cannot be empty")
