"""Running one job: the app (tasks), the engine (the loop), schedule, checkpoints, records, run dirs, launch."""
