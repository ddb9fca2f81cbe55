"""Read values from a recipe's YAML config, for shell scripts.

Usage:
  yaml_get.py CONFIG KEY.PATH [DEFAULT]   print a scalar (lists are space-separated)
  yaml_get.py CONFIG --section KEY OUT    write one section as its own YAML file
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
    config = yaml.safe_load(Path(args[0]).read_text()) or {}
    if args[1] == "--section":
        section = lookup(config, args[2])
        Path(args[3]).write_text(yaml.safe_dump(section, sort_keys=False))
        return 0
    try:
        value = lookup(config, args[1], *args[2:3])
    except KeyError as err:
        print(f"error: {args[0]}: {err.args[0]}", file=sys.stderr)
        return 1
    print(_format(value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
