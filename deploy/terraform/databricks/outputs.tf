output "cluster_policy_id" {
  description = "Policy id to put in the step launcher's new_cluster config (`policy_id`)."
  value       = databricks_cluster_policy.job.id
}

output "pipeline_service_principal_application_id" {
  description = "Application id of the service principal the pipeline runs as (also the `single_user_name` of its clusters)."
  value       = databricks_service_principal.pipeline.application_id
}

output "secret_scope" {
  description = "Name of the secret scope the job cluster reads (`phone-compliance`)."
  value       = databricks_secret_scope.pipeline.name
}

output "spark_version" {
  description = "Databricks Runtime every job cluster runs."
  value       = var.spark_version
}

output "instance_profile_id" {
  description = "Workspace registration of the cluster instance profile."
  value       = databricks_instance_profile.cluster.id
}
