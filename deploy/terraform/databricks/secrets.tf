# Secrets of the pipeline. Values arrive as sensitive variables (TF_VAR_...) or are minted here;
# none is written in this code.

# The scope the job cluster reads. The step launcher exports its keys as environment variables
# of the remote step (`secrets_to_env_variables`), e.g.
#   PHONE_COMPLIANCE_SSN_HASH_KEY <- phone-compliance/ssn-hash-key
resource "databricks_secret_scope" "pipeline" {
  name = local.secret_scope
}

resource "databricks_secret" "ssn_hash_key" {
  scope        = databricks_secret_scope.pipeline.id
  key          = "ssn-hash-key"
  string_value = var.ssn_hash_key
}

resource "databricks_secret_acl" "pipeline_reads" {
  scope      = databricks_secret_scope.pipeline.id
  principal  = databricks_service_principal.pipeline.application_id
  permission = "READ"
}

resource "databricks_secret_acl" "managers" {
  for_each = toset(var.secret_scope_manager_group_names)

  scope      = databricks_secret_scope.pipeline.id
  principal  = each.value
  permission = "MANAGE"
}

# The Dagster-side credential: a token of the pipeline service principal, kept in AWS Secrets
# Manager, from where ECS injects it into the code-location container as DATABRICKS_TOKEN.
# It is replaced every `token_rotation_days` on the next apply and outlives that by a week.

# Authoritative for the whole workspace: whoever is not listed here loses token use.
resource "databricks_permissions" "token_usage" {
  authorization = "tokens"

  access_control {
    service_principal_name = databricks_service_principal.pipeline.application_id
    permission_level       = "CAN_USE"
  }

  dynamic "access_control" {
    for_each = toset(var.token_user_group_names)

    content {
      group_name       = access_control.value
      permission_level = "CAN_USE"
    }
  }
}

resource "time_rotating" "pipeline_token" {
  rotation_days = var.token_rotation_days
}

resource "databricks_obo_token" "pipeline" {
  application_id   = databricks_service_principal.pipeline.application_id
  comment          = "Dagster code location of ${local.name} (managed by Terraform)"
  lifetime_seconds = (var.token_rotation_days + 7) * 24 * 3600

  lifecycle {
    replace_triggered_by = [time_rotating.pipeline_token]
  }

  depends_on = [databricks_permissions.token_usage]
}

resource "aws_secretsmanager_secret_version" "databricks_token" {
  secret_id     = var.databricks_token_secret_arn
  secret_string = databricks_obo_token.pipeline.token_value
}
