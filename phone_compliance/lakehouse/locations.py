"""Where everything lives: the one owner of every location the project reads or writes.

Table URIs (`<warehouse>/<layer>/<name>`, s3:// spelled s3a:// for Spark), the same tables as
delta-rs reads them (with their storage options), the landing zone and its S3 client, the serving
index folder and the Dagster home. Everything is derived from one `Settings` value; pure Python
(no Spark, no Dagster), so the service and the sensors can use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from phone_compliance.settings import PROJECT_ROOT, Settings

SSN_KEY_FILE = "ssn_hash_key"
REPORT_PATH = "reports/compliance.html"


def is_remote(uri: str) -> bool:
    """True for object-store URIs (s3://, s3a://) rather than local folders."""
    return "://" in uri and not uri.startswith("file://")


def spark_uri(uri: str) -> str:
    """A URI as Spark's Hadoop file systems read it: S3 through s3a."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def local_path(uri: str) -> Path:
    """A local folder or file:// URI as a path."""
    return Path(urlparse(uri).path if uri.startswith("file://") else uri)


@dataclass(frozen=True)
class Locations:
    """Every location of one deployment."""

    settings: Settings

    @property
    def landing(self) -> str:
        """Where client files land: a folder or s3://bucket/prefix."""
        return self.settings.landing

    @property
    def warehouse(self) -> str:
        """The warehouse base URI as Spark reads it (no trailing slash)."""
        return spark_uri(self.settings.warehouse.rstrip("/"))

    def table(self, layer: str, name: str) -> str:
        """`<warehouse>/<layer>/<name>`, as Spark wants it."""
        return f"{self.warehouse}/{layer}/{name}"

    def table_of(self, path: tuple[str, ...] | list[str]) -> str:
        """The table of an asset key path, e.g. ("bronze", "file_ledger")."""
        *layers, name = path
        return self.table("/".join(layers), name)

    def delta_rs(self, uri: str) -> tuple[str, dict[str, str] | None]:
        """A table URI as delta-rs reads it, and its storage options (endpoint, region;
        credentials come from the AWS provider chain, as everywhere else)."""
        if not is_remote(uri):
            return str(local_path(uri)), None
        parsed = urlparse(uri)
        options = {}
        if self.settings.s3_endpoint:
            options["AWS_ENDPOINT_URL"] = self.settings.s3_endpoint
            options["AWS_ALLOW_HTTP"] = str(self.settings.s3_endpoint.startswith("http://")).lower()
        if self.settings.aws_region:
            options["AWS_REGION"] = self.settings.aws_region
        return f"s3://{parsed.netloc}{parsed.path}", options

    def s3_client(self):
        """A boto3 S3 client for the landing zone (credentials: the AWS provider chain)."""
        import boto3  # boto3 takes ~0.3 s to import; only S3 deployments pay it

        return boto3.client("s3", endpoint_url=self.settings.s3_endpoint)

    @property
    def index_dir(self) -> Path:
        """The serving index folder: PHONE_COMPLIANCE_INDEX, else beside a local warehouse, else
        (a remote warehouse) under the project's own `warehouse/`. Always local: the service
        memory-maps it."""
        if self.settings.index_dir:
            return Path(self.settings.index_dir)
        base = (
            PROJECT_ROOT / "warehouse"
            if is_remote(self.settings.warehouse)
            else local_path(self.settings.warehouse)
        )
        return base / "serving" / "decision_index"

    @property
    def report_uri(self) -> str:
        """The static compliance report, `<warehouse>/reports/compliance.html`: a local path, or
        s3://bucket/key for an S3 warehouse (written with the S3 client, not Spark)."""
        base = self.settings.warehouse.rstrip("/")
        if is_remote(base):
            return "s3://" + base.partition("://")[2] + "/" + REPORT_PATH
        return str(local_path(base) / REPORT_PATH)

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance folder (run history, and locally the SSN hash key)."""
        return Path(self.settings.dagster_home)

    @property
    def ssn_key_file(self) -> Path:
        """Where a local deployment keeps its generated SSN hash key."""
        return self.dagster_home / SSN_KEY_FILE
