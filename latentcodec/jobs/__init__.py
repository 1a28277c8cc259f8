"""Many files at once: folder trees in worker processes (``folders``), the same jobs on Ray actors
(``ray_actors``), both running ``worker``'s one-file step. Above the pipeline, which they call."""
