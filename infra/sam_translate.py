"""Expand template.yaml's SAM resources into plain CloudFormation, offline.

`sam validate --lint` lints the SAM template itself, so properties SAM passes through to the
generated resources (Runtime, FunctionResponseTypes, ScalingConfig, ...) are not checked there.
Linting this script's output with cfn-lint checks them.

Usage: python infra/sam_translate.py template.yaml out.json [region]
Needs `aws-sam-translator` (it comes with aws-sam-cli and cfn-lint's tool environment).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class OfflinePolicyLoader:
    """Answers SAM's managed-policy lookups without calling IAM (any name maps to its AWS ARN)."""

    def load(self) -> dict[str, str]:
        return _KnownPolicies()


class _KnownPolicies(dict):
    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"

    def __contains__(self, name: object) -> bool:  # every AWS-managed name resolves
        return isinstance(name, str)

    def get(self, name, default=None):
        return self[name]


def _with_s3_code(template: dict) -> dict:
    """SAM needs uploaded artifacts (s3:// URIs) to translate; local paths are stand-ins."""
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://placeholder-bucket/{props[key].strip('/') or 'root'}.zip"
    return template


def translate(template_path: Path, region: str = "us-east-1") -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.setdefault("AWS_REGION", region)
    template = _with_s3_code(yaml_parse(template_path.read_text()))
    return transform(template, {}, OfflinePolicyLoader())


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    try:
        result = translate(Path(argv[1]), argv[3] if len(argv) > 3 else "us-east-1")
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"SAM transform error: {cause.message}", file=sys.stderr)
        return 1
    Path(argv[2]).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
