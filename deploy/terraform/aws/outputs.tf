output "landing_bucket" {
  description = "Landing bucket name: the S3 sensor's bucket (PHONE_COMPLIANCE_LANDING=s3://<this>/)."
  value       = aws_s3_bucket.landing.id
}

output "lakehouse_bucket" {
  description = "Lakehouse bucket name."
  value       = aws_s3_bucket.lakehouse.id
}

output "warehouse_uri" {
  description = "Value of PHONE_COMPLIANCE_WAREHOUSE: where Bronze, Silver and Gold live."
  value       = "s3://${aws_s3_bucket.lakehouse.id}/${local.lakehouse_prefix}"
}

output "log_bucket" {
  description = "Bucket receiving the S3 server access logs."
  value       = aws_s3_bucket.logs.id
}

output "data_kms_key_arn" {
  description = "ARN of the customer-managed key encrypting the landing and lakehouse buckets."
  value       = aws_kms_key.data.arn
}

output "cluster_instance_profile_arn" {
  description = "Instance profile of the Databricks job cluster; input `instance_profile_arn` of the databricks stack."
  value       = aws_iam_instance_profile.cluster.arn
}

output "cluster_role_arn" {
  description = "IAM role behind the cluster instance profile."
  value       = aws_iam_role.cluster.arn
}

output "code_location_task_role_arn" {
  description = "Task role of the Dagster code-location container."
  value       = aws_iam_role.code_location.arn
}

output "task_execution_role_arn" {
  description = "ECS task execution role shared by the Dagster containers."
  value       = aws_iam_role.task_execution.arn
}

output "databricks_token_secret_arn" {
  description = "Secrets Manager secret the databricks stack writes the pipeline token into; input `databricks_token_secret_arn` of that stack."
  value       = aws_secretsmanager_secret.databricks_token.arn
}

output "dagster_postgres_password_secret_arn" {
  description = "Secrets Manager secret holding DAGSTER_PG_PASSWORD."
  value       = aws_secretsmanager_secret.dagster_postgres_password.arn
}

output "ecr_repository_url" {
  description = "Where to push the Dagster image (deploy/docker/Dockerfile)."
  value       = aws_ecr_repository.dagster.repository_url
}

output "container_log_group" {
  description = "CloudWatch log group of the Dagster containers."
  value       = aws_cloudwatch_log_group.dagster.name
}
