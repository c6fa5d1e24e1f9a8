"""``vllm.lora.request.LoRARequest`` as soar uses it (see ``tests/fakes/vllm``)."""

from dataclasses import dataclass


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str
