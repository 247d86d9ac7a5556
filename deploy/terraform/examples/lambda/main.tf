# ipsync as a Lambda function for one Aurora cluster endpoint, with its code from a release's zip in S3.
#
#   aws s3 cp ipsync-lambda-arm64.zip s3://my-artifacts/ipsync/v1.0.0/ipsync-lambda-arm64.zip --region us-east-1
#   terraform init && terraform apply   (or: tofu init && tofu apply)

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31"
    }
  }
}

variable "region" {
  description = "The region of the target group and the database."
  type        = string
  default     = "us-east-1"
}

variable "target_group_arn" {
  description = "The NLB's ip target group that fronts the database."
  type        = string
}

provider "aws" {
  region = var.region
}

module "ipsync" {
  source = "../../modules/lambda"

  code_s3_bucket    = "my-artifacts"
  code_s3_key       = "ipsync/v1.0.0/ipsync-lambda-arm64.zip"
  architecture      = "arm64"
  endpoint          = "orders.cluster-abc123xyz.us-east-1.rds.amazonaws.com"
  target_group_arns = [var.target_group_arn]
}

output "dry_run_command" {
  description = "Run it to see what ipsync would change now."
  value       = module.ipsync.dry_run_command
}
