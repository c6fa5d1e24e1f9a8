"""The teacher's device from the GPU Ray holds for it: Ray's numbering mapped through this process's
``CUDA_VISIBLE_DEVICES`` (issue 35: ``cuda:<Ray id>`` put a teacher seated on GPU 3 of ``2,3`` on no GPU at all)."""

import pytest

from soar.engines.models import cuda_device_of
from soar.errors import SoarError


def test_every_gpu_visible_keeps_rays_numbering():
    assert cuda_device_of(0, None) == "cuda:0"
    assert cuda_device_of(3, None) == "cuda:3"
    assert cuda_device_of(5, "") == "cuda:5"


def test_a_visible_subset_is_renumbered_from_zero_in_its_order():
    assert cuda_device_of(3, "2,3") == "cuda:1"
    assert cuda_device_of(2, "2,3") == "cuda:0"
    assert cuda_device_of(6, "7, 6,1") == "cuda:1"  # the listed order, spaces ignored


def test_a_gpu_this_process_cannot_see_is_one_line():
    with pytest.raises(SoarError) as hidden:
        cuda_device_of(4, "0,1")
    message = str(hidden.value)
    assert "GPU 4" in message and "CUDA_VISIBLE_DEVICES=0,1" in message and "\n" not in message
