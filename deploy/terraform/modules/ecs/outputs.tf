output "cluster_arn" {
  description = "The cluster the service runs in."
  value       = local.cluster_arn
}

output "service_name" {
  description = "The ECS service's name."
  value       = aws_ecs_service.ipsync.name
}

output "log_group_name" {
  description = "ipsync's JSON logs."
  value       = aws_cloudwatch_log_group.ipsync.name
}

output "task_role_arn" {
  description = "The role ipsync calls AWS with (trust it in the accounts of role_arn)."
  value       = aws_iam_role.task.arn
}

output "metrics_dns_name" {
  description = "The name Prometheus resolves to find the task (dns_sd_configs in deploy/prometheus/scrape.yml); null without cloud_map_namespace_name."
  value       = local.create_namespace ? "${var.name}.${var.cloud_map_namespace_name}" : null
}
