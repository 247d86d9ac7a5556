package lambda

import awslambda "github.com/aws/aws-lambda-go/lambda"

// Serve runs the Lambda Runtime API loop (at AWS_LAMBDA_RUNTIME_API) with h. It does not return: when the
// Runtime API fails, aws-lambda-go ends the process and Lambda starts a new execution environment.
func Serve(h *Handler) {
	awslambda.Start(h)
}
