"""The inner loop: student workers (one inner RLOO step for one student or many) and the pools that run them."""
