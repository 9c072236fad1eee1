"""float64 numpy references of every op, forward and backward: the test oracle (one module per op)."""
