"""A run's config as ``fishbench compare`` and sweep summaries read it, cheap to read.

Hydra writes a run's config, its command-line overrides and its job number as YAML under
``.hydra/``; parsing those with OmegaConf and Hydra's override grammar costs tens of milliseconds
per run, minutes for a thousand runs. At its start, a run reads them once and writes what they
hold as one JSON file, :data:`~fishbench.run.records.CONFIG_RECORD`, beside them; readers take
that file and fall back to the YAML for runs written without it, or when the YAML is newer (a
later command in the run dir rewrote it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fishbench.run.records import CONFIG_RECORD, HYDRA_DIR, HYDRA_YAML_FILES, atomic_write_text


@dataclass
class ConfigRecord:
    """What the YAML of ``.hydra/`` says about one run (empty parts where a file is missing)."""

    config: dict[str, Any]  # config.yaml as dotted keys, interpolations as written
    overrides: dict[str, Any]  # overrides.yaml: key -> typed value
    job: int | None  # hydra.job.num of a multirun job


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    """Hydra override strings -> ``{key: typed value}`` (``+``/``++``/``~`` prefixes dropped)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(lines))
    return {o.get_key_element().lstrip("+~"): o.value() for o in parsed}


def read_hydra_yaml(run_dir: Path) -> ConfigRecord:
    """The record from Hydra's YAML files (the slow way); missing files give empty parts."""
    from omegaconf import OmegaConf

    hydra_dir = Path(run_dir) / HYDRA_DIR

    def load(name: str) -> Any:
        path = hydra_dir / name
        return OmegaConf.load(path) if path.is_file() else None

    config, overrides, hydra_cfg = load("config.yaml"), load("overrides.yaml"), load("hydra.yaml")
    job = None
    if hydra_cfg is not None and OmegaConf.select(hydra_cfg, "hydra.mode") == "MULTIRUN":
        job = OmegaConf.select(hydra_cfg, "hydra.job.num")
    return ConfigRecord(
        config=flatten(OmegaConf.to_container(config, resolve=False)) if config else {},
        overrides=parse_overrides(OmegaConf.to_container(overrides)) if overrides else {},
        job=job)


def write_config_record(run_dir: Path) -> None:
    """Write ``.hydra/`` 's YAML as :data:`CONFIG_RECORD`: only when there is YAML to record and
    JSON holds every value exactly (else readers keep reading the YAML)."""
    hydra_dir = Path(run_dir) / HYDRA_DIR
    if not any((hydra_dir / name).is_file() for name in HYDRA_YAML_FILES):
        return
    record = asdict(read_hydra_yaml(run_dir))
    try:
        text = json.dumps(record)
    except (TypeError, ValueError):
        return
    if json.loads(text) == record:
        atomic_write_text(hydra_dir / CONFIG_RECORD, text + "\n")


def _is_current(record: Path) -> bool:
    """Whether ``record`` exists and no YAML beside it was written after it."""
    try:
        written = record.stat().st_mtime_ns
    except OSError:
        return False
    for name in HYDRA_YAML_FILES:
        try:
            if (record.parent / name).stat().st_mtime_ns > written:
                return False
        except OSError:
            continue
    return True


def read_config_record(run_dir: Path) -> ConfigRecord:
    """The run's record: :data:`CONFIG_RECORD` where it is current, else the YAML."""
    record = Path(run_dir) / HYDRA_DIR / CONFIG_RECORD
    if _is_current(record):
        try:
            saved = json.loads(record.read_text())
            return ConfigRecord(saved["config"], saved["overrides"], saved["job"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return read_hydra_yaml(run_dir)
