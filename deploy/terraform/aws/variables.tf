variable "aws_region" {
  description = "AWS region of the buckets, keys and roles; the Databricks workspace must run in the same region."
  type        = string
}

variable "project" {
  description = "Project name: prefix of every resource name and the `project` tag."
  type        = string
  default     = "phone-compliance"
}

variable "environment" {
  description = "Deployment name (for example `prod`): part of resource names and the `environment` tag."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags for every resource (cost centre, owner, data classification)."
  type        = map(string)
  default     = {}
}

variable "landing_bucket_name" {
  description = "Name of the S3 bucket the client delivers ENRLMT, NON-FIN-BDL and SUPPLFWD files to (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.landing_bucket_name))
    error_message = "Must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "lakehouse_bucket_name" {
  description = "Name of the S3 bucket holding the Bronze, Silver and Gold Delta tables (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.lakehouse_bucket_name))
    error_message = "Must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "log_bucket_name" {
  description = "Name of the S3 bucket receiving the server access logs of the landing and lakehouse buckets (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.log_bucket_name))
    error_message = "Must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "lakehouse_prefix" {
  description = "Key prefix of the lakehouse bucket under which the Delta tables live; PHONE_COMPLIANCE_WAREHOUSE is s3://<lakehouse bucket>/<this prefix>."
  type        = string
  default     = "warehouse"

  validation {
    condition     = length(trim(var.lakehouse_prefix, "/")) > 0 && !strcontains(var.lakehouse_prefix, "*")
    error_message = "Must be a non-empty key prefix without wildcards."
  }
}

variable "landing_writer_principal_arns" {
  description = "IAM principals (the client's delivery role, an AWS Transfer Family role) allowed to put files into the landing bucket. Empty: nobody outside this account writes."
  type        = list(string)
  default     = []
}

variable "landing_object_lock_days" {
  description = "Default Object Lock retention (GOVERNANCE mode) of landing files, in days: the delivered files are the evidence every decision names (SPEC R12)."
  type        = number
  default     = 365

  validation {
    condition     = var.landing_object_lock_days >= 1
    error_message = "Must be at least one day."
  }
}

variable "landing_transition_ia_days" {
  description = "Age in days at which landing files move to S3 Standard-IA (they are read on ingest and on a full rebuild only)."
  type        = number
  default     = 30
}

variable "landing_transition_glacier_ir_days" {
  description = "Age in days at which landing files move to S3 Glacier Instant Retrieval (still readable in milliseconds for a rebuild)."
  type        = number
  default     = 180
}

variable "landing_noncurrent_version_days" {
  description = "Days a replaced or deleted landing file version is kept before it expires."
  type        = number
  default     = 90
}

variable "lakehouse_noncurrent_version_days" {
  description = "Days a noncurrent lakehouse object version is kept. Delta keeps its own history; this only guards against an accidental delete or VACUUM."
  type        = number
  default     = 30
}

variable "access_log_retention_days" {
  description = "Days the S3 server access logs are kept."
  type        = number
  default     = 365
}

variable "container_log_retention_days" {
  description = "Days the CloudWatch logs of the Dagster containers are kept (at least a year, for audit)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.container_log_retention_days)
    error_message = "Must be a CloudWatch Logs retention value of at least 365 days."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period, in days, before a scheduled KMS key deletion takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "Must be between 7 and 30 days."
  }
}

variable "databricks_cross_account_role_name" {
  description = "Name of the IAM role Databricks assumes to launch clusters (the workspace's cross-account role). When set, it is granted iam:PassRole on the cluster role and nothing else. Null: grant it yourself."
  type        = string
  default     = null
}
