# Identities of the Dagster containers (ECS tasks). With the default run launcher, runs execute
# inside the code-location container, so it is the only one that touches data: it lists and reads
# the landing bucket (the S3 sensor) and reads the lakehouse (the decision index is built from
# Gold). The webserver and the daemon need no AWS permissions and get no task role.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only tasks of this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "code_location" {
  name                 = "${local.name}-dagster-code-location"
  description          = "Dagster code location of ${local.name}: list/read landing, read the lakehouse prefix."
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "code_location" {
  statement {
    sid       = "LocateBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.landing.arn, aws_s3_bucket.lakehouse.arn]
  }

  statement {
    sid       = "ListLanding"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.landing.arn]
  }

  statement {
    sid       = "ReadLanding"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.landing.arn}/*"]
  }

  statement {
    sid       = "ListLakehousePrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lakehouse.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.lakehouse_prefix, "${local.lakehouse_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadLakehousePrefix"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.lakehouse.arn}/${local.lakehouse_prefix}/*"]
  }

  statement {
    sid       = "DecryptDataThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.aws_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "code_location" {
  name   = "landing-read-lakehouse-read"
  role   = aws_iam_role.code_location.id
  policy = data.aws_iam_policy_document.code_location.json
}

# The task execution role is ECS's own identity while starting a container: pull the image, ship
# logs, and resolve the secrets injected as environment variables. The application never holds it.
resource "aws_iam_role" "task_execution" {
  name                 = "${local.name}-dagster-task-execution"
  description          = "ECS task execution role of ${local.name}: image pull, logs, the Dagster secrets."
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "task_execution" {
  # GetAuthorizationToken has no resource-level permissions: "*" is the only valid resource.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PullTheImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.dagster.arn]
  }

  statement {
    sid       = "ShipContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.dagster.arn}:*"]
  }

  statement {
    sid     = "ResolveDagsterSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.databricks_token.arn,
      aws_secretsmanager_secret.dagster_postgres_password.arn,
    ]
  }

  statement {
    sid       = "DecryptSecretsAndImage"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.ops.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "secretsmanager.${var.aws_region}.amazonaws.com",
        "ecr.${var.aws_region}.amazonaws.com",
      ]
    }
  }
}

resource "aws_iam_role_policy" "task_execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.task_execution.id
  policy = data.aws_iam_policy_document.task_execution.json
}
