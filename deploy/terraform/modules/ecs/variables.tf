# The parameters of deploy/ecs/ipsync.yaml (CloudFormation), in Terraform's snake_case, plus name and tags.

variable "name" {
  description = "Name of the service, task family and Cloud Map service, and prefix of the other resources (the CloudFormation stack name's role)."
  type        = string
  default     = "ipsync"
}

variable "image" {
  description = "The ipsync image (make image, then push it), e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/ipsync:v1.0.0."
  type        = string
}

variable "cpu_architecture" {
  description = "The architecture the image was built for (make image PLATFORM=linux/amd64 or linux/arm64)."
  type        = string
  default     = "X86_64"
  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "vpc_id" {
  description = "The VPC of the task (any VPC that can reach the AWS APIs and the database's DNS)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets for the task. They need a route to the ELBv2, STS, ECR and CloudWatch Logs APIs (a NAT gateway or VPC endpoints), or public subnets with assign_public_ip."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "true only in public subnets without a NAT gateway."
  type        = bool
  default     = false
}

variable "endpoint" {
  description = "The database's DNS name, for one mapping into the first of target_group_arns. Leave empty when config or config_parameter_name holds the configuration."
  type        = string
  default     = ""
}

variable "target_group_arns" {
  description = "ARNs of the ip target groups ipsync may change: RegisterTargets and DeregisterTargets are allowed on these only. With endpoint, the first is the mapping's; with a configuration, list every target_group_arn in it."
  type        = list(string)
  validation {
    condition     = length(var.target_group_arns) > 0
    error_message = "target_group_arns must list at least one target group ARN."
  }
}

variable "config" {
  description = "Optional: the whole YAML configuration, given to the task as IPSYNC_CONFIG, e.g. file(\"ipsync.yaml\"). Overrides endpoint."
  type        = string
  default     = ""
}

variable "config_parameter_name" {
  description = "Optional SSM parameter (a name starting with /, String or SecureString with the aws/ssm key) holding the whole YAML configuration; the task gets it as IPSYNC_CONFIG. Overrides config and endpoint."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^$|^/[a-zA-Z0-9_.\\-/]+$", var.config_parameter_name))
    error_message = "config_parameter_name must be empty or an SSM parameter name starting with /."
  }
}

variable "follow_rds_members" {
  description = "true when the configuration has rds: mappings (an Aurora reader pool, a custom endpoint, read replicas): the role may then call rds:DescribeDBClusters, DescribeDBInstances and DescribeDBClusterEndpoints."
  type        = bool
  default     = false
}

variable "assume_role_arns" {
  description = "The role_arn values of the configuration (cross-account target groups). Empty: the task role gets no sts:AssumeRole at all."
  type        = list(string)
  default     = []
}

variable "log_level" {
  description = "debug, info, warn or error (IPSYNC_LOG_LEVEL)."
  type        = string
  default     = "info"
  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

variable "cluster_name" {
  description = "An existing ECS cluster; empty creates one for ipsync."
  type        = string
  default     = ""
}

variable "metrics_ingress_cidr" {
  description = "A CIDR allowed to scrape /metrics on port 9796 (Prometheus). Empty: no inbound traffic at all (the container health check runs inside the task)."
  type        = string
  default     = ""
}

variable "log_retention_in_days" {
  description = "Retention of the task's log group."
  type        = number
  default     = 30
}

variable "cloud_map_namespace_name" {
  description = "Optional: create this private DNS namespace (AWS Cloud Map, e.g. ipsync.local) in vpc_id and register the task in it, so Prometheus finds it at <name>.<namespace> (deploy/prometheus/scrape.yml's dns_sd_configs; set metrics_ingress_cidr too)."
  type        = string
  default     = ""
}

variable "cloud_map_namespace_id" {
  description = "Optional, instead of cloud_map_namespace_name: register the task in this existing private DNS namespace (ns-...)."
  type        = string
  default     = ""
}

variable "shard_count" {
  description = "Split the mappings across this many ECS services, one task each with IPSYNC_SHARD=i/shard_count: each keeps only the mappings whose target group ARN hashes to its shard. 1: one service for every mapping."
  type        = number
  default     = 1
  validation {
    condition     = var.shard_count >= 1 && var.shard_count <= 64 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number from 1 to 64."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "discover_tag_key" {
  description = "ipsync:endpoint when the configuration has discover: (tag_key ipsync:endpoint): the role may then list tagged target groups and change the targets of those carrying the tag. Empty: no discovery."
  type        = string
  default     = ""
}

variable "record_ownership" {
  description = "true when a mapping has prune: false: ipsync records the targets it registered on the group's tags ipsync:owned* (DescribeTags, AddTags, RemoveTags of those keys only)."
  type        = bool
  default     = false
}
