"""The ``llm-service`` command.

Contract (other tools rely on it): ``run`` writes only the result JSON to stdout and logs (and, with
``--progress``, the steps and streamed text) to stderr; exit 0 on success, 1 when the workflow ran and failed, 2 for
usage errors or an unknown/invalid workflow. ``validate`` prints one line per problem and exits 0 when everything is
valid, 1 otherwise. ``dry-run`` and ``diagram`` (in cli_authoring.py) exit 0, or 2 for an unknown/invalid workflow.
None of them needs Redis. ``watch`` follows a job through the API (``watch.py``): exit 0 completed, 1 failed,
3 cancelled, 2 when it cannot follow (unknown job, bad secret, the API unreachable).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .cli_authoring import add_commands as add_authoring_commands
from .config import Config, ConfigError
from .watch import ProgressView, RunProgress, add_watch_command

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or input: exit 2 with the message on stderr."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _PASSTHROUGH:  # their own option parsers take the rest of the line
        return _PASSTHROUGH[argv[0]](argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handling below, not at interpreter exit
        return code
    except UsageError as exc:
        print(f"llm-service: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"llm-service: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `llm-service dry-run x | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-service", description="Run and check llm-service workflows.")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a workflow and print its result JSON")
    run.add_argument("name", help="workflow name (a file <workflows-dir>/definitions/NAME.json)")
    run.add_argument("--input", "-i", required=True, help="JSON file with the input object ('-' = stdin)")
    run.add_argument("--workflows-dir", help="root holding definitions/ and prompts/ (env WORKFLOWS_DIR)")
    run.add_argument("--execution", choices=("sequential", "dependencies"),
                     help="run in this mode whatever the workflow says (env WORKFLOW_EXECUTION only sets "
                          "the default for workflows that do not say)")
    run.add_argument("--timeout", type=float, help="override the workflow's timeout_seconds")
    run.add_argument("--compact", action="store_true", help="print the result on one line")
    run.add_argument("--resume-from", metavar="STEP",
                     help="re-run from this step, reusing the recorded outputs of the steps before it from "
                          "--previous (default with --previous: the first step that did not succeed)")
    run.add_argument("--previous", metavar="RESULT.json",
                     help="an earlier `run` result (it carries step_records and their fingerprints)")
    run.add_argument("--progress", action="store_true",
                     help="show each step as it finishes and streamed LLM text on stderr")
    run.set_defaults(handler=_run)
    add_watch_command(sub)

    check = sub.add_parser("validate", help="check workflow definitions (names or paths to .json files)")
    check.add_argument("targets", nargs="+", metavar="NAME_OR_PATH")
    check.add_argument("--workflows-dir", help="root holding definitions/ and prompts/ (env WORKFLOWS_DIR)")
    check.set_defaults(handler=_validate)

    add_authoring_commands(sub)

    sub.add_parser("sandbox", help="serve the SANDBOX upstream (fake WeatherAPI, Places, chat API); "
                                   "see llm-service sandbox --help")
    sub.add_parser("dev", help="start the local stack (Redis, sandbox upstream, worker, API); "
                               "see llm-service dev --help")
    return parser


def _config(args: argparse.Namespace) -> Config:
    config = Config.from_env()
    if getattr(args, "workflows_dir", None):
        config = config.with_overrides(workflows_dir=args.workflows_dir)
    return config


def _read_input(source: str) -> dict:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read input file {source}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"input {source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"input {source} must be a JSON object, got {type(data).__name__}")
    return data


def _run(args: argparse.Namespace) -> int:
    from . import services
    from .engine import WorkflowInvalid, WorkflowLoadError, WorkflowNotFound
    from .logs import configure_logging

    config = _config(args)
    configure_logging(config.log_level, config.log_format)
    input_data = _read_input(args.input)
    runtime = services.build(config, redis_mode="auto")
    try:
        try:
            workflow = runtime.engine.load(args.name)
        except WorkflowNotFound as exc:
            raise UsageError(f"{exc} (looked in {Path(config.workflows_dir, 'definitions')})") from None
        except WorkflowInvalid as exc:
            raise UsageError("invalid workflow:\n  " + "\n  ".join(exc.problems)) from None
        except WorkflowLoadError as exc:
            raise UsageError(str(exc)) from None
        _refuse_invalid(runtime.engine, workflow, config)
        completed = _resumed_steps(args, workflow, runtime.engine.prompts)
        result = runtime.engine.run(workflow, input_data, timeout=args.timeout, execution=args.execution,
                                    completed_steps=completed, include_records=True,
                                    progress=RunProgress(ProgressView(sys.stderr)) if args.progress else None)
    finally:
        runtime.close()
    json.dump(result, sys.stdout, indent=None if args.compact else 2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return EXIT_OK if result["success"] else EXIT_FAILED


def _refuse_invalid(engine: Any, workflow: Any, config: Config) -> None:
    """``validate``'s static checks before anything runs: a typo'd reference or a missing prompt file is reported
    at once (exit 2), not after the upstream calls of the steps before it were made and paid for."""
    from .engine.validation import check_workflow

    tools = engine.tools
    report = check_workflow(workflow, prompts=engine.prompts, services=tools.services, providers=tools.providers,
                            max_steps=config.workflow_max_steps)
    if report.problems:
        raise UsageError("invalid workflow (nothing was run):\n  " + "\n  ".join(report.problems))


def _resumed_steps(args: argparse.Namespace, workflow, prompts) -> dict | None:
    """The earlier run's records to reuse (``--previous`` / ``--resume-from``), checked against the definition."""
    from .engine.reuse import RerunRefused, first_unfinished_step, records_to_reuse

    if args.previous is None:
        if args.resume_from is not None:
            raise UsageError("--resume-from needs --previous RESULT.json (an earlier run's result)")
        return None
    try:
        previous = json.loads(Path(args.previous).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --previous {args.previous}: {exc}") from None
    records = previous.get("step_records") if isinstance(previous, dict) else None
    if not isinstance(records, dict):
        raise UsageError(f"{args.previous} has no step_records: pass the JSON that `llm-service run` printed")
    from_step = args.resume_from or first_unfinished_step(workflow, records)
    if from_step is None:
        raise UsageError(f"every step of {args.previous} succeeded: name the step to re-run with --resume-from")
    try:
        return records_to_reuse(workflow, from_step, records,
                                (previous.get("metadata") or {}).get("step_fingerprints") or {}, prompts)
    except RerunRefused as exc:
        raise UsageError(str(exc)) from None


def _validate(args: argparse.Namespace) -> int:
    from .engine.definitions import (
        DefinitionLoader,
        WorkflowInvalid,
        WorkflowLoadError,
        WorkflowNotFound,
    )
    from .engine.prompts import PromptLoader
    from .engine.validation import check_workflow
    from .http import HttpClient
    from .integrations import build_providers, build_services

    config = _config(args)
    http = HttpClient(pool_size=1, user_agent="llm-service-validate")
    registry, providers = build_services(config, http), build_providers(config, http)
    known = {name: set(registry.get(name).operations) for name in registry.names()}
    problems = 0
    for target in args.targets:
        root, path, name = _locate(target, Path(config.workflows_dir))
        loader = DefinitionLoader(root, services=known)
        try:
            workflow = loader.load_path(path, name=name)
        except WorkflowNotFound:
            print(f"{target}: workflow not found (looked for {path})")
            problems += 1
            continue
        except WorkflowInvalid as exc:
            for line in exc.problems:
                print(line)
            problems += len(exc.problems)
            continue
        except WorkflowLoadError as exc:
            print(f"{target}: {exc}")
            problems += 1
            continue
        report = check_workflow(workflow, prompts=PromptLoader(root / "prompts"), services=registry,
                                providers=providers, max_steps=config.workflow_max_steps)
        for line in report.problems:
            print(line)
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
        problems += len(report.problems)
        if not report.problems:
            print(f"{target}: ok ({workflow.name} {workflow.version}, {workflow.total_steps()} steps)",
                  file=sys.stderr)
    http.close()
    return EXIT_OK if problems == 0 else EXIT_FAILED


def _locate(target: str, default_root: Path) -> tuple[Path, Path, str]:
    """A bare name lives in the workflows dir; a path's root is the folder above its ``definitions/``."""
    from .engine.definitions import definition_path

    looks_like_path = target.endswith(".json") or "/" in target or "\\" in target
    if not looks_like_path:
        try:
            return default_root, definition_path(default_root, target), target
        except Exception:
            return default_root, default_root / "definitions" / f"{target}.json", target
    path = Path(target).resolve()
    root = path.parent.parent if path.parent.name == "definitions" else default_root
    return root, path, path.stem


def _sandbox(argv: list[str]) -> int:
    from .sandbox.__main__ import main as sandbox_main

    return int(sandbox_main(argv) or 0)


def _dev(argv: list[str]) -> int:
    from .devstack import main as dev_main

    return int(dev_main(argv) or 0)


_PASSTHROUGH = {"sandbox": _sandbox, "dev": _dev}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
