"""Serve the repository's top-level ``sweeps/`` folder as Hydra's config group ``sweep``.

Hydra names a config group after its folder, and the folder is ``sweeps/`` (plural, beside
``conf/``), so a plain ``hydra.searchpath`` entry cannot expose it as ``sweep``. A search-path
plugin adds a source of its own scheme whose one group, ``sweep``, is that folder; it is found
whatever the working directory, because it is located from this file:
``python run.py -m +sweep=fishnet99_lr_tmax``.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

GROUP = "sweep"
SWEEPS_DIR = Path(__file__).resolve().parents[2] / "sweeps"


class SweepsConfigSource(ConfigSource):
    """A config source whose root holds a single group, ``sweep``: the folder it points at."""

    @staticmethod
    def scheme() -> str:
        return "fishbench-sweeps"

    def _local(self, config_path: str) -> Path | None:
        """The file or folder behind ``config_path`` (``None`` when it is outside the group)."""
        head, _, rest = config_path.strip("/").partition("/")
        return Path(self.path, rest) if head == GROUP else None

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._local(self._normalize_file_name(config_path))
        if path is None or not path.is_file():
            raise ConfigLoadError(f"Config not found: {config_path} (looked in {self.path})")
        text = path.read_text(encoding="utf-8")
        return ConfigResult(config=OmegaConf.create(text), path=self.full_path(),
                            provider=self.provider, header=self._get_header_dict(text[:512]))

    def available(self) -> bool:
        return Path(self.path).is_dir()

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return True
        path = self._local(config_path)
        return path is not None and path.is_dir()

    def is_config(self, config_path: str) -> bool:
        path = self._local(self._normalize_file_name(config_path))
        return path is not None and path.is_file()

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/") == "":
            names = [GROUP] if self.available() else []
        else:
            path = self._local(config_path)
            names = sorted(p.name for p in path.iterdir()) if path and path.is_dir() else []
        found: list[str] = []
        for name in names:
            self._list_add_result(found, f"{config_path.strip('/')}/{name}".lstrip("/"), name,
                                  results_filter)
        return sorted(set(found))


class SweepsSearchPath(SearchPathPlugin):
    """Appends the ``sweeps/`` folder to every search path, as group ``sweep``."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="fishbench-sweeps",
                           path=f"{SweepsConfigSource.scheme()}://{SWEEPS_DIR}")
