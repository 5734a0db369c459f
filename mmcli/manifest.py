"""models.toml: load the layers, validate strictly, merge by model name.

Layers, later wins: built-in ``models.toml`` -> ``$XDG_CONFIG_HOME/mmcli/models.toml`` ->
the file in ``$MMCLI_MODELS`` -> ``--models FILE``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mmcli import engines
from mmcli.errors import ConfigError
from mmcli.settings import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SOURCES = ("repo", "url", "package", "path")
REQUIRED = ("engine", "tasks", "description", "license", "size_mb")
ALLOWED = set(REQUIRED) | set(SOURCES) | {"revision", "files", "sha256", "options"}
TOP_LEVEL = {"models", "defaults"}


@dataclass
class ModelEntry:
    """One ``[models.NAME]`` table, validated."""

    name: str
    engine: str
    tasks: tuple[str, ...]
    description: str
    license: str
    size_mb: float
    source: str  # one of SOURCES
    origin: Path  # the manifest file that defined it (relative paths resolve against it)
    repo: str | None = None
    revision: str | None = None
    url: dict[str, str] = field(default_factory=dict)
    package: str | None = None
    path: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def source_label(self) -> str:
        """Short human/JSON label of the source, e.g. ``repo:org/name``."""
        if self.source == "repo":
            return f"repo:{self.repo}"
        if self.source == "package":
            return f"package:{self.package}"
        if self.source == "path":
            return f"path:{self.path}"
        return "url"

    @property
    def roles(self) -> dict[str, str]:
        """Role -> file name (``url`` sources take the name from the URL)."""
        if self.source == "url":
            return {role: u.rsplit("/", 1)[-1] for role, u in self.url.items()}
        return dict(self.files)


@dataclass
class Manifest:
    """The merged manifest: models by name, per-task default lists, and the layers read."""

    models: dict[str, ModelEntry] = field(default_factory=dict)
    defaults: dict[str, list[str]] = field(default_factory=dict)
    layers: list[Path] = field(default_factory=list)

    def for_task(self, task: str) -> list[ModelEntry]:
        """Entries that serve ``task``, in name order."""
        return [m for _, m in sorted(self.models.items()) if task in m.tasks]


def builtin_path() -> Path:
    """The built-in manifest shipped inside the package."""
    return Path(str(resources.files("mmcli") / "models.toml"))


def layer_paths(models_file: Path | None = None) -> list[Path]:
    """The manifest files in effect, in order (missing optional layers are left out)."""
    paths = [builtin_path()]
    user = config_dir() / "models.toml"
    if user.is_file():
        paths.append(user)
    env = os.environ.get("MMCLI_MODELS")
    if env:
        paths.append(_must_exist(Path(env), "MMCLI_MODELS"))
    if models_file is not None:
        paths.append(_must_exist(models_file, "--models"))
    return paths


def _must_exist(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"manifest file {path} (from {what}) does not exist",
                          hint=f"fix the path given in {what}")
    return path


def load(models_file: Path | None = None) -> Manifest:
    """Read, validate and merge every layer. Raises ConfigError naming file, model and key."""
    manifest = Manifest()
    for path in layer_paths(models_file):
        data = _read_toml(path)
        _merge(manifest, path, data)
    _check_defaults(manifest)
    return manifest


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start} (line {line})",
                          hint="TOML files are UTF-8; re-save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax error") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _merge(manifest: Manifest, path: Path, data: dict[str, Any]) -> None:
    unknown = set(data) - TOP_LEVEL
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key '{sorted(unknown)[0]}'",
                          hint="a manifest has only [models.NAME] tables and a [defaults] table")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: 'models' must be a table of [models.NAME] tables")
    for name, table in models.items():
        manifest.models[name] = parse_entry(path, name, table)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: [defaults] must be a table of task = [model names]")
    for task, names in defaults.items():
        where = f"{path}: [defaults] key '{task}'"
        if task not in engines.TASKS:
            raise ConfigError(f"{where}: unknown task",
                              hint=f"tasks are {', '.join(engines.TASKS)}")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{where}: must be a list of model names")
        manifest.defaults[task] = list(names)
    manifest.layers.append(path)


def _check_defaults(manifest: Manifest) -> None:
    for task, names in manifest.defaults.items():
        for name in names:
            entry = manifest.models.get(name)
            if entry is None:
                raise ConfigError(f"[defaults] {task}: unknown model '{name}'",
                                  hint="add a [models.NAME] table for it or remove it")
            if task not in entry.tasks:
                raise ConfigError(f"[defaults] {task}: model '{name}' does not list task '{task}'")


def parse_entry(path: Path, name: str, table: Any) -> ModelEntry:
    """Validate one ``[models.NAME]`` table strictly."""
    where = f"{path}: model '{name}'"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    for key in table:
        if key not in ALLOWED:
            raise ConfigError(f"{where}: unknown key '{key}'",
                              hint=f"allowed keys: {', '.join(sorted(ALLOWED))}")
    for key in REQUIRED:
        if key not in table:
            raise ConfigError(f"{where}: missing key '{key}'")
    engine = _typed(table, "engine", str, where)
    if engine not in engines.names():
        raise ConfigError(f"{where}: key 'engine': unknown engine '{engine}'",
                          hint=f"engines are {', '.join(engines.names())}")
    tasks = _typed(table, "tasks", list, where)
    for task in tasks:
        if task not in engines.TASKS:
            raise ConfigError(f"{where}: key 'tasks': unknown task '{task}'",
                              hint=f"tasks are {', '.join(engines.TASKS)}")
        if task not in engines.spec(engine).tasks:
            raise ConfigError(f"{where}: key 'tasks': engine '{engine}' cannot do '{task}'")
    sources = [k for k in SOURCES if k in table]
    if len(sources) != 1:
        raise ConfigError(f"{where}: needs exactly one source key of {', '.join(SOURCES)}, "
                          f"found {', '.join(sources) or 'none'}")
    source = sources[0]
    entry = ModelEntry(
        name=name, engine=engine, tasks=tuple(tasks),
        description=_typed(table, "description", str, where),
        license=_typed(table, "license", str, where),
        size_mb=float(_typed(table, "size_mb", (int, float), where)),
        source=source, origin=path,
        files=_str_table(table, "files", where), sha256=_str_table(table, "sha256", where),
        options=dict(_typed(table, "options", dict, where)) if "options" in table else {},
    )
    _parse_source(entry, table, where)
    return entry


def _parse_source(entry: ModelEntry, table: dict[str, Any], where: str) -> None:
    if entry.source == "repo":
        entry.repo = _typed(table, "repo", str, where)
        if "revision" not in table:
            raise ConfigError(f"{where}: missing key 'revision' (a repo source must be pinned)")
        entry.revision = _typed(table, "revision", str, where)
    elif "revision" in table:
        raise ConfigError(f"{where}: key 'revision' only applies to a repo source")
    if entry.source == "url":
        entry.url = _str_table(table, "url", where)
        for role, u in entry.url.items():
            if not u.startswith(("https://", "http://")):
                raise ConfigError(f"{where}: key 'url.{role}' must be an http(s) URL")
            if role not in entry.sha256 and u.startswith("http://"):
                # Nothing authenticates a plain-http download: only the pin can.
                raise ConfigError(
                    f"{where}: file {u.rsplit('/', 1)[-1]} (url.{role}) is plain http:// and "
                    "has no sha256 pin, so anyone on the way could swap it",
                    hint=f"add sha256.{role} = \"<its 64-hex sha256>\" to model '{entry.name}' "
                         "(or use an https:// URL and pin it)")
            if role not in entry.sha256:
                raise ConfigError(f"{where}: missing key 'sha256.{role}' (required for url)")
        if entry.files:
            raise ConfigError(f"{where}: key 'files' does not apply to a url source")
    else:
        if not entry.files:
            raise ConfigError(f"{where}: missing key 'files' (role = file name)")
    if entry.source == "package":
        entry.package = _typed(table, "package", str, where)
    if entry.source == "path":
        raw = Path(os.path.expanduser(_typed(table, "path", str, where)))
        entry.path = raw if raw.is_absolute() else (entry.origin.parent / raw)
    for role, digest in entry.sha256.items():
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise ConfigError(f"{where}: key 'sha256.{role}' is not a 64-hex-digit sha256")
        if role not in entry.roles:
            raise ConfigError(f"{where}: key 'sha256.{role}' names no file role")


def _typed(table: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: key '{key}' must be {names}")
    return value


def _str_table(table: dict[str, Any], key: str, where: str) -> dict[str, str]:
    if key not in table:
        return {}
    value = _typed(table, key, dict, where)
    for role, item in value.items():
        if not isinstance(item, str):
            raise ConfigError(f"{where}: key '{key}.{role}' must be a string")
    return dict(value)
