"""The run's configuration: typed schemas with value checks, and the resolvers ``conf/`` uses."""

from fishbench.config.resolvers import quote_world_choices, register_resolvers
from fishbench.config.schema import (DatasetConfig, DeviceConfig, ModelConfig,
                                     RunConfig, ScheduleConfig, WorldConfig, validate)

__all__ = ["DatasetConfig", "DeviceConfig", "ModelConfig", "RunConfig",
           "ScheduleConfig", "WorldConfig", "quote_world_choices", "register_resolvers",
           "validate"]
