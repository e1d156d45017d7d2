# The image repository and the log group of the Dagster containers (code location, daemon,
# webserver). The ECS cluster, services and the PostgreSQL database are left to the platform
# that runs them; ../../docker/docker-compose.yaml shows the wiring.

resource "aws_ecr_repository" "dagster" {
  name                 = "${var.project}/dagster"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ops.arn
  }
}

resource "aws_ecr_lifecycle_policy" "dagster" {
  repository = aws_ecr_repository.dagster.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the last 30 images; older ones can no longer be rolled back to in practice."
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 30
        }
        action = {
          type = "expire"
        }
      },
    ]
  })
}

resource "aws_cloudwatch_log_group" "dagster" {
  name              = "/${var.project}/${var.environment}/dagster"
  retention_in_days = var.container_log_retention_days
  kms_key_id        = aws_kms_key.ops.arn
}
