# The lakehouse bucket: Bronze, Silver and Gold as Delta tables under one prefix. Only the
# Databricks job cluster writes here; the Dagster code location reads Gold to build the decision
# index.

resource "aws_s3_bucket" "lakehouse" {
  #checkov:skip=CKV_AWS_144:Single-region by design. The lakehouse is derived data: it is rebuilt deterministically from the landing files (SPEC R12), so a replica would only double the cost of something a re-run restores.
  #checkov:skip=CKV_AWS_143:No Object Lock: Delta rewrites and removes its own files (OPTIMIZE, VACUUM, overwrite of Gold), which locked objects would block. Versioning guards against accidental deletes, and the evidence itself is locked in the landing bucket.
  bucket = var.lakehouse_bucket_name
}

resource "aws_s3_bucket_ownership_controls" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lakehouse" {
  bucket                  = aws_s3_bucket.lakehouse.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "lakehouse" {
  bucket        = aws_s3_bucket.lakehouse.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${var.lakehouse_bucket_name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id

  # Delta decides which data files are live; S3 only cleans up after it. A file VACUUM removed
  # becomes a noncurrent version and expires here.
  rule {
    id     = "expire-vacuumed-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.lakehouse_noncurrent_version_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.lakehouse]
}

resource "aws_s3_bucket_notification" "lakehouse" {
  bucket      = aws_s3_bucket.lakehouse.id
  eventbridge = true
}

data "aws_iam_policy_document" "lakehouse_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["lakehouse"].json]
}

resource "aws_s3_bucket_policy" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id
  policy = data.aws_iam_policy_document.lakehouse_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.lakehouse]
}
