# ipsync's own IAM policy, for the role of the Lambda and ECS modules: exactly the operations the code calls, as
# recorded in cmd/ipsync/testdata/aws-operations.txt (deploy/terraform_test.go checks it), the same as
# deploy/iam/policy.json and the CloudFormation templates' roles.

variable "target_group_arns" {
  description = "ARNs of the ip target groups ipsync may change: RegisterTargets and DeregisterTargets are allowed on these only."
  type        = list(string)
}

variable "assume_role_arns" {
  description = "The role_arn values of the configuration. Empty: no sts:AssumeRole at all."
  type        = list(string)
  default     = []
}

variable "follow_rds_members" {
  description = "true when the configuration has rds: mappings (an Aurora reader pool, a custom endpoint, read replicas): the role may then call rds:DescribeDBClusters, DescribeDBInstances and DescribeDBClusterEndpoints."
  type        = bool
  default     = false
}

data "aws_iam_policy_document" "ipsync" {
  # Describe* of ELBv2 and EC2 cannot be limited to resources.
  statement {
    sid       = "ReadTargetGroupsAndVpcs"
    effect    = "Allow"
    actions   = ["ec2:DescribeVpcs", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }
  statement {
    sid       = "ChangeTargetsOfTheseTargetGroupsOnly"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
    resources = var.target_group_arns
  }
  dynamic "statement" {
    for_each = length(var.assume_role_arns) > 0 ? [1] : []
    content {
      sid       = "OnlyWithRoleArn"
      effect    = "Allow"
      actions   = ["sts:AssumeRole"]
      resources = var.assume_role_arns
    }
  }
  # RDS Describe* cannot be limited to the clusters of the configuration by resource either.
  dynamic "statement" {
    for_each = var.follow_rds_members ? [1] : []
    content {
      sid       = "ReadRdsMembersOnlyWithRds"
      effect    = "Allow"
      actions   = ["rds:DescribeDBClusterEndpoints", "rds:DescribeDBClusters", "rds:DescribeDBInstances"]
      resources = ["*"]
    }
  }
}

output "json" {
  description = "The policy document, for an aws_iam_role_policy."
  value       = data.aws_iam_policy_document.ipsync.json
}
