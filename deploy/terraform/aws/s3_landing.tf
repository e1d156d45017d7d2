# The landing bucket: files exactly as the client delivered them. They are the evidence every Gold
# row names (SPEC R12), so they are versioned, locked against deletion for a while, and only ever
# read by the pipeline.

resource "aws_s3_bucket" "landing" {
  #checkov:skip=CKV_AWS_144:Single-region by design. Versioning plus Object Lock protect against deletion; regional disaster recovery is the client re-delivering files, which it keeps for five years (SPEC section 1). Add replication here if the DR policy demands it.
  bucket              = var.landing_bucket_name
  object_lock_enabled = true
}

resource "aws_s3_bucket_ownership_controls" "landing" {
  bucket = aws_s3_bucket.landing.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "landing" {
  bucket                  = aws_s3_bucket.landing.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "landing" {
  bucket = aws_s3_bucket.landing.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "landing" {
  bucket = aws_s3_bucket.landing.id

  # GOVERNANCE, not COMPLIANCE: a named administrator holding s3:BypassGovernanceRetention can
  # still remove a file delivered by mistake (say, to the wrong client).
  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.landing_object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.landing]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "landing" {
  bucket = aws_s3_bucket.landing.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "landing" {
  bucket        = aws_s3_bucket.landing.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${var.landing_bucket_name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "landing" {
  bucket = aws_s3_bucket.landing.id

  # Current files are never expired: the client's history is the source of truth for a rebuild.
  rule {
    id     = "tier-down-delivered-files"
    status = "Enabled"

    filter {}

    transition {
      days          = var.landing_transition_ia_days
      storage_class = "STANDARD_IA"
    }

    transition {
      days          = var.landing_transition_glacier_ir_days
      storage_class = "GLACIER_IR"
    }

    # Locked versions are kept until their retention ends, whatever this says.
    noncurrent_version_expiration {
      noncurrent_days = var.landing_noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.landing]
}

# Events go to EventBridge so that an audit trail or a push-style sensor can subscribe later;
# the Dagster sensor itself lists the bucket and keeps its position in its cursor.
resource "aws_s3_bucket_notification" "landing" {
  bucket      = aws_s3_bucket.landing.id
  eventbridge = true
}

data "aws_iam_policy_document" "landing_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["landing"].json]

  # A file encrypted under someone else's key would be unreadable to the pipeline: refuse it.
  statement {
    sid       = "DenyForeignKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.landing.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Both conditions must hold: the header is present, and it names another key. (A request
    # without the header gets the bucket default, which is the right key.)
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.data.arn]
    }
  }

  dynamic "statement" {
    for_each = length(var.landing_writer_principal_arns) > 0 ? [1] : []

    content {
      sid       = "ClientDelivers"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.landing.arn}/*"]

      principals {
        type        = "AWS"
        identifiers = var.landing_writer_principal_arns
      }
    }
  }
}

resource "aws_s3_bucket_policy" "landing" {
  bucket = aws_s3_bucket.landing.id
  policy = data.aws_iam_policy_document.landing_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.landing]
}
