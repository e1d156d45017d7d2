terraform {
  required_version = ">= 1.8.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # Partial configuration: the state bucket, key and region are given at init time,
  #   terraform init -backend-config=backend.hcl
  # so that no account-specific name is committed. See ../README.md.
  backend "s3" {}
}
