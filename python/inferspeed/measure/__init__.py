"""Layer 4, measurement: inputs, sessions, the loop (adaptive stopping, pinning), load
scenarios, callables, worker processes, interleaved rounds and ``benchmark``. Everything timed
happens in the compiled core; this layer drives it and turns its samples into Results."""
