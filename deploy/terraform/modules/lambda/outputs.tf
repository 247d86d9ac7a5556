output "function_name" {
  description = "The function's name."
  value       = aws_lambda_function.ipsync.function_name
}

output "log_group_name" {
  description = "ipsync's JSON logs and EMF metrics (namespace ipsync, dimension sync)."
  value       = aws_cloudwatch_log_group.function.name
}

output "function_role_arn" {
  description = "The role ipsync calls AWS with (trust it in the accounts of role_arn)."
  value       = aws_iam_role.function.arn
}

output "dry_run_command" {
  description = "What would change now, without changing anything."
  value       = "aws lambda invoke --region ${data.aws_region.current.name} --function-name ${aws_lambda_function.ipsync.function_name} --cli-binary-format raw-in-base64-out --payload '{\"dry_run\": true}' /dev/stdout"
}
