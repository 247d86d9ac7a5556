# ipsync as a Lambda function: a pass every minute, and on an RDS failover event a watch that resolves the
# database's endpoint every second until its address changes and the NLB IP target group follows. The same
# resources as deploy/lambda/ipsync.yaml (CloudFormation); deploy/terraform_test.go checks that both grant the
# same actions and match the same events.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  attach_to_vpc    = var.vpc_id != ""
  create_endpoints = local.attach_to_vpc && var.create_interface_endpoints
  # The APIs ipsync calls, for the interface endpoints of a VPC-attached function.
  endpoint_services = concat(
    ["elasticloadbalancing"],
    length(var.assume_role_arns) > 0 ? ["sts"] : [],
    var.follow_rds_members ? ["rds"] : [],
    var.discover_tag_key != "" ? ["tagging"] : [], # the Resource Groups Tagging API (tag:GetResources)
  )

  # The events the handler serves: failovers and member changes (internal/lambda.RuleEventIDs; the test compares
  # both lists).
  failover_event_ids = [
    "RDS-EVENT-0003",
    "RDS-EVENT-0005",
    "RDS-EVENT-0013",
    "RDS-EVENT-0015",
    "RDS-EVENT-0049",
    "RDS-EVENT-0050",
    "RDS-EVENT-0051",
    "RDS-EVENT-0065",
    "RDS-EVENT-0069",
    "RDS-EVENT-0070",
    "RDS-EVENT-0071",
    "RDS-EVENT-0072",
    "RDS-EVENT-0073",
  ]

  environment = merge(
    var.config != "" ? { IPSYNC_CONFIG = var.config } : {
      IPSYNC_ENDPOINT                  = var.endpoint
      IPSYNC_TARGET_GROUP_ARN          = var.target_group_arns[0]
    },
    var.dns_servers != "" ? { IPSYNC_DNS_SERVER = var.dns_servers } : {},
    { IPSYNC_FAILOVER_WINDOW = "${var.failover_window_seconds}s" },
  )
}

data "aws_iam_policy_document" "assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# ipsync's own actions (modules/policy), for the role its AWS calls are made with.
module "policy" {
  source             = "../policy"
  target_group_arns  = var.target_group_arns
  assume_role_arns   = var.assume_role_arns
  discover_tag_key   = var.discover_tag_key
  record_ownership   = var.record_ownership
  follow_rds_members = var.follow_rds_members
}

resource "aws_iam_role" "function" {
  name_prefix        = "${var.name}-"
  description        = "ipsync function role - read target groups, change the targets of the given target groups"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "ipsync" {
  name   = "ipsync"
  role   = aws_iam_role.function.id
  policy = module.policy.json
}

# Lambda's own: the logs, and in a VPC the function's network interfaces. Nothing ipsync's code calls.
resource "aws_iam_role_policy_attachment" "lambda" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/${local.attach_to_vpc ? "AWSLambdaVPCAccessExecutionRole" : "AWSLambdaBasicExecutionRole"}"
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_security_group" "function" {
  count       = local.attach_to_vpc ? 1 : 0
  name_prefix = "${var.name}-function-"
  description = "ipsync function - out to the AWS APIs and DNS"
  vpc_id      = var.vpc_id
  egress {
    description = "AWS APIs (ELBv2, STS)"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "DNS servers of dns.servers"
    protocol    = "udp"
    from_port   = 53
    to_port     = 53
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "DNS over TCP (truncated answers)"
    protocol    = "tcp"
    from_port   = 53
    to_port     = 53
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = var.tags
}

resource "aws_security_group" "endpoints" {
  count       = local.create_endpoints ? 1 : 0
  name_prefix = "${var.name}-endpoints-"
  description = "ipsync interface endpoints - HTTPS from the ipsync function"
  vpc_id      = var.vpc_id
  ingress {
    description     = "ipsync function"
    protocol        = "tcp"
    from_port       = 443
    to_port         = 443
    security_groups = [aws_security_group.function[0].id]
  }
  tags = var.tags
}

resource "aws_vpc_endpoint" "api" {
  for_each            = local.create_endpoints ? toset(local.endpoint_services) : toset([])
  vpc_endpoint_type   = "Interface"
  service_name        = "com.amazonaws.${data.aws_region.current.name}.${each.key}"
  vpc_id              = var.vpc_id
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true
  tags                = var.tags
}

resource "aws_lambda_function" "ipsync" {
  function_name = var.name
  description   = "ipsync - keeps NLB IP target groups pointed at a database endpoint's addresses"
  role          = aws_iam_role.function.arn
  runtime       = "provided.al2023"
  architectures = [var.architecture]
  handler       = "bootstrap"
  s3_bucket     = var.code_s3_bucket
  s3_key        = var.code_s3_key
  memory_size   = 128
  # failover_window_seconds (at most 165) plus the handler's 15 s margin for the last pass.
  timeout                        = 180
  reserved_concurrent_executions = var.single_concurrency ? 1 : -1

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  environment {
    variables = local.environment
  }

  dynamic "vpc_config" {
    for_each = local.attach_to_vpc ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = [aws_security_group.function[0].id]
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.endpoint != "" || var.config != ""
      error_message = "Set endpoint (one mapping) or config (the YAML configuration)."
    }
    precondition {
      condition     = var.vpc_id == "" || length(var.subnet_ids) > 0
      error_message = "With vpc_id, set subnet_ids."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.lambda]
}

# Events are asynchronous invocations. A failed pass is not retried (the next minute's pass is the retry); an
# event queued behind a watch (single_concurrency) is still worth serving for an hour.
resource "aws_lambda_function_event_invoke_config" "ipsync" {
  function_name                = aws_lambda_function.ipsync.function_name
  qualifier                    = "$LATEST"
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 3600
}

resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.name}-schedule"
  description         = "ipsync - one pass over every mapping each minute (drift, missed or late failover events)"
  schedule_expression = "rate(1 minute)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_rule" "failover" {
  name        = "${var.name}-failover"
  description = "ipsync - watch a database's mappings when RDS reports a failover"
  event_pattern = jsonencode({
    source        = ["aws.rds"]
    "detail-type" = ["RDS DB Instance Event", "RDS DB Cluster Event"]
    detail = {
      EventID = local.failover_event_ids
    }
  })
  tags = var.tags
}

# Each rule invokes the function, and may only for itself.
locals {
  rules = {
    schedule = aws_cloudwatch_event_rule.schedule
    failover = aws_cloudwatch_event_rule.failover
  }
}

resource "aws_cloudwatch_event_target" "ipsync" {
  for_each  = local.rules
  rule      = each.value.name
  target_id = "ipsync"
  arn       = aws_lambda_function.ipsync.arn
}

resource "aws_lambda_permission" "events" {
  for_each      = local.rules
  statement_id  = each.key
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ipsync.function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value.arn
}

# A scheduled pass or a watch whose last pass failed is a function error; a bad event too. One failing minute can
# be a DNS blip; three of five is not.
resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "ipsync failed in 3 of the last 5 minutes (DNS or AWS errors, or bad events); the function's log names the mapping and the error. The target groups were left as they were."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.ipsync.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arn != "" ? [var.alarm_topic_arn] : []
  ok_actions          = var.alarm_topic_arn != "" ? [var.alarm_topic_arn] : []
  tags                = var.tags
}
