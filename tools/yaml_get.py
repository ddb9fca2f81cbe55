"""Read values from a recipe's YAML config, for shell scripts.

Usage:
  yaml_get.py CONFIG KEY.PATH [DEFAULT]   print a scalar (lists are space-separated)
  yaml_get.py CONFIG --section KEY OUT    write one section as its own YAML file

A config may start with ``extends: OTHER.yaml`` (relative to its own folder): it then holds only
what differs from OTHER, merged key by key over it. Variants such as the softmax baseline of a
recipe stay one short file each instead of a copy that drifts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

_MISSING = object()


def lookup(config: dict[str, Any], dotted: str, default: Any = _MISSING) -> Any:
    """Return ``config[a][b]...`` for ``dotted == "a.b..."``; ``default`` when absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _MISSING:
                raise KeyError(f"{dotted!r} is not set in the config")
            return default
        node = node[part]
    return node


def load_config(path: str | Path) -> dict[str, Any]:
    """Load a recipe YAML, resolving ``extends:`` chains (a cycle is an error)."""
    path = Path(path)
    return _load(path, seen=())


def _load(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    key = path.resolve()
    if key in seen:
        chain = " -> ".join(str(p) for p in (*seen, key))
        raise ValueError(f"'extends' cycle: {chain}")
    config = yaml.safe_load(path.read_text()) or {}
    parent = config.pop("extends", None)
    if parent is None:
        return config
    return deep_merge(_load(path.parent / parent, (*seen, key)), config)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it; nested dicts merge, anything else replaces."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _format(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_format(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    config = load_config(args[0])
    try:
        if args[1] == "--section":
            section = lookup(config, args[2])
            Path(args[3]).write_text(yaml.safe_dump(section, sort_keys=False))
            return 0
        value = lookup(config, args[1], *args[2:3])
    except KeyError as err:
        print(f"error: {args[0]}: {err.args[0]}", file=sys.stderr)
        return 1
    print(_format(value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
