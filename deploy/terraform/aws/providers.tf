provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = "${var.project}-${var.environment}"

  tags = merge(var.tags, {
    project     = var.project
    environment = var.environment
    managed-by  = "terraform"
  })

  # The one prefix of the lakehouse bucket that holds Bronze, Silver and Gold. The cluster may
  # write under it and nowhere else; the code location may only read it.
  lakehouse_prefix = trimsuffix(var.lakehouse_prefix, "/")
}
