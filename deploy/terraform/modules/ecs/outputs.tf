output "cluster_arn" {
  description = "The cluster the service runs in."
  value       = local.cluster_arn
}

output "service_name" {
  description = "The ECS service's name (shard 0's with shard_count > 1)."
  value       = aws_ecs_service.ipsync[0].name
}

output "service_names" {
  description = "The ECS services' names, one per shard."
  value       = aws_ecs_service.ipsync[*].name
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
  value       = local.create_namespace ? "${local.shard_names[0]}.${var.cloud_map_namespace_name}" : null
}

output "metrics_dns_names" {
  description = "With shard_count > 1: one name per shard for Prometheus (dns_sd_configs takes a list); empty without cloud_map_namespace_name."
  value       = local.create_namespace ? [for n in local.shard_names : "${n}.${var.cloud_map_namespace_name}"] : []
}
