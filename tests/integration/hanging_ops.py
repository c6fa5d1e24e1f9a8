"""Ops for the pool tests: one that hangs ignoring SIGALRM, one that kills its worker."""

import os
import signal
import time


def op_echo_or_hang(text: str) -> str:
    if text == "hang":
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    if text == "crash":
        os._exit(3)
    return text
