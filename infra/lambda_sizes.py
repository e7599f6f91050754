"""Unzipped size of each built function plus its layers, against Lambda's 250 MB limit.

Usage: python infra/lambda_sizes.py [.aws-sam/build]   (after `sam build`)
       python infra/lambda_sizes.py .aws-sam/build --pythonpath ChatFunction
           (the layers' python/ folders of one function, ':'-joined, for an import check)
Exit status 1 if any function is over the limit. Runs in the SAM tools environment
(it reads the built template with samtranslator's YAML parser).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

# Lambda rejects a function whose code and layers unzip to 262,144,000 bytes or more.
LIMIT_BYTES = 262_144_000


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            p = Path(root, name)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def function_layers(build_dir: Path) -> dict[str, tuple[Path, dict[str, Path]]]:
    """Function -> (its code folder, {layer logical id: layer folder}) in the built template."""
    template = yaml_parse((build_dir / "template.yaml").read_text())
    resources = template["Resources"]
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    out = {}
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        layers = {ref["Ref"]: build_dir / resources[ref["Ref"]]["Properties"]["ContentUri"]
                  for ref in [*global_layers, *props.get("Layers", [])]}
        out[name] = (build_dir / props["CodeUri"], layers)
    return out


def function_sizes(build_dir: Path) -> dict[str, tuple[int, dict[str, int]]]:
    out = {}
    for name, (code, layers) in function_layers(build_dir).items():
        parts = {name: tree_bytes(code), **{k: tree_bytes(v) for k, v in layers.items()}}
        out[name] = (sum(parts.values()), parts)
    return out


def main(argv: list[str]) -> int:
    build_dir = Path(argv[1] if len(argv) > 1 else ".aws-sam/build")
    if len(argv) > 3 and argv[2] == "--pythonpath":
        print(":".join(str(p / "python") for p in function_layers(build_dir)[argv[3]][1].values()))
        return 0
    worst = 0
    for name, (total, parts) in sorted(function_sizes(build_dir).items()):
        detail = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in parts.items())
        verdict = "ok" if total < LIMIT_BYTES else "OVER LIMIT"
        headroom = (LIMIT_BYTES - total) / 1e6
        print(f"  {name:<20} {total / 1e6:7.1f} MB of {LIMIT_BYTES / 1e6:.1f}, headroom {headroom:6.1f} MB"
              f" ({detail})  {verdict}")
        worst = max(worst, total)
    return 0 if worst < LIMIT_BYTES else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
