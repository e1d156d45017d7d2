terraform {
  required_version = ">= 1.8.0, < 2.0.0"

  required_providers {
    databricks = {
      source  = "databricks/databricks"
      version = ">= 1.85.0, < 2.0.0"
    }
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }

  # Partial configuration, as in ../aws: terraform init -backend-config=backend.hcl.
  # This state holds the pipeline token and the SSN hash key: the backend must encrypt it and
  # only the deployers may read it.
  backend "s3" {}
}
