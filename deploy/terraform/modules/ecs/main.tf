# ipsync as an ECS Fargate service (one per shard, see shard_count): one task running `ipsync run`, which keeps NLB IP target groups pointed at the
# addresses a database endpoint resolves to. The same resources as deploy/ecs/ipsync.yaml (CloudFormation);
# deploy/terraform_test.go checks that both grant the same actions.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  metrics_port         = 9796
  create_cluster       = var.cluster_name == ""
  cluster_arn          = local.create_cluster ? aws_ecs_cluster.ipsync[0].arn : "arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"
  use_config_parameter = var.config_parameter_name != ""
  config_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.config_parameter_name}"
  create_namespace     = var.cloud_map_namespace_name != ""
  use_cloud_map        = local.create_namespace || var.cloud_map_namespace_id != ""
  # One service, task definition and Cloud Map name per shard; unsharded, just var.name.
  shard_names = [for i in range(var.shard_count) : var.shard_count == 1 ? var.name : "${var.name}-shard-${i}"]

  environment = concat(
    [{ name = "IPSYNC_LOG_LEVEL", value = var.log_level }],
    local.use_config_parameter ? [] : (var.config != "" ? [{ name = "IPSYNC_CONFIG", value = var.config }] : [
      { name = "IPSYNC_ENDPOINT", value = var.endpoint },
      { name = "IPSYNC_TARGET_GROUP_ARN", value = var.target_group_arns[0] },
    ]),
  )
}

resource "aws_ecs_cluster" "ipsync" {
  count = local.create_cluster ? 1 : 0
  name  = var.name
  tags  = var.tags
}

resource "aws_cloudwatch_log_group" "ipsync" {
  name_prefix       = "/ecs/${var.name}-"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
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

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "ipsync task role - read target groups, change the targets of the given target groups"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "ipsync" {
  name   = "ipsync"
  role   = aws_iam_role.task.id
  policy = module.policy.json
}

# The role ECS pulls the image, writes the logs and reads the configuration parameter with; ipsync never uses it.
data "aws_iam_policy_document" "execution_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ipsync task execution role - image pull, logs, and the configuration parameter"
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "read_configuration" {
  count = local.use_config_parameter ? 1 : 0
  name  = "read-ipsync-configuration"
  role  = aws_iam_role.execution.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "ssm:GetParameters", Resource = local.config_parameter_arn }]
  })
}

resource "aws_security_group" "ipsync" {
  name_prefix = "${var.name}-"
  description = "ipsync task - out to the AWS APIs and DNS; in only for /metrics when metrics_ingress_cidr is set"
  vpc_id      = var.vpc_id
  egress {
    description = "AWS APIs (ELBv2, STS, ECR, Logs)"
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
  dynamic "ingress" {
    for_each = var.metrics_ingress_cidr != "" ? [var.metrics_ingress_cidr] : []
    content {
      description = "Prometheus scrape of /metrics"
      protocol    = "tcp"
      from_port   = local.metrics_port
      to_port     = local.metrics_port
      cidr_blocks = [ingress.value]
    }
  }
  tags = var.tags
}

# Service discovery for Prometheus: one A record per running task (awsvpc), so a replaced task is followed.
resource "aws_service_discovery_private_dns_namespace" "ipsync" {
  count       = local.create_namespace ? 1 : 0
  name        = var.cloud_map_namespace_name
  vpc         = var.vpc_id
  description = "${var.name} - ipsync's /metrics for Prometheus"
  tags        = var.tags
}

resource "aws_service_discovery_service" "ipsync" {
  count        = local.use_cloud_map ? var.shard_count : 0
  name         = local.shard_names[count.index]
  description  = "ipsync task addresses (A records; /metrics on port 9796)"
  namespace_id = local.create_namespace ? aws_service_discovery_private_dns_namespace.ipsync[0].id : var.cloud_map_namespace_id
  dns_config {
    namespace_id   = local.create_namespace ? aws_service_discovery_private_dns_namespace.ipsync[0].id : var.cloud_map_namespace_id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }
  # ECS reports the task's health (its container health check) to Cloud Map.
  health_check_custom_config {
    failure_threshold = 1
  }
  tags = var.tags
}

resource "aws_ecs_task_definition" "ipsync" {
  count                    = var.shard_count
  family                   = local.shard_names[count.index]
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "256"
  memory                   = "512"
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
  container_definitions = jsonencode([{
    name                   = "ipsync"
    image                  = var.image
    essential              = true
    command                = ["run"]
    readonlyRootFilesystem = true
    # SIGTERM, then this long for the pass in flight to finish (its calls have 10 s deadlines) before SIGKILL.
    stopTimeout  = 30
    portMappings = [{ name = "metrics", containerPort = local.metrics_port, protocol = "tcp" }]
    environment  = concat(local.environment, var.shard_count == 1 ? [] : [{ name = "IPSYNC_SHARD", value = "${count.index}/${var.shard_count}" }])
    secrets      = local.use_config_parameter ? [{ name = "IPSYNC_CONFIG", valueFrom = local.config_parameter_arn }] : []
    # Healthy once every mapping has had a successful pass recently (/readyz); the image has no shell.
    healthCheck = {
      command     = ["CMD", "/ipsync", "healthcheck"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ipsync.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "ipsync"
        mode                  = "non-blocking"
        max-buffer-size       = "4m"
      }
    }
  }])
  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.endpoint != "" || var.config != "" || var.config_parameter_name != ""
      error_message = "Set endpoint (one mapping), config (the YAML configuration) or config_parameter_name (the YAML in SSM)."
    }
    precondition {
      condition     = var.cloud_map_namespace_name == "" || var.cloud_map_namespace_id == ""
      error_message = "Set cloud_map_namespace_name (a new namespace) or cloud_map_namespace_id (an existing one), not both."
    }
  }
}

resource "aws_ecs_service" "ipsync" {
  count           = var.shard_count
  name            = local.shard_names[count.index]
  cluster         = local.cluster_arn
  launch_type     = "FARGATE"
  task_definition = aws_ecs_task_definition.ipsync[count.index].arn
  # One daemon per shard. A deployment stops the old task before starting the new one (at most 100 % = 1 task, at least
  # 0 %): two daemons would each keep their own memory of absent addresses (deregister_after) and double the
  # Register/Deregister calls against the ~4/s account limit. The target group keeps its targets meanwhile.
  desired_count                      = 1
  deployment_maximum_percent         = 100
  deployment_minimum_healthy_percent = 0
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    assign_public_ip = var.assign_public_ip
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.ipsync.id]
  }
  dynamic "service_registries" {
    for_each = local.use_cloud_map ? [1] : []
    content {
      registry_arn = aws_service_discovery_service.ipsync[count.index].arn
    }
  }
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  tags                    = var.tags
}
