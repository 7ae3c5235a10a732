"""``llm-service dry-run`` and ``llm-service diagram``: authoring tools that never call an upstream or Redis.

The analysis lives in :mod:`llm_service.engine.plan` and :mod:`llm_service.engine.diagram`; this module loads the
definition, hands it over and formats the answer. Text output uses colour only on a terminal (and never with
``NO_COLOR``), so a pipe or a file gets plain text.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

PROMPT_PREVIEW_CHARS = 1500


def add_commands(sub: Any) -> None:
    """Register the subcommands on the main parser's subparsers."""
    dry = sub.add_parser("dry-run", help="show a workflow's plan, variable flow, upstream calls and cost estimate "
                                         "without running it")
    dry.add_argument("name", help="workflow name or path to a definition .json")
    dry.add_argument("--input", "-i", help="JSON file with an input object ('-' = stdin): shows the resolved "
                                           "parameters and rendered prompts")
    dry.add_argument("--json", action="store_true", help="print the plan as JSON")
    dry.add_argument("--execution", choices=("sequential", "dependencies"), help="plan for this execution mode")
    dry.add_argument("--workflows-dir", help="root holding definitions/ and prompts/ (env WORKFLOWS_DIR)")
    dry.set_defaults(handler=dry_run)

    draw = sub.add_parser("diagram", help="draw a workflow as a Mermaid or Graphviz (dot) flowchart")
    draw.add_argument("name", help="workflow name or path to a definition .json")
    draw.add_argument("-o", "--output", help="write to this file instead of stdout")
    draw.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    draw.add_argument("--workflows-dir", help="root holding definitions/ and prompts/ (env WORKFLOWS_DIR)")
    draw.set_defaults(handler=diagram)


def _load(args: argparse.Namespace) -> tuple[Any, Path, Any]:
    """(workflow, workflows root, config); definition problems are usage errors (exit 2)."""
    from .cli import UsageError, _config, _locate
    from .engine.definitions import DefinitionLoader, WorkflowInvalid, WorkflowLoadError, WorkflowNotFound

    config = _config(args)
    root, path, name = _locate(args.name, Path(config.workflows_dir))
    try:
        return DefinitionLoader(root).load_path(path, name=name), root, config
    except WorkflowNotFound:
        raise UsageError(f"workflow '{args.name}' not found (looked for {path})") from None
    except WorkflowInvalid as exc:
        raise UsageError("invalid workflow:\n  " + "\n  ".join(exc.problems)) from None
    except WorkflowLoadError as exc:
        raise UsageError(str(exc)) from None


def dry_run(args: argparse.Namespace) -> int:
    from .cli import _read_input
    from .engine.plan import build_plan
    from .engine.prompts import PromptLoader
    from .http import HttpClient
    from .integrations import build_providers
    from .redaction import register_secrets

    workflow, root, config = _load(args)
    input_data = _read_input(args.input) if args.input else None
    register_secrets(config.secrets())
    http = HttpClient(pool_size=1, user_agent="llm-service-dry-run")  # never used to send: providers only name
    try:
        plan = build_plan(workflow, prompts=PromptLoader(root / "prompts"), providers=build_providers(config, http),
                          input_data=input_data, execution=args.execution,
                          max_tokens_cap=config.llm_max_tokens_cap)
    finally:
        http.close()
    if args.json:
        json.dump(plan.to_dict(), sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        PlanPrinter(sys.stdout).print(plan)
    return 0


def diagram(args: argparse.Namespace) -> int:
    from .cli import UsageError
    from .engine.diagram import render_diagram
    from .engine.plan import build_plan

    workflow, _, _ = _load(args)
    text = render_diagram(build_plan(workflow), args.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        print(f"wrote {args.output} ({args.format}, {workflow.total_steps()} steps)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


class PlanPrinter:
    """The dry-run report as text: headings, the step tree, then calls and the cost table."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")

    def style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def heading(self, text: str) -> None:
        self.line()
        self.line(self.style(text, "1"))

    def print(self, plan: Any) -> None:
        workflow = plan.workflow
        self.line(self.style(f"{workflow.name} {workflow.version}", "1") + f"  ({workflow.total_steps()} steps, "
                  f"execution: {plan.execution}, timeout {workflow.timeout_seconds}s, "
                  f"default error mode: {workflow.default_error_mode})")
        if workflow.description:
            self.line(workflow.description)
        self._inputs(plan)
        self.heading("Plan (execution order)")
        for index, step in enumerate(plan.steps):
            self._step(step, "", index == len(plan.steps) - 1)
        if plan.waves is not None:
            self.heading("Waves (dependencies mode: steps in one wave can run together)")
            for number, wave in enumerate(plan.waves, 1):
                self.line(f"  {number}. {', '.join(wave)}")
        self._calls(plan)
        self._costs(plan)
        if plan.unresolved_inputs:
            self.heading("Input not given")
            for path in plan.unresolved_inputs:
                self.line(f"  ${{{path}}} is left as is")

    def _inputs(self, plan: Any) -> None:
        from .engine.plan import input_variables

        self.heading("Inputs")
        for item in input_variables(plan.workflow):
            if not item["declared"]:
                self.line(f"  {item['name']}  (read by a step but not declared)")
                continue
            flags = "required" if item["required"] else f"optional, default {json.dumps(item['default'])}"
            about = f" - {item['description']}" if item["description"] else ""
            self.line(f"  {item['name']}: {item['type']} ({flags}){about}")

    def _step(self, plan: Any, prefix: str, last: bool) -> None:
        step = plan.step
        branch = f"[{plan.branch}] " if plan.branch in ("then", "else") else ""
        marks = "" if plan.error_mode == "fail" else f"  ({plan.error_mode})"
        self.line(f"{prefix}{'└─ ' if last else '├─ '}{branch}{self.style(step.id, '1')} "
                  f"{self.style(step.type, '36')}: {plan.summary}{marks}")
        inner = prefix + ("   " if last else "│  ")
        detail = inner + ("   " if not plan.children else "│  ")
        references = [path for path in plan.references if path != "steps"]
        if references:
            self.line(f"{detail}reads: {', '.join(references)}")
        if plan.reads_all_earlier:
            self.line(f"{detail}reads: the whole context (waits for every earlier step)")
        base = f"steps.{step.id}."
        self.line(f"{detail}provides: {base}{{{', '.join(p[len(base):] for p in plan.provides)}}}")
        if plan.estimate:
            estimate = plan.estimate
            cost = f"${estimate['cost_usd']:.6f}" if estimate["cost_usd"] is not None else "not priced"
            self.line(f"{detail}estimate: ~{estimate['prompt_tokens']} prompt + up to {estimate['output_tokens']} "
                      f"output tokens, {cost}")
        if plan.rendered:
            self._rendered(plan.rendered, detail)
        for problem in plan.problems:
            self.line(f"{detail}{self.style('note:', '33')} {problem}")
        for index, child in enumerate(plan.children):
            self._step(child, inner, index == len(plan.children) - 1)

    def _rendered(self, rendered: dict, indent: str) -> None:
        if "branch" in rendered:
            self.line(f"{indent}with this input: condition {str(rendered['condition']).lower()}, "
                      f"runs the {rendered['branch']} branch")
        for key in ("parameters", "input"):
            if key in rendered:
                self.line(f"{indent}{key}: {json.dumps(rendered[key], ensure_ascii=False, default=str)}")
        for message in rendered.get("messages", ()):
            text = message["content"]
            more = len(text) - PROMPT_PREVIEW_CHARS
            if more > 0:
                text = text[:PROMPT_PREVIEW_CHARS] + f"\n... ({more} more characters; --json shows all)"
            self.line(f"{indent}{message['role']} message:")
            for line in text.splitlines() or [""]:
                self.line(f"{indent}  | {line}")

    def _calls(self, plan: Any) -> None:
        self.heading("Upstream calls (before caching; both branches of a conditional counted; "
                     "'at most' adds retries, model fallbacks and format retries)")
        if not plan.upstream_calls:
            self.line("  none")
        for service, counts in sorted(plan.upstream_calls.items()):
            most = counts["max_calls"]
            self.line(f"  {service}: {counts['calls']}" + (f" (at most {most})" if most > counts["calls"] else ""))

    def _costs(self, plan: Any) -> None:
        rows = [p for p in plan.walk() if p.estimate is not None]
        if not rows:
            return
        basis = rows[0].estimate["basis"]
        self.heading(f"LLM estimate (prompt tokens ~ characters / 4 from {basis}; output = max_tokens)")
        table = [("step", "model", "prompt", "output", "cost USD", "max USD")]
        for row in rows:
            estimate = row.estimate
            table.append((row.step.id, estimate["model"], str(estimate["prompt_tokens"]),
                          str(estimate["output_tokens"]), _usd(estimate["cost_usd"]), _usd(estimate["max_cost_usd"])))
        totals = plan.totals
        table.append(("total", "", str(totals["prompt_tokens"]), str(totals["output_tokens"]),
                      _usd(totals["cost_usd"]), _usd(totals["max_cost_usd"])))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for number, row in enumerate(table):
            cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
            self.line("  " + "  ".join(cells).rstrip())
            if number == 0 or number == len(table) - 2:
                self.line("  " + "  ".join("-" * width for width in widths))
        if totals["unpriced_models"]:
            self.line(f"  not in the price table (cost unknown): {', '.join(totals['unpriced_models'])}")


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"
