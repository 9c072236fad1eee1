"""Model zoo tests: shapes, gradients, parameter counts, state_dict keys, torch compatibility."""
