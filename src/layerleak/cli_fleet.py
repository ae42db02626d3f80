"""The fleet commands: ``layerleak registry`` (a whole registry as one resumable job) and
``layerleak db`` (what the results database knows). Parse, call, render, exit: the logic lives
in scan/fleet.py, sources/catalog.py and store/results/."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from layerleak.detect.engine import Engine
from layerleak.detect.gate import GATES
from layerleak.detect.rules import load_rules
from layerleak.errors import LayerleakError
from layerleak.findings.policy import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
from layerleak.models import Confidence
from layerleak.report import fleet as render
from layerleak.report.fleet_progress import fleet_progress
from layerleak.scan.fleet import FleetOptions, FleetSummary, run_fleet
from layerleak.scan.runners import DaskRunner, LazyRunner, PoolRunner, Runner
from layerleak.sources.catalog import Catalog, CatalogOptions, TagPolicy
from layerleak.sources.interface import SourceOptions
from layerleak.store.cache import default_dir
from layerleak.store.results.db import STATUSES, ResultsDB

T = TypeVar("T")

DB_HELP = "Results database: a SQLite file PATH or postgresql://USER@HOST/DB  [default: the user data dir]."


def _fail(message: str) -> None:
    click.echo(f"layerleak: error: {render.safe(message)}", err=True)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
        sys.exit(EXIT_ERROR)


def _base_layers(bases: tuple[str, ...], host: str, source: SourceOptions) -> frozenset[str]:
    """``--base``: a target as ``scan`` takes it, or REPO[:TAG] in the registry being walked."""
    from layerleak.sources.targets import TRANSPORTS, open_target

    digests: set[str] = set()
    for base in bases:
        target = base if base.split(":", 1)[0] in TRANSPORTS else f"docker://{host}/{base}"
        with open_target(target, source) as image_source:
            for image in image_source.images():
                digests.update(d for layer in image.layers for d in (layer.digest, layer.blob_digest) if d)
    return frozenset(digests)


@click.command("registry")
@click.argument("host", metavar="HOST[:PORT]")
@click.option("--repo", "repos", multiple=True, metavar="GLOB",
              help="Only repositories matching GLOB; repeatable.")
@click.option("--tags", default="latest", show_default=True, metavar="latest|all|N",
              help="Tags per repository: latest, all, or N (latest first, then newest name first).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Only this platform of each index.")
@click.option("--db", "db_url", metavar="URL", help=DB_HELP)
@click.option("--dask", "dask_address", metavar="local|tcp://ADDR",
              help="Scan layers on Dask: a LocalCluster of -j workers, or an existing scheduler.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Layers scanned at once (processes, or LocalCluster workers)  [default: CPUs, at most 8].")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and do not verify TLS certificates.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), metavar="PATH",
              help="Also trust the CA certificates in this PEM file.")
@click.option("--cert-dir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Trust the *.crt CAs in DIR, present its *.cert/*.key (as certs.d/HOST).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the summary to FILE instead of stdout.")
@click.option("--username", metavar="USER", help="Registry user (else env LAYERLEAK_USERNAME).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--max-requests", type=click.IntRange(min=1), default=None,
              help="Request budget for enumeration (catalog, tags, manifests, configs); blobs not counted.")
@click.option("--base", "bases", multiple=True, metavar="IMAGE",
              help="Mark findings in layers shared with this base image as inherited; repeatable.")
@click.option("--common-repos", type=click.IntRange(min=0), default=None, metavar="N",
              help="Mark findings in layers seen in more than N other repositories as inherited.")
@click.option("--min-confidence", type=click.Choice(["low", "medium", "high"], case_sensitive=False),
              default="medium", show_default=True)
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True, path_type=Path))
@click.option("--gate", type=click.Choice(GATES), default="auto", show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress display on stderr.")
def registry(
    host: str,
    repos: tuple[str, ...],
    tags: str,
    platform: str | None,
    db_url: str | None,
    dask_address: str | None,
    jobs: int | None,
    insecure: bool,
    ca_file: str | None,
    cert_dir: str | None,
    fmt: str,
    output: Path | None,
    username: str | None,
    password_stdin: bool,
    max_requests: int | None,
    bases: tuple[str, ...],
    common_repos: int | None,
    min_confidence: str,
    rule_paths: tuple[Path, ...],
    gate: str,
    no_progress: bool,
) -> None:
    """Scan every image of a registry: each unique layer once, results into the database.

    Rerun the same command to resume a job that was stopped: what the database holds is not
    downloaded again. Exit 2 if anything could not be scanned, else 1 if anything was found.
    """
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        engine = Engine(load_rules(rule_paths, cache_dir=default_dir()), gate=gate)
        catalog = Catalog(
            host,
            CatalogOptions(repos, TagPolicy.parse(tags), platform, insecure, max_requests, ca_file, cert_dir),
            username,
            password,
        )
        source = SourceOptions(
            username=username, password=password, insecure=insecure, ca_file=ca_file, cert_dir=cert_dir
        )
        base_layers = _base_layers(bases, catalog.host, source)
        db = ResultsDB(db_url)
    except ImportError:
        _fail("--gate hyperscan: the hyperscan package is not installed (pip install 'layerleak[accel]')")
        sys.exit(EXIT_ERROR)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    options = FleetOptions(
        min_confidence=Confidence.parse(min_confidence),
        insecure=insecure,
        ca_file=ca_file,
        cert_dir=cert_dir,
        creds=catalog.creds,
        base_layers=base_layers,
        common_repos=common_repos,
    )
    workers = jobs or _default_jobs()
    # made when the first layer is to be scanned: a rerun with nothing new starts no processes
    # and no Dask cluster (an unreachable scheduler is then the job's error, as the scan's)
    runner: Runner = LazyRunner(
        (lambda: DaskRunner(engine, dask_address, workers))
        if dask_address
        else (lambda: PoolRunner(engine, workers))
    )
    try:
        # one query says which images a finished run recorded complete: those are not even read
        recorded = db.complete_images(catalog.host, engine.ruleset, scanner())
        images_of: dict[str, int] = {}  # a tag recorded as one image (not several platforms)
        for name, _digest in recorded:
            images_of[name] = images_of.get(name, 0) + 1
        with fleet_progress(not no_progress) as progress:
            summary = run_fleet(
                catalog.walk(
                    lambda name, digest: (name, digest) in recorded, lambda name: images_of.get(name) == 1
                ),
                catalog.host,
                engine,
                db,
                runner,
                options,
                progress,
                on_error=_fail,
                base_url=lambda: catalog.base_url,
                recorded=recorded,
            )
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    finally:
        runner.close()
        catalog.close()
        db.close()
    summary.repositories = max(summary.repositories, catalog.repositories)
    _write(render.summary_json(summary) if fmt == "json" else render.summary_table(summary), output)
    sys.exit(_exit(summary))


def _default_jobs() -> int:
    from layerleak.scan.layers import default_jobs

    return default_jobs()


def scanner() -> str:
    from layerleak.store.cache import scanner_version

    return scanner_version()


def _exit(summary: FleetSummary) -> int:
    if summary.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if summary.findings else EXIT_CLEAN


@click.group("db")
def db() -> None:
    """Query the results database (what scans with --db and registry jobs recorded)."""


def _query(db_url: str | None, ask: Callable[[ResultsDB], T]) -> T:
    """One read-only question to the results database; any failure is one line and exit 2."""
    try:
        store = ResultsDB(db_url, write=False)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    try:
        return ask(store)
    except LayerleakError as exc:
        _fail(exc.diagnostics())
        sys.exit(EXIT_ERROR)
    finally:
        store.close()


_DB_OPTION = click.option("--db", "db_url", metavar="URL", help=DB_HELP)
_FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                              show_default=True)


@db.command("findings")
@_DB_OPTION
@click.option("--image", metavar="REF", help="Only this image: HOST/REPO:TAG, HOST/REPO, a digest.")
@click.option("--status", type=click.Choice(STATUSES), help="Only file findings with this status.")
@_FORMAT_OPTION
def db_findings(db_url: str | None, image: str | None, status: str | None, fmt: str) -> None:
    """Findings, one per image and secret, as `scan --format json` shows them."""
    found = _query(db_url, lambda store: store.findings(image, status))
    click.echo(render.findings_json(found) if fmt == "json" else render.findings_table(found), nl=False)


@db.command("where")
@click.argument("fingerprint")
@_DB_OPTION
@_FORMAT_OPTION
def db_where(fingerprint: str, db_url: str | None, fmt: str) -> None:
    """Every recorded image and layer that holds the secret with this FINGERPRINT."""
    answer = _query(db_url, lambda store: store.where(fingerprint.strip()))
    click.echo(render.where_json(answer) if fmt == "json" else render.where_table(answer), nl=False)


@db.command("related")
@_DB_OPTION
@_FORMAT_OPTION
def db_related(db_url: str | None, fmt: str) -> None:
    """Leaked private keys and the recorded certificates and public keys of the same key pair,
    across every recorded image."""
    related = _query(db_url, lambda store: store.related())
    click.echo(render.related_json(related) if fmt == "json" else render.related_table(related), nl=False)


@db.command("images")
@_DB_OPTION
@_FORMAT_OPTION
def db_images(db_url: str | None, fmt: str) -> None:
    """Recorded images: layer counts and finding counts by status."""
    images = _query(db_url, lambda store: store.images())
    click.echo(render.images_json(images) if fmt == "json" else render.images_table(images), nl=False)
