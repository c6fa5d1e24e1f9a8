"""``vllm.platforms.current_platform``: the fake runs on the CPU, which vLLM's CPU backend reports as ``cpu``
(a machine where vLLM finds nothing has an unspecified platform whose ``device_type`` is empty)."""


class _Platform:
    device_type = "cpu"

    def is_cpu(self) -> bool:
        return self.device_type == "cpu"


current_platform = _Platform()
