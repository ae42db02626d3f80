"""The command line: parse, call the scanner, render, exit. No logic worth testing lives here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

# Only what parsing the command line needs is imported here: `layerleak --version` and `--help`
# start in a few tens of milliseconds. The scanner (rules, engine, layer walk, sources, cache,
# renderers) is imported by the command that runs it (tests/test_startup.py checks the list).
from layerleak import __version__
from layerleak.detect.gate import GATES
from layerleak.errors import LayerleakError, UsageError
from layerleak.findings.policy import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, exit_code, parse_fail_on
from layerleak.findings.suppress import Baseline, Suppressor
from layerleak.memory import return_large_buffers
from layerleak.models import Confidence, ScanReport, TargetResult
from layerleak.report.atomic import AtomicFile, write_atomic
from layerleak.report.escape import escape
from layerleak.report.formats import FORMATS, renderer
from layerleak.report.interface import RenderOptions
from layerleak.settings import Settings, find_config, load_settings
from layerleak.sources import platforms
from layerleak.sources.interface import SourceOptions

if TYPE_CHECKING:
    from layerleak.detect.rules import Rule
    from layerleak.report.interface import Renderer
    from layerleak.store.cache import LayerStore

SEVERITIES = ["critical", "high", "medium", "low", "none"]


def _fail(message: str) -> None:
    click.echo(f"layerleak: error: {escape(message)}", err=True)


def _check_platform(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            platforms.parse(value)
        except LayerleakError as exc:
            raise click.BadParameter(exc.message) from None
    return value


EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a command stopped by Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: raised in the main thread wherever it is, so every ``finally``
    runs (worker processes are stopped, a partial -o file is removed), then one line and
    128 + the signal's number. Not a KeyboardInterrupt: click would turn that into exit 1."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


class _Main(click.Group):
    # Commands whose modules are heavy (the fleet: the results database, Dask): imported only
    # when one of them runs, so `layerleak --version` and `scan` start without them.
    LAZY = {"registry": "layerleak.cli_fleet", "db": "layerleak.cli_fleet"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.LAZY.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            import importlib

            command = getattr(importlib.import_module(module), cmd_name)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        handlers: dict[signal.Signals, Any] = {}
        try:
            try:
                for wanted in (signal.SIGINT, signal.SIGTERM):
                    handlers[wanted] = signal.signal(wanted, _stop)
            except ValueError:  # not the main thread (an embedding caller): leave signals alone
                pass
            return super().main(*args, **kwargs)
        except Stopped as stop:
            for quiet in handlers:  # a second Ctrl-C while we say goodbye changes nothing
                signal.signal(quiet, signal.SIG_IGN)
            word = "interrupted" if stop.signum == signal.SIGINT else "terminated"
            click.echo(f"layerleak: {word}", err=True)
            sys.exit(EXIT_INTERRUPTED if stop.signum == signal.SIGINT else EXIT_TERMINATED)
        finally:
            for restored, handler in handlers.items():
                signal.signal(restored, handler)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerleak")
def main() -> None:
    """Find secrets baked into container image layers."""
    return_large_buffers()


def _ca_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--ca-file and --cert-dir, for every command that may read a registry."""
    command = click.option("--cert-dir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
                           help="Registries: trust the *.crt CAs in DIR, present its *.cert/*.key "
                                "(as certs.d/HOST).")(command)
    return click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), metavar="PATH",
                        help="Registries: also trust the CA certificates in this PEM file.")(command)


@main.command()
@click.argument("targets", nargs=-1, metavar="TARGET...")
@click.option("--from-file", "from_file", metavar="FILE",
              help="Also scan the targets listed in FILE, one a line (# comments); - reads stdin.")
@click.option("--db", "db_url", metavar="URL",
              help="Also record the results in this database (SQLite PATH or postgresql://...).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="Output format.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colours in the table (auto: on a terminal, unless NO_COLOR is set).")
@click.option("--exit-zero", is_flag=True,
              help="Exit 0 even with findings (report-only jobs); errors still exit 2.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the report to FILE instead of stdout.")
@click.option("--show-secrets", is_flag=True,
              help="Put whole secrets in the report (for responders who must rotate them).")
@click.option("--fail-on", type=click.Choice(SEVERITIES, case_sensitive=False), default="low",
              show_default=True, help="Exit 1 when a finding is at or above this severity.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", callback=_check_platform,
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
@_ca_options
@click.option("--no-cache", is_flag=True,
              help="Neither read nor write the layer cache (env LAYERLEAK_CACHE_DIR moves it).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that scan layers at once  [default: the CPUs available, at most 8].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Stop a target that takes longer than this (it reports an error; the next one starts).")
@click.option("--gate", type=click.Choice(GATES), default="auto", show_default=True,
              help="Keyword gate: hyperscan (when installed), re2, or none (the automaton reads every "
                   "byte: slow, for comparisons). Findings are the same with each.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Leave out findings already in this JSON report (`layerleak baseline`); "
                   "they are counted, and do not change the exit code.")
@click.option("--enable-rule", "enable_rules", multiple=True, metavar="ID",
              help="Turn on a rule that .layerleak.toml disables; repeatable, globs allowed.")
@click.option("--disable-rule", "disable_rules", multiple=True, metavar="ID",
              help="Turn a rule off; repeatable, globs allowed (generic-*).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), is_eager=True,
              expose_value=False, callback=lambda ctx, _p, v: _load_config(ctx, v),
              help="Settings file  [default: ./.layerleak.toml when present].")
@click.pass_context
def scan(
    ctx: click.Context,
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
    ca_file: str | None,
    cert_dir: str | None,
    no_cache: bool,
    jobs: int | None,
    timeout: float | None,
    gate: str,
    color: str,
    exit_zero: bool,
    baseline: Path | None,
    enable_rules: tuple[str, ...],
    disable_rules: tuple[str, ...],
) -> None:
    """Scan images for secrets.

    TARGET is docker-archive:PATH, oci-archive:PATH, oci:DIR[:REF], docker-daemon:NAME[:TAG],
    docker://HOST/REPO[:TAG|@DIGEST], or a path to an archive or OCI layout (detected).
    """
    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules
    from layerleak.detect.select import select_rules
    from layerleak.report.progress import layer_progress
    from layerleak.scan import ScanOptions, TargetOptions, issue_lines, scan_targets
    from layerleak.scan.layers import default_jobs
    from layerleak.sources.targets import reads_stdin
    from layerleak.store.cache import LayerCache, default_dir

    settings: Settings = ctx.meta.get(SETTINGS_KEY, Settings())
    try:
        rules_cache = None if no_cache else default_dir()  # the parsed built-in rule files
        rules = select_rules(load_rules(rule_paths, warn=_warn, cache_dir=rules_cache), disable_rules,
                             enable_rules,
                             config_disable=settings.disable_rules, config_enable=settings.enable_rules)
        suppressor = Suppressor(Baseline.load(baseline) if baseline else None, settings.ignores)
        engine = Engine(rules, gate=gate)
    except ImportError:
        _fail("--gate hyperscan: the hyperscan package is not installed (pip install 'layerleak[accel]')")
        sys.exit(EXIT_ERROR)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    if password_stdin and any(reads_stdin(t) for t in targets):
        _fail("--password-stdin and a target read from stdin cannot share it: use env LAYERLEAK_PASSWORD")
        sys.exit(EXIT_ERROR)
    if from_file == "-" and password_stdin:
        _fail("--from-file - and --password-stdin both read stdin: put the targets in a file")
        sys.exit(EXIT_ERROR)
    if from_file == "-" and any(reads_stdin(t) for t in targets):
        _fail("--from-file - and a target read from stdin cannot share it: put the targets in a file")
        sys.exit(EXIT_ERROR)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        if from_file:
            from layerleak.store.results.record import read_targets

            targets = (*targets, *read_targets(from_file))
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    if not targets:
        _fail("name at least one TARGET, or --from-file FILE")
        sys.exit(EXIT_ERROR)
    options = TargetOptions(
        scan=ScanOptions(show_secrets=show_secrets, platform=platform),
        source=SourceOptions(username=username, password=password, insecure=insecure,
                             ca_file=ca_file, cert_dir=cert_dir, platform=platform),
        jobs=jobs or default_jobs(),
        min_confidence=Confidence.parse(min_confidence),
        timeout=timeout,
    )
    try:
        recorder = None
        if db_url:
            from layerleak.store.results.record import ScanRecorder

            recorder = ScanRecorder(db_url, engine.ruleset)
        # with --db, the layer cache is a view of the results database (store/results/db.py)
        cache: LayerStore | None = None
        if not no_cache:
            cache = recorder.db if recorder is not None else LayerCache.open_default()
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    for note in suppressor.notes():
        click.echo(f"layerleak: warning: {note}", err=True)
    chosen = renderer(fmt)
    render_options = _render_options(output, color, {r.id: r for r in engine.rules})
    # A format of independent records (jsonl) is written as each target ends: a pipeline reads
    # the first image's findings while the next is scanned.
    stream, partial = _open_output(output) if chosen.streams else (None, None)
    results: list[TargetResult] = []
    try:
        with layer_progress(not no_progress) as progress:
            for result in scan_targets(targets, engine, options, cache, progress):
                for fatal, line in issue_lines(result):
                    if fatal:
                        _fail(line)
                    else:
                        click.echo(f"layerleak: warning: {escape(line)}", err=True)
                kept = suppressor.apply(result)
                if recorder is not None:
                    recorder.record(kept)
                results.append(kept)
                if stream is not None:
                    chosen.write_target(kept, render_options, stream)
                    stream.flush()
    except LayerleakError as exc:  # the results database failed: one line, no half-written -o file
        if partial is not None:
            partial.discard()
            partial = None
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    except BaseException:  # interrupted, or failed: no half-written -o file is left behind
        if partial is not None:
            partial.discard()
            partial = None
        raise
    finally:
        if isinstance(cache, LayerCache):
            cache.close()
        if recorder is not None:
            recorder.close()
        if partial is not None:
            _commit(partial)
    report = ScanReport(targets=tuple(results), ruleset=engine.ruleset, secrets_shown=show_secrets)
    if stream is None:
        _emit(report, chosen, output, render_options)
    code = exit_code(report, parse_fail_on(fail_on))
    sys.exit(EXIT_CLEAN if exit_zero and code == EXIT_FINDINGS else code)


@main.command("baseline")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="The baseline file to write (a JSON report, secrets redacted).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", callback=_check_platform,
              help="Only this platform of a multi-platform image.")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or directory; repeatable.")
@click.option("--min-confidence", type=click.Choice(["low", "medium", "high"], case_sensitive=False),
              default="medium", show_default=True)
@click.option("--username", metavar="USER", help="Registry user name; pair with --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--insecure", is_flag=True, help="Registries: allow plain HTTP and unverified TLS.")
@_ca_options
@click.option("--no-cache", is_flag=True, help="Neither read nor write the layer cache.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), is_eager=True,
              expose_value=False, callback=lambda ctx, _p, v: _load_config(ctx, v, defaults=False),
              help="Settings file (its [rules] apply)  [default: ./.layerleak.toml when present].")
@click.pass_context
def baseline_command(ctx: click.Context, /, targets: tuple[str, ...], **options: Any) -> None:
    """Record the findings of TARGET now, so that `scan --baseline FILE` reports only new ones.

    The file is a JSON report: a finding is matched by its fingerprint and path, never by line
    or layer digest, so a rebuilt image matches its baseline.
    """
    ctx.invoke(scan, targets=targets, fmt="json", fail_on="none", show_secrets=False, baseline=None,
               **options)


SETTINGS_KEY = "layerleak.settings"


def _load_config(ctx: click.Context, explicit: Path | None, defaults: bool = True) -> None:
    """Read .layerleak.toml (or --config) before any other option: its [scan] table becomes the
    defaults of the command's options (the command line still wins)."""
    try:
        settings = load_settings(find_config(explicit))
        if defaults:
            ctx.default_map = {**(ctx.default_map or {}), **_option_defaults(ctx.command, settings)}
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    ctx.meta[SETTINGS_KEY] = settings


def _option_defaults(command: click.Command, settings: Settings) -> dict[str, Any]:
    """[scan] keys (option long names: ``fail-on``) as click parameter names, paths relative to
    the file; a key that is no option of the command is an error naming the file and the key."""
    by_name: dict[str, click.Parameter] = {}
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and param.name not in ("config_path", "password_stdin"):
                by_name[opt[2:]] = param
    out: dict[str, Any] = {}
    for key, value in settings.scan.items():
        found = by_name.get(key)
        if found is None or found.name is None:
            raise UsageError(f"{settings.path}: [scan]: unknown key {key!r} (not a `layerleak "
                             f"{command.name}` option)")
        if isinstance(found.type, click.Path) and settings.path is not None:
            base = settings.path.parent
            value = [str(base / v) for v in value] if isinstance(value, list) else str(base / str(value))
        out[found.name] = value
    return out


def _terminal_width(to_terminal: bool) -> int | None:
    """COLUMNS when set, else the terminal's width; None (never cut) for a file or a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size().columns if to_terminal else None


def _use_color(choice: str, to_terminal: bool) -> bool:
    if choice != "auto":
        return choice == "always"
    return to_terminal and not os.environ.get("NO_COLOR")


def _render_options(output: Path | None, color: str, rules: dict[str, Rule]) -> RenderOptions:
    to_terminal = output is None and sys.stdout.isatty()
    return RenderOptions(
        rules=rules,
        width=_terminal_width(to_terminal) if output is None else None,
        color=_use_color(color, to_terminal),
        warn=lambda line: click.echo(f"layerleak: warning: {line}", err=True),
    )


def _open_output(output: Path | None) -> tuple[TextIO, AtomicFile | None]:
    """stdout, or the -o file being written (it replaces FILE when complete: report/atomic.py)."""
    if output is None:
        return sys.stdout, None
    try:
        partial = AtomicFile(output)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
        sys.exit(EXIT_ERROR)
    return partial.file, partial


def _commit(partial: AtomicFile) -> None:
    try:
        partial.commit()
    except OSError as exc:
        _fail(f"cannot write {partial.path}: {exc.strerror}")
        sys.exit(EXIT_ERROR)


def _emit(report: ScanReport, chosen: Renderer, output: Path | None, options: RenderOptions) -> None:
    text = chosen.render(report, options)
    if output is not None:
        try:
            write_atomic(output, text)
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
            sys.exit(EXIT_ERROR)
    else:
        click.echo(text, nl=False, color=options.color)  # click strips colours in a pipe unless told


def _warn(message: str) -> None:
    click.echo(f"layerleak: warning: {message}", err=True)


@main.group("rules", invoke_without_command=True)
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or directory (our TOML or gitleaks TOML); repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def rules_group(ctx: click.Context, rule_paths: tuple[Path, ...], fmt: str) -> None:
    """List the rules in use (built-in plus --rules); `rules show ID` for one in full."""
    from layerleak.detect.rules import ruleset_hash
    from layerleak.report.rules import rules_json, rules_table

    ctx.obj = rule_paths
    if ctx.invoked_subcommand is not None:
        return
    rules = _rules_or_exit(rule_paths)
    click.echo(rules_json(rules, ruleset_hash(rules)) if fmt == "json" else rules_table(rules), nl=False)


@rules_group.command("show")
@click.argument("rule_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def rules_show(rule_paths: tuple[Path, ...], rule_id: str, fmt: str) -> None:
    """One rule: its regex, keywords, checks, examples and references."""
    from layerleak.report.rules import rule_detail, rule_dict

    rules = {r.id: r for r in _rules_or_exit(rule_paths)}
    rule = rules.get(rule_id)
    if rule is None:
        near = [r for r in sorted(rules) if rule_id.lower() in r]
        hint = f" (did you mean {', '.join(near[:5])}?)" if near else " (see `layerleak rules`)"
        _fail(f"no rule {escape(rule_id)!r}{hint}")
        sys.exit(EXIT_ERROR)
    text = json.dumps(rule_dict(rule), indent=2) + "\n" if fmt == "json" else rule_detail(rule)
    click.echo(text, nl=False)


def _rules_or_exit(rule_paths: tuple[Path, ...]) -> list[Rule]:
    from layerleak.detect.rules import load_rules

    try:
        return load_rules(rule_paths, warn=_warn)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)


@main.command("layers")
@click.argument("target", metavar="TARGET")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", callback=_check_platform,
              help="Only this platform of a multi-platform image.")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra rule file or directory; repeatable.")
@click.option("--min-confidence", type=click.Choice(["low", "medium", "high"], case_sensitive=False),
              default="medium", show_default=True, help="Count findings at or above this confidence.")
@click.option("--show-secrets", is_flag=True, help="Do not scrub secrets out of the build steps.")
@click.option("--username", metavar="USER", help="Registry user name; pair with --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--insecure", is_flag=True, help="Registries: allow plain HTTP and unverified TLS.")
@_ca_options
@click.option("--no-cache", is_flag=True, help="Neither read nor write the layer cache.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def layers_command(target: str, fmt: str, platform: str | None, rule_paths: tuple[Path, ...],
                   min_confidence: str, show_secrets: bool, username: str | None, password_stdin: bool,
                   insecure: bool, ca_file: str | None, cert_dir: str | None, no_cache: bool,
                   no_progress: bool) -> None:
    """The image's build, step by step: each layer's digest, size, step, files added, deleted
    and overwritten, and its findings by status; steps that made no layer in place."""
    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules
    from layerleak.report.layers import layers_json, layers_table
    from layerleak.report.progress import layer_progress
    from layerleak.scan import ScanOptions
    from layerleak.scan.layers import default_jobs
    from layerleak.scan.timeline import timelines
    from layerleak.sources.targets import open_target
    from layerleak.store.cache import LayerCache

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    source_options = SourceOptions(username=username, password=password, insecure=insecure,
                                   ca_file=ca_file, cert_dir=cert_dir, platform=platform)
    cache = None
    try:
        engine = Engine(load_rules(rule_paths))
        cache = None if no_cache else LayerCache.open_default()
        with layer_progress(not no_progress) as progress, open_target(target, source_options) as source:
            found = timelines(source, engine, ScanOptions(show_secrets=show_secrets, platform=platform),
                              progress, jobs=default_jobs(), cache=cache,
                              min_confidence=Confidence.parse(min_confidence))
    except LayerleakError as exc:
        message = exc.diagnostics()
        _fail(message if target in message else f"{target}: {message}")
        sys.exit(EXIT_ERROR)
    finally:
        if cache is not None:
            cache.close()
    to_terminal = sys.stdout.isatty()
    text = layers_json(target, found) if fmt == "json" else layers_table(found, _terminal_width(to_terminal))
    click.echo(text, nl=False)
    broken = any(e.fatal for t in found for e in t.result.errors)
    sys.exit(EXIT_ERROR if broken else EXIT_CLEAN)


@main.command("extract")
@click.argument("target", metavar="TARGET")
@click.argument("path", metavar="PATH")
@click.option("--layer", "layer_index", type=click.IntRange(min=0), required=True,
              help="The layer index (`layerleak layers TARGET` lists them).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to create (never overwritten; mode 0600).")
@click.option("--tar", "as_tar", is_flag=True, help="Write a tar of PATH as stored (needed for a directory).")
@click.option("--image", "image_name", metavar="NAME", help="The image, when TARGET holds several.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", callback=_check_platform,
              help="Only this platform of a multi-platform image.")
@click.option("--username", metavar="USER", help="Registry user name; pair with --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--insecure", is_flag=True, help="Registries: allow plain HTTP and unverified TLS.")
@_ca_options
def extract_command(target: str, path: str, layer_index: int, output: Path, as_tar: bool,
                    image_name: str | None, platform: str | None, username: str | None,
                    password_stdin: bool, insecure: bool, ca_file: str | None, cert_dir: str | None) -> None:
    """Write PATH exactly as layer N stores it, even if a later layer deleted it (evidence).

    Prints the sha256 of what was written and the layer's digests. Symbolic links are never
    followed; nothing is written but the -o file.
    """
    from layerleak.layers.extract import extract
    from layerleak.sources.targets import open_target

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    source_options = SourceOptions(username=username, password=password, insecure=insecure,
                                   ca_file=ca_file, cert_dir=cert_dir, platform=platform)

    try:
        done = extract(lambda: open_target(target, source_options), path, layer_index, output,
                       image_name=image_name, platform=platform, as_tar=as_tar)
    except LayerleakError as exc:
        message = exc.diagnostics()
        _fail(escape(message if target in message else f"{target}: {message}"))
        sys.exit(EXIT_ERROR)
    what = f"tar of {done.members} member{'s' if done.members != 1 else ''}" if done.as_tar else "file"
    via = f" (hard link {escape(done.via_link)})" if done.via_link else ""
    click.echo(f"sha256:{done.sha256}  {done.size} bytes  {what}  {escape(done.path)}{via}")
    click.echo(f"layer {done.layer_index}  diff_id {done.diff_id or '-'}  blob {done.blob_digest or '-'}")
    click.echo(f"image {escape(done.image)}  written to {escape(str(output))}")
