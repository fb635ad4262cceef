"""Layer 3, results: the immutable Result, its JSON schema, reading and writing it, pooling
several into one, and the interruption that carries a partial one; a sweep's file (one line
per cell, ``sweepfile``): its lines, appending, reading for a resume or a report."""
