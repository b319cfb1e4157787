#!/usr/bin/env python3
"""Schema-driven fuzz of a running Stowage host's two APIs with schemathesis, bounded in examples and time.

Each API's OpenAPI document is read from the host itself (GET /openapi.json), so the run also checks that it is
served. Checks: no 5xx except those the document declares (and no 500 at all: the test model never fails by
itself), every status and content type declared, JSON bodies and server-sent events that match their schemas,
invalid input refused with a 4xx (OpenAI API), and no admin call accepted without the token; every request has a
timeout, so a hang is a failure too. The OpenAI document's `model` is narrowed to the names the host serves, so
that valid cases reach a real model instead of answering 404. Every request goes to the URLs given (use
127.0.0.1); model URIs in generated assignments are pointed at 127.0.0.1 (api_fuzz_hooks.py).

  python3 api_fuzz.py --api http://127.0.0.1:8080 --admin http://127.0.0.1:8081 --token TOKEN \
      [--max-examples 25] [--max-time 60] [--seed 1] [--out target/api-fuzz] [--only openai|admin]

Exit 0 when every run passed, 1 when one found a failure (the reports are under --out), 2 on a usage or setup error.
"""

import argparse
import json
import os
import subprocess
import sys
import urllib.request

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
# Invalid input must be refused with a 4xx, on both APIs (the admin API reads its body strictly: no coercions).
OPENAI_CHECKS = ["negative_data_rejection"]
ADMIN_CHECKS = ["ignored_auth", "negative_data_rejection"]
HERE = os.path.dirname(os.path.abspath(__file__))


def fetch_json(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET {url} answered {resp.status}")
        return json.load(resp)


def documented_server_errors(doc):
    """The 5xx statuses the document declares, less 500.

    500 is declared for a model's own failures (a chat template that fails by itself, an engine that fails the
    sequence); the test model has neither, so a 500 during the fuzz is the host's bug, whatever the document says.
    """
    codes = set()
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict):
                codes.update(str(c) for c in op.get("responses", {}) if str(c).startswith("5"))
    codes.discard("500")
    return sorted(codes)


def run(name, base, doc, args, headers, extra_checks):
    out = os.path.abspath(os.path.join(args.out, name))
    os.makedirs(out, exist_ok=True)
    schema_file = os.path.join(out, "openapi.json")
    with open(schema_file, "w") as f:
        json.dump(doc, f, indent=1)
    expected = ["2xx", "3xx", "4xx"] + documented_server_errors(doc)
    config_file = os.path.join(out, "schemathesis.toml")
    with open(config_file, "w") as f:
        f.write("[checks.not_a_server_error]\nexpected-statuses = %s\n" % json.dumps(expected))
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", config_file,
        "run", schema_file, "--url", base,
        "--checks", ",".join(CHECKS + extra_checks),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(args.max_examples),
        "--max-time", str(args.max_time),
        "--seed", str(args.seed),
        "--workers", "1",
        "--request-timeout", str(args.request_timeout),
        "--suppress-health-check", "all",
        "--report", "junit,ndjson", "--report-dir", out,
    ]
    for h in headers:
        cmd += ["-H", h]
    env = dict(os.environ, SCHEMATHESIS_HOOKS=os.path.join(HERE, "api_fuzz_hooks.py"))
    print(f"api-fuzz: {name} API at {base} ({args.max_examples} examples per operation, {args.max_time} s at most;"
          f" 5xx allowed: {documented_server_errors(doc) or 'none'})", flush=True)
    # The run's own budget plus time for its last requests and the report: past that it hangs.
    try:
        # run in the report folder: schemathesis keeps its cache (.schemathesis/) in the working directory
        rc = subprocess.run(cmd, env=env, cwd=out, timeout=args.max_time + 2 * args.request_timeout + 60).returncode
    except subprocess.TimeoutExpired:
        print(f"api-fuzz: {name}: schemathesis did not finish within {args.max_time} s plus its margin: the host hangs",
              flush=True)
        return False
    print(f"api-fuzz: {name}: {'passed' if rc == 0 else f'FAILED (exit {rc}); reports in {out}'}", flush=True)
    return rc == 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--api", default="http://127.0.0.1:8080", help="the OpenAI-compatible API's base URL")
    p.add_argument("--admin", default="http://127.0.0.1:8081", help="the admin API's base URL")
    p.add_argument("--token", default=os.environ.get("STOWAGE_ADMIN_TOKEN"), help="the admin bearer token")
    p.add_argument("--max-examples", type=int, default=25, help="cases per operation and phase")
    p.add_argument("--max-time", type=int, default=60, help="seconds each API's run may take")
    p.add_argument("--request-timeout", type=float, default=20, help="seconds one request may take")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="target/api-fuzz", help="where the schemas, configs and reports go")
    p.add_argument("--only", choices=["openai", "admin"])
    args = p.parse_args()
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        print("api-fuzz: schemathesis is not installed for " + sys.executable
              + "; install it with: python3 -m pip install schemathesis==4.32.5", file=sys.stderr)
        return 2
    ok = True
    try:
        if args.only in (None, "openai"):
            doc = fetch_json(args.api + "/openapi.json")
            names = [m["id"] for m in fetch_json(args.api + "/v1/models")["data"]]
            if names:
                doc["components"]["schemas"]["Model"] = {"type": "string", "enum": names}
            ok &= run("openai", args.api, doc, args, [], OPENAI_CHECKS)
        if args.only in (None, "admin"):
            if not args.token:
                print("api-fuzz: the admin API needs --token (or STOWAGE_ADMIN_TOKEN)", file=sys.stderr)
                return 2
            doc = fetch_json(args.admin + "/openapi.json")
            ok &= run("admin", args.admin, doc, args, ["Authorization: Bearer " + args.token], ADMIN_CHECKS)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        print(f"api-fuzz: cannot set up the run: {e}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
