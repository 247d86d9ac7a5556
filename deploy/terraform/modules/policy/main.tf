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

variable "discover_tag_key" {
  description = "ipsync:endpoint when the configuration has discover: (tag_key ipsync:endpoint): the role may then list tagged target groups and change the targets of those carrying the tag. Empty: no discovery."
  type        = string
  default     = ""
  validation {
    # The IAM condition below names the tag key; a policy condition key cannot be computed safely from input.
    condition     = contains(["", "ipsync:endpoint"], var.discover_tag_key)
    error_message = "discover_tag_key must be \"\" or \"ipsync:endpoint\"."
  }
}

variable "record_ownership" {
  description = "true when a mapping has prune: false (in syncs: or by the ipsync:prune tag): ipsync records the targets it registered on the group's tags ipsync:owned* (DescribeTags, AddTags, RemoveTags of those keys only)."
  type        = bool
  default     = false
}

variable "follow_rds_members" {
  description = "true when the configuration has rds: mappings (an Aurora reader pool, a custom endpoint, read replicas): the role may then call rds:DescribeDBClusters, DescribeDBInstances and DescribeDBClusterEndpoints."
  type        = bool
  default     = false
}

data "aws_iam_policy_document" "ipsync" {
  # ELBv2's Describe* cannot be limited to resources.
  statement {
    sid       = "ReadTargetGroups"
    effect    = "Allow"
    actions   = ["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = length(var.target_group_arns) > 0 ? [1] : []
    content {
      sid       = "ChangeTargetsOfTheseTargetGroupsOnly"
      effect    = "Allow"
      actions   = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
      resources = var.target_group_arns
    }
  }
  # Discovery: GetResources cannot be limited to resources; targets change only in target groups carrying the tag.
  dynamic "statement" {
    for_each = var.discover_tag_key != "" ? [1] : []
    content {
      sid       = "OnlyWithDiscoverFindTaggedTargetGroups"
      effect    = "Allow"
      actions   = ["tag:GetResources"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = var.discover_tag_key != "" ? [1] : []
    content {
      sid       = "OnlyWithDiscoverChangeTargetsOfTaggedTargetGroupsOnly"
      effect    = "Allow"
      actions   = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
      resources = ["arn:aws:elasticloadbalancing:*:*:targetgroup/*"]
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/ipsync:endpoint"
        values   = ["false"]
      }
    }
  }
  # prune: false: the targets ipsync registered are recorded on the group's tags ipsync:owned and ipsync:owned:N,
  # and no other tag may be written.
  dynamic "statement" {
    for_each = var.record_ownership ? [1] : []
    content {
      sid       = "OnlyWithPruneFalseReadOwnership"
      effect    = "Allow"
      actions   = ["elasticloadbalancing:DescribeTags"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = var.record_ownership && length(var.target_group_arns) > 0 ? [1] : []
    content {
      sid       = "OnlyWithPruneFalseRecordOwnershipOnTheseTargetGroups"
      effect    = "Allow"
      actions   = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
      resources = var.target_group_arns
      condition {
        test     = "ForAllValues:StringLike"
        variable = "aws:TagKeys"
        values   = ["ipsync:owned", "ipsync:owned:*"]
      }
    }
  }
  dynamic "statement" {
    for_each = var.record_ownership && var.discover_tag_key != "" ? [1] : []
    content {
      sid       = "OnlyWithDiscoverAndPruneFalseRecordOwnershipOnTaggedTargetGroups"
      effect    = "Allow"
      actions   = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
      resources = ["arn:aws:elasticloadbalancing:*:*:targetgroup/*"]
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/ipsync:endpoint"
        values   = ["false"]
      }
      condition {
        test     = "ForAllValues:StringLike"
        variable = "aws:TagKeys"
        values   = ["ipsync:owned", "ipsync:owned:*"]
      }
    }
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
