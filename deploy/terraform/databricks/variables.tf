variable "aws_region" {
  description = "AWS region of the aws stack (where the Databricks token secret lives)."
  type        = string
}

variable "project" {
  description = "Project name: prefix of resource names and the `project` tag."
  type        = string
  default     = "phone-compliance"
}

variable "environment" {
  description = "Deployment name (for example `prod`): part of resource names and tags."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags for the AWS resources of this stack; also set as custom tags on the job clusters."
  type        = map(string)
  default     = {}
}

variable "databricks_host" {
  description = "URL of the Databricks workspace, for example https://dbc-1234abcd-5678.cloud.databricks.com."
  type        = string

  validation {
    condition     = startswith(var.databricks_host, "https://")
    error_message = "Must be the https:// URL of the workspace."
  }
}

variable "instance_profile_arn" {
  description = "Instance profile of the job cluster: output `cluster_instance_profile_arn` of the aws stack."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/", var.instance_profile_arn))
    error_message = "Must be an IAM instance profile ARN."
  }
}

variable "databricks_token_secret_arn" {
  description = "Secrets Manager secret the pipeline token is written to: output `databricks_token_secret_arn` of the aws stack."
  type        = string
}

variable "spark_version" {
  description = "Databricks Runtime of every job cluster. Pinned to an LTS runtime on Spark 4.0 (DBR 17.3 LTS: Spark 4.0.0, Scala 2.13), matching the pyspark 4.0 and delta-spark 4.0 the project is tested with."
  type        = string
  default     = "17.3.x-scala2.13"

  validation {
    condition     = can(regex("^17\\.[0-9]+\\.x-scala2\\.13$", var.spark_version))
    error_message = "Must be a DBR 17.x (Spark 4.0) runtime key such as 17.3.x-scala2.13."
  }
}

variable "allowed_node_types" {
  description = "EC2 instance types the job cluster may use, driver and workers; the first is the default. Instance-store (d) types keep Spark's shuffle off EBS."
  type        = list(string)
  default     = ["m6id.xlarge", "m6id.2xlarge", "r6id.xlarge", "r6id.2xlarge"]

  validation {
    condition     = length(var.allowed_node_types) > 0
    error_message = "List at least one node type."
  }
}

variable "max_workers" {
  description = "Most workers a job cluster may scale to. The reference load (about 20 million rows) needs far fewer than the default."
  type        = number
  default     = 8
}

variable "max_dbus_per_hour" {
  description = "Ceiling on the DBU rate of one job cluster: the cost guard of the policy."
  type        = number
  default     = 40
}

variable "autotermination_minutes" {
  description = "Idle minutes after which a cluster made under the policy stops. Job clusters already stop when their run ends; this is the backstop if one outlives it."
  type        = number
  default     = 30

  validation {
    condition     = var.autotermination_minutes >= 10 && var.autotermination_minutes <= 120
    error_message = "Must be between 10 and 120 minutes."
  }
}

variable "ssn_hash_key" {
  description = "Key of Bronze's keyed SSN hash (PHONE_COMPLIANCE_SSN_HASH_KEY), at least 32 characters. Pass it as TF_VAR_ssn_hash_key from a secret store, never in a tfvars file. Changing it changes every hash."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.ssn_hash_key) >= 32
    error_message = "Must be at least 32 characters (for example `openssl rand -hex 32`)."
  }
}

variable "token_rotation_days" {
  description = "Days after which a re-apply replaces the pipeline token; the token itself lives seven days longer, so the old one keeps working until the containers pick up the new one."
  type        = number
  default     = 60

  validation {
    condition     = var.token_rotation_days >= 1 && var.token_rotation_days <= 180
    error_message = "Must be between 1 and 180 days."
  }
}

variable "token_user_group_names" {
  description = "Workspace groups that keep the right to use personal access tokens. The token permission set is authoritative (it replaces the workspace's), so list every group that uses tokens today; `users` keeps the default behaviour."
  type        = list(string)
  default     = ["users"]
}

variable "secret_scope_manager_group_names" {
  description = "Workspace groups allowed to manage the `phone-compliance` secret scope (rotate the SSN hash key). Workspace admins always can."
  type        = list(string)
  default     = []
}
