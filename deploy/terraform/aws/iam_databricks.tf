# The identity of the Databricks job cluster's EC2 instances, handed to Spark through an instance
# profile: no access keys exist anywhere. It may read the landing bucket and read and write the
# lakehouse prefix; nothing else.

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    sid     = "Ec2InstancesOfTheJobCluster"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name                 = "${local.name}-databricks-cluster"
  description          = "Databricks job cluster of ${local.name}: read landing, read/write the lakehouse prefix."
  assume_role_policy   = data.aws_iam_policy_document.cluster_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "cluster" {
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
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.landing.arn}/*"]
  }

  # Listing is bounded to the prefix too: Delta and s3a list table paths by prefix. A request
  # without a prefix (HeadBucket, a bucket-wide list) is refused; should a runtime version ever
  # need one, this is the statement to widen, not the object statements below.
  statement {
    sid       = "ListLakehousePrefix"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.lakehouse.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.lakehouse_prefix, "${local.lakehouse_prefix}/*"]
    }
  }

  # Delta writes new files, rewrites its log checkpoints and removes files on VACUUM.
  statement {
    sid = "ReadWriteLakehousePrefix"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.lakehouse.arn}/${local.lakehouse_prefix}/*"]
  }

  statement {
    sid       = "UseDataKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.aws_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "cluster" {
  name   = "landing-read-lakehouse-readwrite"
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster.json
}

resource "aws_iam_instance_profile" "cluster" {
  name = "${local.name}-databricks-cluster"
  role = aws_iam_role.cluster.name
}

# Databricks launches the cluster's instances with its cross-account role, which must be allowed
# to pass this one role to EC2, and no other.
data "aws_iam_policy_document" "pass_cluster_role" {
  statement {
    sid       = "PassOnlyTheClusterRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.cluster.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "databricks_cross_account_pass_role" {
  count = var.databricks_cross_account_role_name == null ? 0 : 1

  name   = "${local.name}-pass-cluster-role"
  role   = var.databricks_cross_account_role_name
  policy = data.aws_iam_policy_document.pass_cluster_role.json
}
