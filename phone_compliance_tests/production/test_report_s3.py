"""The compliance report's page written to an S3 warehouse (moto's server), as production does."""

from __future__ import annotations

from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.report import publish_report
from phone_compliance_tests.production.conftest import s3_client


def test_the_report_page_is_one_object_under_the_s3_warehouse_replaced_whole(s3_lake):
    locations = Locations(s3_lake.settings)
    uri = publish_report(locations, "<html>first</html>")
    assert uri == f"s3://{s3_lake.bucket}/warehouse/reports/compliance.html"
    publish_report(locations, "<html>second</html>")
    assert s3_lake.keys("warehouse/reports/") == ["warehouse/reports/compliance.html"]
    page = s3_client().get_object(Bucket=s3_lake.bucket, Key="warehouse/reports/compliance.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert page["Body"].read() == b"<html>second</html>"
