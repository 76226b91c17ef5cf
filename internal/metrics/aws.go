package metrics

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/activities"
)

// AWSCallsName is the counter of AWS API call attempts.
const AWSCallsName = "cordon_aws_calls_total"

// Outcomes of an AWS call attempt (the outcome label).
const (
	OutcomeOK          = "ok"
	OutcomeThrottled   = "throttled"    // throttling error code or HTTP 429
	OutcomeClientError = "client-error" // a refusal of the request: 4xx, or a code Cordon treats as permanent
	OutcomeServerError = "server-error" // 5xx
	OutcomeOther       = "other"        // no answer from AWS: network error, timeout, cancellation
)

// AWSCalls counts AWS API call attempts by service, operation and outcome.
// Every attempt counts, the SDK's own retries included: a call throttled
// once and then answered counts one "throttled" and one "ok".
type AWSCalls struct {
	vec *prometheus.CounterVec
}

// NewAWSCalls registers cordon_aws_calls_total{service,operation,outcome}
// in reg (or reuses the one already registered there).
func NewAWSCalls(reg prometheus.Registerer) (*AWSCalls, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: AWSCallsName,
		Help: "AWS API call attempts (each SDK retry counts) by service, operation and outcome: ok, throttled, client-error, server-error, other.",
	}, []string{"service", "operation", "outcome"})
	if err := reg.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		vec = existing
	}
	return &AWSCalls{vec: vec}, nil
}

// Option is the SDK stack option (aws.Config.APIOptions) that counts every
// attempt. It sits first in the Deserialize step, which runs once per
// attempt inside the SDK's retry loop, so it sees each attempt's error as
// the operation's deserializer made it (the AWS error code) and the HTTP
// status of the answer.
func (a *AWSCalls) Option() func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("cordon-aws-calls-metric",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				status := 0
				if r, ok := out.RawResponse.(*smithyhttp.Response); ok && r != nil && r.Response != nil {
					status = r.StatusCode
				}
				a.vec.WithLabelValues(middleware.GetServiceID(ctx), middleware.GetOperationName(ctx), AWSOutcome(err, status)).Inc()
				return out, md, err
			}), middleware.Before)
	}
}

// AWSOutcome classifies one attempt's result with the activities' error
// classification (activities.ErrorCode, activities.Classify) and the SDK's
// throttling codes, which include every throttling code of that table.
// status is the answer's HTTP status, 0 when there was none.
func AWSOutcome(err error, status int) string {
	if err == nil {
		return OutcomeOK
	}
	if status == 0 {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
	}
	code := activities.ErrorCode(err)
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok || status == http.StatusTooManyRequests {
		return OutcomeThrottled
	}
	if status >= 500 {
		return OutcomeServerError
	}
	if kind, _ := activities.Classify(err); kind == activities.NonRetryable || status >= 400 {
		// Permanent by Cordon's table, or a retryable refusal (a resource
		// in a transitional state, eventual consistency): AWS refused the
		// request as it stood.
		return OutcomeClientError
	}
	return OutcomeOther
}
