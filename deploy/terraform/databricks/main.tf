# The Databricks side: the identity the pipeline runs as, the only kind of cluster it may start,
# and the secrets that cluster reads.

locals {
  # The pipeline's resources name this scope; keep the two in step.
  secret_scope = "phone-compliance" #checkov:skip=CKV_SECRET_6:The name of the secret scope, not a secret; the detector matches the word "secret" in the key.

  # Everything a job cluster of the pipeline may be. Fixed values are forced, allowlists and
  # ranges bound what the step launcher's run config may ask for, and anything else is forbidden
  # or left to the runtime's default.
  cluster_policy = merge(
    {
      cluster_type = { type = "fixed", value = "job" }

      # Spark 4.0, like the pyspark the project is tested with.
      spark_version = { type = "fixed", value = var.spark_version }

      # Storage access through the instance profile only: no keys in Spark config.
      "aws_attributes.instance_profile_arn" = { type = "fixed", value = var.instance_profile_arn }

      # Dedicated (single-user) access mode: the run's identity owns the cluster, and the step
      # launcher's DBFS staging and instance-profile S3 access both work in it.
      data_security_mode = { type = "fixed", value = "SINGLE_USER" }

      # Shuffle and spill hold SSNs and phone numbers before hashing: encrypt the local disks.
      enable_local_disk_encryption = { type = "fixed", value = true }

      node_type_id = {
        type         = "allowlist"
        values       = var.allowed_node_types
        defaultValue = var.allowed_node_types[0]
      }
      driver_node_type_id = {
        type         = "allowlist"
        values       = var.allowed_node_types
        defaultValue = var.allowed_node_types[0]
      }

      "autoscale.min_workers" = { type = "range", minValue = 1, maxValue = var.max_workers, defaultValue = 1 }
      "autoscale.max_workers" = { type = "range", minValue = 1, maxValue = var.max_workers, defaultValue = var.max_workers }
      num_workers             = { type = "range", minValue = 1, maxValue = var.max_workers, isOptional = true }
      dbus_per_hour           = { type = "range", maxValue = var.max_dbus_per_hour }

      autotermination_minutes = { type = "fixed", value = var.autotermination_minutes, hidden = true }

      # Workers may be spot; the driver stays on demand, since losing it loses the run.
      "aws_attributes.availability" = {
        type         = "allowlist"
        values       = ["SPOT_WITH_FALLBACK", "ON_DEMAND"]
        defaultValue = "SPOT_WITH_FALLBACK"
      }
      "aws_attributes.first_on_demand" = { type = "range", minValue = 1, defaultValue = 1 }

      runtime_engine = {
        type         = "allowlist"
        values       = ["STANDARD", "PHOTON"]
        defaultValue = "STANDARD"
      }

      # Only the Databricks runtime image, no pools that bypass the node-type list.
      "docker_image.url"      = { type = "forbidden", hidden = true }
      instance_pool_id        = { type = "forbidden", hidden = true }
      driver_instance_pool_id = { type = "forbidden", hidden = true }
    },
    # Tags make the DBU and EC2 cost of the pipeline visible per project and environment.
    {
      for key, value in local.tags : "custom_tags.${key}" => { type = "fixed", value = value }
    },
  )
}

resource "databricks_instance_profile" "cluster" {
  instance_profile_arn = var.instance_profile_arn
}

# The pipeline runs as this service principal: Dagster submits every job-cluster run with its
# token, so the runs, the clusters and the secret reads are all attributable to it.
resource "databricks_service_principal" "pipeline" {
  display_name = "${local.name}-pipeline"

  # It may only create clusters through the policy below, never free-form ones.
  allow_cluster_create = false
}

resource "databricks_service_principal_role" "pipeline_instance_profile" {
  service_principal_id = databricks_service_principal.pipeline.id
  role                 = databricks_instance_profile.cluster.id
}

resource "databricks_cluster_policy" "job" {
  name        = "${local.name}-job-cluster"
  description = "Job clusters of ${local.name}: DBR ${var.spark_version}, the pipeline instance profile, bounded size and cost."
  definition  = jsonencode(local.cluster_policy)
}

resource "databricks_permissions" "job_policy" {
  cluster_policy_id = databricks_cluster_policy.job.id

  access_control {
    service_principal_name = databricks_service_principal.pipeline.application_id
    permission_level       = "CAN_USE"
  }
}
