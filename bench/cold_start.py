"""Chat function cold start: a fresh Python process imports functions/chat/app.py (which builds
its dependencies, as Lambda's init phase does) and serves its first request through the handler.
Also lists each function's unzipped package size from `.aws-sam/build` (run `sam build` first).

    python bench/cold_start.py [--runs 5] [--json out.json]            # the dev virtualenv
    python bench/cold_start.py --built [--runs 5] [--json out.json]    # the built handler

--built imports `.aws-sam/build/ChatFunction/app.py` with a Python 3.12 (the Lambda runtime) and
nothing on its path but the function's own layers (plus boto3, which the runtime provides), with
bytecode writing off, as on Lambda's read-only /opt. Run `bash .ci/static_checks.sh` first (it
builds, and installs the stand-in boto3 under .venv-tools). --built --bytecode precompiles the
layers first (into a separate cache folder), to show what shipping .pyc files would change.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path

PROBE = r"""
import json, time, sys
t0 = time.perf_counter()
from vicw.local.runner import apigw_v2_event, load_function
from vicw.lambda_context import local_context
chat = load_function("chat")
t1 = time.perf_counter()
event = apigw_v2_event("POST", "/sessions/cold/messages", "", {"authorization": "Bearer bench-key-000000",
    "content-type": "application/json"}, json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode(), "127.0.0.1")
result = chat.handler(event, local_context("vicw-chat", 29))
t2 = time.perf_counter()
assert result["statusCode"] == 200, result
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_request_ms": (t2 - t1) * 1000}))
"""


# The built handler: Lambda imports the module `app` from the function folder.
PROBE_BUILT = r"""
import json, time, sys
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
event = json.load(open(sys.argv[1]))
event["rawPath"] = event["requestContext"]["http"]["path"] = "/sessions/cold/messages"
event["headers"]["authorization"] = "Bearer bench-key-000000"
event["body"] = json.dumps({"messages": [{"role": "user", "content": "hello"}]})
from aws_lambda_powertools.utilities.typing import LambdaContext
class Ctx:
    function_name = "vicw-chat"; memory_limit_in_mb = 1024; invoked_function_arn = "arn:aws:lambda:us-east-1:0:function:vicw-chat"
    aws_request_id = "cold-start"; log_group_name = log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 29000
result = app.handler(event, Ctx())
t2 = time.perf_counter()
assert result["statusCode"] == 200, result
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_request_ms": (t2 - t1) * 1000}))
"""


def built_command(bytecode: bool = False) -> tuple[list[str], dict[str, str], Path]:
    """(argv, extra env, cwd) running PROBE_BUILT against .aws-sam/build with Python 3.12."""
    import shutil

    build = REPO / ".aws-sam" / "build"
    # A pyenv shim named python3.12 may exist without a runnable interpreter: ask each candidate.
    candidates = [*sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")), shutil.which("python3.12")]
    py = next((str(c) for c in candidates if c and subprocess.run(
        [str(c), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"], capture_output=True).returncode == 0), None)
    boto = REPO / ".venv-tools" / "lambda-runtime-boto3"
    if not (build / "template.yaml").exists() or py is None or not boto.is_dir():
        raise SystemExit("--built needs .aws-sam/build, .venv-tools/lambda-runtime-boto3 (run bash .ci/static_checks.sh) "
                         "and a python3.12")
    tools_py = REPO / ".venv-tools" / "bin" / "python"
    layers = subprocess.run([str(tools_py), str(REPO / "infra" / "lambda_sizes.py"), str(build), "--pythonpath", "ChatFunction"],
                            check=True, capture_output=True, text=True).stdout.strip()
    env = {"PYTHONPATH": f"{layers}:{boto}", "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    if bytecode:
        # What shipping .pyc files in the layers would give: compile every layer once, outside the
        # build folder, and point the interpreter at that cache.
        import tempfile

        cache = Path(tempfile.mkdtemp(prefix="vicw-pycache-"))
        for folder in [*layers.split(":"), str(build / "ChatFunction")]:
            subprocess.run([str(py), "-m", "compileall", "-q", "-j", "0", folder], check=False, capture_output=True,
                           env={**os.environ, "PYTHONPYCACHEPREFIX": str(cache)})
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return [str(py), "-c", PROBE_BUILT, str(REPO / "events" / "chat_request.json")], env, build / "ChatFunction"


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def package_sizes(build: Path = REPO / ".aws-sam" / "build") -> dict[str, float] | None:
    """Unzipped MiB of each function's code and each layer (a function ships with its layers)."""
    if not build.is_dir():
        return None
    return {d.name: round(tree_bytes(d) / 2**20, 2) for d in sorted(build.iterdir()) if d.is_dir()}


def run(runs: int, built: bool = False, bytecode: bool = False) -> dict:
    from bench.hot_path import local_servers
    from vicw.aws_resources import ensure_local_resources

    samples = []
    argv, extra, cwd = built_command(bytecode) if built else ([sys.executable, "-c", PROBE], {"PYTHONPATH": str(REPO)}, REPO)
    with local_servers() as env:
        os.environ.update(env)
        queues = ensure_local_resources()
        child_env = {**os.environ, **env, **queues, "VICW_API_KEYS": "bench-key-000000:bench", "VICW_LLM_PROVIDER": "none",
                     "PYTHONDONTWRITEBYTECODE": "0", "REDIS_URL_SECRET": "", "TMPDIR": "/tmp", **extra}
        for _ in range(runs):
            out = subprocess.run(argv, check=False, env=child_env, cwd=cwd, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: round(statistics.median(s[k] for s in samples), 1) for k in ("import_ms", "first_request_ms")}
    return {"runs": runs, "built_handler": built, "bytecode_cached": bytecode, "median": med, "all": samples, "package_mib": package_sizes(),
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def markdown(data: dict) -> str:
    m = data["median"]
    what = "built handler, Python 3.12, layers only" if data.get("built_handler") else "dev virtualenv"
    if data.get("bytecode_cached"):
        what += ", .pyc precompiled"
    lines = [f"| chat function cold start (fresh process, {what}) | median ms |", "|---|---:|",
             f"| import + build dependencies (init phase) | {m['import_ms']:.0f} |",
             f"| first request through the Mangum handler | {m['first_request_ms']:.0f} |",
             f"| total | {m['import_ms'] + m['first_request_ms']:.0f} |",
             f"\n{data['runs']} runs; 1-min load average {data['load_avg_1m']}."]
    if data["package_mib"]:
        lines += ["", "| `.aws-sam/build` entry | unzipped MiB |", "|---|---:|"]
        lines += [f"| {name} | {mib} |" for name, mib in data["package_mib"].items()]
        lines.append("\nA function's deployed size is its own folder plus the layers it uses (Lambda limit: 250 MiB).")
    else:
        lines.append("\nNo `.aws-sam/build`: run `sam build` (see infra/lambda_sizes.py) to get package sizes.")
    return "\n".join(lines)


def main() -> int:
    def options(p) -> None:
        p.add_argument("--runs", type=int, default=5)
        p.add_argument("--built", action="store_true", help="the built handler with only its layers (Python 3.12)")
        p.add_argument("--bytecode", action="store_true", help="with --built: as if the layers shipped .pyc files")

    return bench_cli(__doc__, options, lambda a: run(a.runs, a.built, a.bytecode), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
