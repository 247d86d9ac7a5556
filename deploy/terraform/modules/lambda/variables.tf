# The parameters of deploy/lambda/ipsync.yaml (CloudFormation), in Terraform's snake_case, plus name and tags.

variable "name" {
  description = "Name of the function and prefix of its role, log group, rules and alarm (the CloudFormation stack name's role)."
  type        = string
  default     = "ipsync"
}

variable "code_s3_bucket" {
  description = "The bucket holding the function's zip (make lambda builds dist/ipsync-lambda-arm64.zip; a release has ipsync-lambda-arm64.zip and ipsync-lambda-amd64.zip)."
  type        = string
}

variable "code_s3_key" {
  description = "The zip's key; upload a new key to update the code."
  type        = string
  default     = "ipsync/ipsync-lambda-arm64.zip"
}

variable "architecture" {
  description = "The zip's architecture: arm64 for ipsync-lambda-arm64.zip, x86_64 for ipsync-lambda-amd64.zip."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "endpoint" {
  description = "The database's DNS name, for one mapping into the first of target_group_arns. RDS failover events of the database named by its first label start a watch. Leave empty with config."
  type        = string
  default     = ""
}

variable "target_group_arns" {
  description = "ARNs of the ip target groups ipsync may change: RegisterTargets and DeregisterTargets are allowed on these only. With endpoint, the first is the mapping's; with config, list every target_group_arn in it."
  type        = list(string)
  validation {
    condition     = length(var.target_group_arns) > 0
    error_message = "target_group_arns must list at least one target group ARN."
  }
}

variable "config" {
  description = "Optional: the whole YAML configuration (IPSYNC_CONFIG; 4 KB at most with the other variables), e.g. file(\"ipsync.yaml\"). Overrides endpoint."
  type        = string
  default     = ""
}

variable "follow_rds_members" {
  description = "true when the configuration has rds: mappings (an Aurora reader pool, a custom endpoint, read replicas): the role may then call rds:DescribeDBClusters, DescribeDBInstances and DescribeDBClusterEndpoints."
  type        = bool
  default     = false
}

variable "assume_role_arns" {
  description = "The role_arn values of the configuration. Empty: the role gets no sts:AssumeRole at all."
  type        = list(string)
  default     = []
}

variable "dns_servers" {
  description = "Optional DNS servers, host:port, comma-separated (IPSYNC_DNS_SERVER). Empty: the function's resolver."
  type        = string
  default     = ""
}

variable "failover_window_seconds" {
  description = "How long an RDS failover event is watched at most (Multi-AZ instance failover takes 60-120 s). The function's timeout (180 s) leaves 15 s for the last pass."
  type        = number
  default     = 120
  validation {
    condition     = var.failover_window_seconds >= 0 && var.failover_window_seconds <= 165
    error_message = "failover_window_seconds must be between 0 and 165 (the 180 s timeout less the handler's 15 s margin)."
  }
}

variable "vpc_id" {
  description = "Optional. Attach the function to this VPC only when the endpoint resolves only there (private hosted zone, DNS servers in the VPC). RDS endpoints resolve publicly, so most deployments need no VPC."
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "With vpc_id, private subnets for the function."
  type        = list(string)
  default     = []
}

variable "create_interface_endpoints" {
  description = "With vpc_id: true creates interface endpoints for elasticloadbalancing (and sts with assume_role_arns), about 7 USD a month each per AZ; false relies on the subnets' NAT gateway."
  type        = bool
  default     = false
}

variable "single_concurrency" {
  description = "true reserves a concurrency of 1: invocations never overlap, and events arriving during a watch queue. false if the account's unreserved concurrency cannot spare it (new accounts)."
  type        = bool
  default     = true
}

variable "log_retention_in_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 30
}

variable "alarm_topic_arn" {
  description = "Optional SNS topic for the Errors alarm."
  type        = string
  default     = ""
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
