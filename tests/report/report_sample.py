"""One hand-made report with every kind of finding, for the golden files of every format."""

from __future__ import annotations

from layerleak.detect.rules import Rule
from layerleak.models import (
    Confidence,
    Finding,
    ImageResult,
    LayerSummary,
    Location,
    ScanIssue,
    ScanReport,
    Severity,
    SourceKind,
    Status,
    TargetResult,
    Validity,
)

DIGEST = "sha256:" + "ab" * 32
IMAGE_ID = "sha256:" + "ef" * 32
TARGET = "docker-archive:leaky.tar"
# A fake secret that a report must never show: the findings carry only its redacted form.
PLAIN = "hunter2-plaintext-never-shown"
HOSTILE_PATH = "/srv/\x1b]0;pwned\x07/\x1b[2Jkeys.env"
LONG_DIR = "/opt/" + "/".join(f"very-long-directory-{i}" for i in range(6))

STEPS = (
    "/bin/sh -c #(nop) COPY file:1234567890abcdef1234567890abcdef in /root/.aws/credentials",
    "|1 DB_PASSWORD=hu******** (14 chars) /bin/sh -c rm /root/.aws/credentials",
    "/bin/sh -c #(nop) ADD dir:" + "9f" * 32 + " in /opt/app/config/production/settings/",
)


def finding(rule_id: str, title: str, severity: Severity, location: Location, fp: str, redacted: str,
            confidence: Confidence = Confidence.HIGH, others: tuple[Location, ...] = (),
            validity: Validity | None = None) -> Finding:
    return Finding(
        rule_id=rule_id, title=title, severity=severity, confidence=confidence, target=TARGET,
        image="leaky:latest", image_id=IMAGE_ID, location=location, fingerprint=fp, redacted=redacted,
        other_locations=others, validity=validity,
    )


def sample_report() -> ScanReport:
    layers = (
        LayerSummary(0, DIGEST, None, None, STEPS[0], 4096, 3),
        LayerSummary(1, "sha256:" + "cd" * 32, None, None, STEPS[1], 1024, 0),
        LayerSummary(2, "sha256:" + "12" * 32, None, None, STEPS[2], 2048, 2),
    )
    aws = finding(
        "aws-access-key-id", "AWS access key ID", Severity.HIGH,
        Location(source=SourceKind.LAYER, layer_index=0, layer_digest=DIGEST, created_by=STEPS[0],
                 path="/root/.aws/credentials", line=2, status=Status.DELETED, removed_in_layer=1),
        "0123456789abcdef0123456789abcdef", "AKIA******** (20 chars)",
        others=(Location(source=SourceKind.LAYER, layer_index=2, layer_digest="sha256:" + "12" * 32,
                         created_by=STEPS[2], path="/root/.aws/credentials", line=4, status=Status.PRESENT),),
        validity=Validity("parsed", (("account", "123456789012"), ("key_type", "long-term"))),
    )
    pem = finding(
        "private-key", "Private key", Severity.CRITICAL,
        Location(source=SourceKind.LAYER, layer_index=2, layer_digest=layers[2].digest, created_by=STEPS[2],
                 path=f"{LONG_DIR}/server-private-key.pem", line=1, status=Status.PRESENT),
        "11112222333344445555666677778888", "[RSA PRIVATE KEY] ******** (1679 chars)",
    )
    hostile = finding(
        "generic-password", "Generic secret assignment", Severity.MEDIUM,
        Location(source=SourceKind.LAYER, layer_index=2, layer_digest=layers[2].digest, created_by=STEPS[2],
                 path=HOSTILE_PATH, line=7, status=Status.OVERWRITTEN, removed_in_layer=2),
        "99998888777766665555444433332222", "pa\x1b[3******** (12 chars)", Confidence.MEDIUM,
    )
    env = finding(
        "generic-password", "Generic secret assignment", Severity.MEDIUM,
        Location(source=SourceKind.CONFIG, key="API_TOKEN"),
        "fedcba9876543210fedcba9876543210", "Zx8#******** (16 chars)", Confidence.MEDIUM,
    )
    history = finding(
        "generic-password", "Generic secret assignment", Severity.MEDIUM,
        Location(source=SourceKind.HISTORY, key="history[1]", created_by=STEPS[1]),
        "aaaabbbbccccddddeeeeffff00001111", "hu******** (14 chars)",
    )
    image = ImageResult(
        target=TARGET,
        image="leaky:latest",
        image_id=IMAGE_ID,
        platform="linux/amd64",
        layers=layers,
        bytes_scanned=7168,
        errors=(ScanIssue("layer is truncated (after 1024 uncompressed bytes)", 1, layers[1].digest),),
        findings=(aws, pem, hostile, env, history),
    )
    return ScanReport(
        targets=(
            TargetResult(TARGET, (image,)),
            TargetResult("missing.tar", error="missing.tar: no such file or directory"),
        ),
        ruleset="0011223344556677",
    )


SAMPLE_RULES = {
    "aws-access-key-id": Rule(
        id="aws-access-key-id", title="AWS access key ID", severity=Severity.HIGH, keywords=("akia",),
        regex="(?P<secret>AKIA[0-9A-Z]{16})",
        description="An AWS IAM access key ID; with its secret key it signs API requests.",
        references=("https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html",),
    ),
}
