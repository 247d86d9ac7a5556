# ipsync as an ECS service next to the NLB it manages, registered in Cloud Map for Prometheus.
#
# The target group is Terraform's; its targets are ipsync's. Terraform declares no attachment for the database's
# addresses (ipsync registers them on its first pass), so a failover needs no Terraform run and a later plan shows
# no drift. See "Terraform" in README.md for an existing aws_lb_target_group_attachment.

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
  description = "The region of the VPC and the database."
  type        = string
  default     = "us-east-1"
}

variable "vpc_id" {
  description = "The VPC of the NLB and the task."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT gateway) for the task."
  type        = list(string)
}

variable "image" {
  description = "The ipsync image, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/ipsync:v1.0.0."
  type        = string
}

provider "aws" {
  region = var.region
}

resource "aws_lb_target_group" "orders_db" {
  name        = "orders-db"
  target_type = "ip"
  protocol    = "TCP"
  port        = 5432
  vpc_id      = var.vpc_id
  # The database's old address leaves within seconds of a failover; no need to drain for minutes.
  deregistration_delay = 30
}

module "ipsync" {
  source = "../../modules/ecs"

  image                    = var.image
  cpu_architecture         = "ARM64"
  vpc_id                   = var.vpc_id
  subnet_ids               = var.private_subnet_ids
  endpoint                 = "orders.cluster-abc123xyz.us-east-1.rds.amazonaws.com"
  target_group_arns        = [aws_lb_target_group.orders_db.arn]
  metrics_ingress_cidr     = "10.0.0.0/16"
  cloud_map_namespace_name = "ipsync.local"
}

output "metrics_dns_name" {
  description = "The name for dns_sd_configs in deploy/prometheus/scrape.yml."
  value       = module.ipsync.metrics_dns_name
}
