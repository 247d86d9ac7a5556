terraform {
  # Terraform 1.5 or OpenTofu 1.6 and later; the AWS provider 5.31 or later.
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31"
    }
  }
}
