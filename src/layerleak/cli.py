"""The command line: parse, call the scanner, render, exit. No logic worth testing lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from layerleak import __version__
from layerleak.detect.engine import Engine
from layerleak.detect.gate import GATES
from layerleak.detect.rules import load_rules
from layerleak.errors import LayerleakError
from layerleak.findings.policy import EXIT_ERROR, exit_code, parse_fail_on
from layerleak.memory import return_large_buffers
from layerleak.models import Confidence, ScanReport, TargetResult
from layerleak.report.json_report import render_json
from layerleak.report.progress import layer_progress
from layerleak.report.table import render_table
from layerleak.scan import ScanOptions, TargetOptions, issue_lines, scan_targets
from layerleak.scan.layers import default_jobs
from layerleak.sources.interface import SourceOptions
from layerleak.store.cache import LayerCache
from layerleak.store.results.record import ScanRecorder, read_targets

SEVERITIES = ["critical", "high", "medium", "low", "none"]


def _fail(message: str) -> None:
    click.echo(f"layerleak: error: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerleak")
def main() -> None:
    """Find secrets baked into container image layers."""
    return_large_buffers()


@main.command()
@click.argument("targets", nargs=-1, metavar="TARGET...")
@click.option("--from-file", "from_file", metavar="FILE",
              help="Also scan the targets listed in FILE, one a line (# comments); - reads stdin.")
@click.option("--db", "db_url", metavar="URL",
              help="Also record the results in this database (SQLite PATH or postgresql://...).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the report to FILE instead of stdout.")
@click.option("--show-secrets", is_flag=True,
              help="Put whole secrets in the report (for responders who must rotate them).")
@click.option("--fail-on", type=click.Choice(SEVERITIES, case_sensitive=False), default="low",
              show_default=True, help="Exit 1 when a finding is at or above this severity.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Scan only this platform of a multi-platform image.")
@click.option("--rules", "rule_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or directory (our TOML or gitleaks TOML); repeatable.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--min-confidence", type=click.Choice(["low", "medium", "high"], case_sensitive=False),
              default="medium", show_default=True,
              help="Report findings at or above this confidence (low shows vendor package files).")
@click.option("--username", metavar="USER",
              help="Registry user name (else env LAYERLEAK_USERNAME); pair with --password-stdin.")
@click.option("--password-stdin", is_flag=True,
              help="Read the registry password from stdin (else env LAYERLEAK_PASSWORD).")
@click.option("--insecure", is_flag=True,
              help="Registries: allow plain HTTP and do not verify TLS certificates.")
@click.option("--no-cache", is_flag=True,
              help="Neither read nor write the layer cache (env LAYERLEAK_CACHE_DIR moves it).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that scan layers at once  [default: the CPUs available, at most 8].")
@click.option("--gate", type=click.Choice(GATES), default="auto", show_default=True,
              help="Keyword gate: hyperscan (when installed), re2, or none (the automaton reads every "
                   "byte: slow, for comparisons). Findings are the same with each.")
def scan(
    targets: tuple[str, ...],
    from_file: str | None,
    db_url: str | None,
    fmt: str,
    output: Path | None,
    show_secrets: bool,
    fail_on: str,
    platform: str | None,
    rule_paths: tuple[Path, ...],
    no_progress: bool,
    min_confidence: str,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
    no_cache: bool,
    jobs: int | None,
    gate: str,
) -> None:
    """Scan images for secrets.

    TARGET is docker-archive:PATH, oci-archive:PATH, oci:DIR[:REF], docker-daemon:NAME[:TAG],
    docker://HOST/REPO[:TAG|@DIGEST], or a path to an archive or OCI layout (detected).
    """
    try:
        engine = Engine(load_rules(rule_paths), gate=gate)
    except ImportError:
        _fail("--gate hyperscan: the hyperscan package is not installed (pip install 'layerleak[accel]')")
        sys.exit(EXIT_ERROR)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    if from_file == "-" and password_stdin:
        _fail("--from-file - and --password-stdin both read stdin: put the targets in a file")
        sys.exit(EXIT_ERROR)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        targets = (*targets, *(read_targets(from_file) if from_file else ()))
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    if not targets:
        _fail("name at least one TARGET, or --from-file FILE")
        sys.exit(EXIT_ERROR)
    options = TargetOptions(
        scan=ScanOptions(show_secrets=show_secrets, platform=platform),
        source=SourceOptions(username=username, password=password, insecure=insecure, platform=platform),
        jobs=jobs or default_jobs(),
        min_confidence=Confidence.parse(min_confidence),
    )
    try:
        cache = None if no_cache else LayerCache.open_default()
        recorder = ScanRecorder(db_url, engine.ruleset) if db_url else None
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    results: list[TargetResult] = []
    try:
        with layer_progress(not no_progress) as progress:
            for result in scan_targets(targets, engine, options, cache, progress):
                for fatal, line in issue_lines(result):
                    if fatal:
                        _fail(line)
                    else:
                        click.echo(f"layerleak: warning: {line}", err=True)
                if recorder is not None:
                    recorder.record(result)
                results.append(result)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    finally:
        if cache is not None:
            cache.close()
        if recorder is not None:
            recorder.close()
    report = ScanReport(targets=tuple(results), ruleset=engine.ruleset, secrets_shown=show_secrets)
    if fmt == "json":
        text = render_json(report)
    else:
        color = output is None and sys.stdout.isatty()
        text = render_table(report, _styler if color else _plain)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
            sys.exit(EXIT_ERROR)
    else:
        click.echo(text, nl=False)
    sys.exit(exit_code(report, parse_fail_on(fail_on)))


def _plain(text: str, _style: str) -> str:
    return text


def _styler(text: str, style: str) -> str:
    if style == "bold":
        return click.style(text, bold=True)
    return click.style(text, fg=style) if style else text


@main.command("rules")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path))
def list_rules(rule_paths: tuple[Path, ...]) -> None:
    """List the rules in use (built-in plus --rules)."""
    try:
        rules = load_rules(rule_paths)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    for rule in sorted(rules, key=lambda r: r.id):
        click.echo(f"{rule.id:<40} {str(rule.severity):<9} {rule.title}")
    click.echo(f"{len(rules)} rules")


def _register_fleet() -> None:
    from layerleak.cli_fleet import db, registry

    main.add_command(registry)
    main.add_command(db)


_register_fleet()
