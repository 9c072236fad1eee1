"""Op launchers: one module per op family, each with forward and backward wrappers and its autograd Function."""
