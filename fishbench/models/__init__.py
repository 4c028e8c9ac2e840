"""Framework-free model knowledge: the registry, the FishNet99 plan, weight names across frameworks."""
