"""Layer 1, facts: what is true of a model file (signature, MACs, file checks, demo models) and of
the machine (ONNX Runtime library, environment, CPU load, governor, memory). Imports only the
foundation (errors, config, units, version, the compiled core)."""
