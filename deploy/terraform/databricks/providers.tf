# Credentials come from the environment, never from this code: DATABRICKS_CLIENT_ID and
# DATABRICKS_CLIENT_SECRET (OAuth machine-to-machine, a workspace admin service principal) or a
# profile in ~/.databrickscfg; for AWS the usual provider chain (SSO, assumed role).
provider "databricks" {
  host = var.databricks_host
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

locals {
  name = "${var.project}-${var.environment}"

  tags = merge(var.tags, {
    project     = var.project
    environment = var.environment
    managed-by  = "terraform"
  })
}
