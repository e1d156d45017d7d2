# Two customer-managed keys, both rotated yearly:
#   data: the landing and lakehouse buckets (SSE-KMS with S3 Bucket Keys);
#   ops:  the Dagster-side secrets, container logs and the image repository.
# Keeping them apart means a principal that may decrypt a secret cannot read the data, and the
# reverse.

data "aws_iam_policy_document" "data_key" {
  #checkov:skip=CKV_AWS_109:Key policy, not an identity policy: "Resource: *" in a key policy means this key only. The account-root statement is the AWS-documented default that delegates key administration to IAM; without it the key could not be managed.
  #checkov:skip=CKV_AWS_111:Key policy, not an identity policy: "Resource: *" means this key only; every service statement is bounded by a ViaService or encryption-context condition.
  #checkov:skip=CKV_AWS_356:Key policy, not an identity policy: "*" is the only valid resource in a key policy and denotes this key.
  # The account root statement is what lets IAM policies grant use of the key at all; without it
  # the key would be unmanageable. "*" in a key policy means "this key".
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.landing_writer_principal_arns) > 0 ? [1] : []

    content {
      sid       = "LandingWritersEncryptThroughS3"
      actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.landing_writer_principal_arns
      }

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.aws_region}.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:s3:arn"
        values   = ["arn:${local.partition}:s3:::${var.landing_bucket_name}"]
      }
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${local.name}: landing and lakehouse buckets"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.data_key.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

data "aws_iam_policy_document" "ops_key" {
  #checkov:skip=CKV_AWS_109:Key policy, not an identity policy: "Resource: *" in a key policy means this key only. The account-root statement is the AWS-documented default that delegates key administration to IAM; without it the key could not be managed.
  #checkov:skip=CKV_AWS_111:Key policy, not an identity policy: "Resource: *" means this key only; every service statement is bounded by a ViaService or encryption-context condition.
  #checkov:skip=CKV_AWS_356:Key policy, not an identity policy: "*" is the only valid resource in a key policy and denotes this key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts with the key itself, so it needs the key policy to say so, and only
  # for this deployment's log groups.
  statement {
    sid = "CloudWatchLogsEncryptsContainerLogs"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/${var.project}/${var.environment}/*"]
    }
  }
}

resource "aws_kms_key" "ops" {
  description             = "${local.name}: Dagster secrets, container logs, image repository"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.ops_key.json
}

resource "aws_kms_alias" "ops" {
  name          = "alias/${local.name}-ops"
  target_key_id = aws_kms_key.ops.key_id
}
