"""Layer 4, measurement: inputs, sessions, the loop (adaptive stopping, pinning), load
scenarios, callables, worker processes, interleaved rounds and ``benchmark``. Everything timed
happens in the compiled core; this layer drives it and turns its samples into Results.

A model's :class:`~inferspeed.measure.session.Session` and :func:`~inferspeed.timeit` take one
measurement path, :func:`~inferspeed.measure.measurement.run_measurement`; each says what it
times through a :class:`~inferspeed.measure.measurement.Target` (``model.ModelTarget``,
``callables.CallableTarget``)."""
