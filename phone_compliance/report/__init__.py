"""The compliance report rendered: charts (matplotlib) and one self-contained HTML page, from
plain Python values (the aggregates `transforms/report.py` computes). No Spark, no Dagster."""
