import pytest

from soar.math.verify import Verifier


@pytest.fixture(scope="session")
def verifier():
    """One real Math-Verify process pool for the whole session (2 workers, 10 s hard timeout)."""
    with Verifier(workers=2, timeout_s=10.0) as v:
        yield v
