# Secret containers for the Dagster side. Terraform creates the containers only; the values come
# from elsewhere so they never sit in this stack's code or state:
#   databricks-token: written by the databricks stack (a token of the pipeline's service principal);
#   dagster-postgres-password: put by the operator, or by whatever manages the database.
# ECS injects both into the containers as environment variables (see ../../README.md).

resource "aws_secretsmanager_secret" "databricks_token" {
  #checkov:skip=CKV2_AWS_57:Rotation is done by the databricks stack: its service-principal token has a fixed lifetime and a re-apply issues a new one and writes it here. A Lambda rotator could not mint a Databricks token.
  name                    = "${var.project}/${var.environment}/databricks-token"
  description             = "Databricks token the Dagster code location uses to submit job-cluster runs."
  kms_key_id              = aws_kms_key.ops.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "dagster_postgres_password" {
  #checkov:skip=CKV2_AWS_57:The database is not managed by this stack, so neither is its password rotation; rotate it where the database lives (for RDS, its managed master-user secret) and copy it here.
  name                    = "${var.project}/${var.environment}/dagster-postgres-password"
  description             = "Password of the Dagster run/event storage database user (DAGSTER_PG_PASSWORD)."
  kms_key_id              = aws_kms_key.ops.arn
  recovery_window_in_days = 30
}
