"""The command-line shape every benchmark shares: options, an optional JSON dump, a markdown table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def bench_cli(
    doc: str,
    configure: Callable[[argparse.ArgumentParser], object],
    run: Callable[[argparse.Namespace], dict],
    markdown: Callable[[dict], str],
) -> int:
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    configure(parser)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    data = run(args)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    print(markdown(data))
    return 0
