package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// sdkError wraps an API error the way the AWS SDK surfaces it: an
// OperationError around an HTTP ResponseError around the service's error.
func sdkError(status int, code, msg string) error {
	return &smithy.OperationError{
		ServiceID:     "EC2",
		OperationName: "CreateImage",
		Err: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: msg},
		},
	}
}

func TestClassify(t *testing.T) {
	refused := &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeInstances",
		Err: &smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://ec2.us-east-1.amazonaws.com/",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}}}

	tests := []struct {
		name    string
		err     error
		kind    Kind
		appType string
	}{
		{"unknown instance right after a launch is eventual consistency", sdkError(400, "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"), Retryable, ""},
		{"instance in transition", sdkError(400, "IncorrectInstanceState", "The instance is not in a state from which it can be modified."), Retryable, ""},
		{"duplicate image name", sdkError(400, "InvalidAMIName.Duplicate", "AMI name x is already in use by AMI ami-0123456789abcdef0"), NonRetryable, ErrWrongState},
		{"termination protection", sdkError(400, "OperationNotPermitted", "The instance may not be terminated."), NonRetryable, ErrNotPermitted},
		{"IAM refused", sdkError(403, "UnauthorizedOperation", "You are not authorized to perform this operation."), NonRetryable, ErrNotPermitted},
		{"throttled", sdkError(503, "RequestLimitExceeded", "Request limit exceeded."), Retryable, ""},
		{"no capacity right now", sdkError(500, "InsufficientInstanceCapacity", "We currently do not have sufficient capacity."), Retryable, ""},
		{"bad parameter", sdkError(400, "InvalidParameterValue", "Value (x) for parameter y is invalid."), NonRetryable, ErrInvalidRequest},
		{"malformed instance ID", sdkError(400, "InvalidInstanceID.Malformed", `Invalid id: "web-1"`), NonRetryable, ErrInvalidRequest},
		{"5xx with an unlisted code", sdkError(503, "SomethingNobodyListed", "try again"), Retryable, ""},
		{"code without the HTTP wrapper", fmt.Errorf("op: %w", &smithy.GenericAPIError{Code: "ValidationError", Message: "bad"}), NonRetryable, ErrInvalidRequest},
		{"connection refused (net.Error)", refused, Retryable, ""},
		{"bare net.Error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, Retryable, ""},
		{"context deadline", fmt.Errorf("describe: %w", context.DeadlineExceeded), Retryable, ""},
		{"plain error", errors.New("something odd"), Retryable, ""},
		{"nil", nil, Retryable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, appType := Classify(tc.err)
			require.Equal(t, tc.kind, kind, "kind")
			require.Equal(t, tc.appType, appType, "application error type")
		})
	}
}

func TestErrorCodeReadsThroughSDKWrapping(t *testing.T) {
	require.Equal(t, "RequestLimitExceeded", ErrorCode(sdkError(503, "RequestLimitExceeded", "slow down")))
	require.Equal(t, "", ErrorCode(errors.New("plain")))
	require.Equal(t, "", ErrorCode(nil))
}

// Workflows branch on ApplicationError.Type(): every permanent code must
// carry one, and every retryable code must not pretend to have one.
func TestEveryNonRetryableCodeHasAnApplicationType(t *testing.T) {
	known := map[string]bool{ErrInstanceGone: true, ErrWrongState: true, ErrNotPermitted: true, ErrInvalidRequest: true,
		ErrNoCapacity: true, ErrNotFound: true, ErrConfig: true, ErrTimeout: true}
	for code, c := range errorCodes {
		switch c.kind {
		case NonRetryable:
			require.NotEmpty(t, c.appType, "non-retryable code %s has no application error type", code)
			require.True(t, known[c.appType], "code %s maps to unknown application error type %q", code, c.appType)
		case Retryable:
			require.Empty(t, c.appType, "retryable code %s has an application error type", code)
		default:
			t.Fatalf("code %s has unknown kind %d", code, c.kind)
		}
	}
}

func TestWrap(t *testing.T) {
	require.NoError(t, wrap("CreateImage", nil))

	// Permanent: a non-retryable application error with the type, the AWS error kept as cause.
	err := wrap("TerminateInstances", sdkError(400, "OperationNotPermitted", "protected"))
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %T", err)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, ErrNotPermitted, appErr.Type())
	require.Contains(t, appErr.Error(), "TerminateInstances")
	require.Equal(t, "OperationNotPermitted", ErrorCode(err), "the AWS error stays reachable")

	// Transient: passes through as a plain wrapped error Temporal retries.
	err = wrap("CreateImage", sdkError(503, "RequestLimitExceeded", "slow down"))
	require.False(t, errors.As(err, &appErr), "a retryable error must not become an application error")
	require.Equal(t, "RequestLimitExceeded", ErrorCode(err))
	require.Contains(t, err.Error(), "CreateImage")
}
