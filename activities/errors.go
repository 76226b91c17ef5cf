package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.temporal.io/sdk/temporal"
)

// Application error types. Workflows branch on ApplicationError.Type(), never
// on message text. Every non-retryable failure carries one of these.
const (
	// ErrInstanceGone: the instance is unknown or terminated.
	ErrInstanceGone = "InstanceGone"
	// ErrWrongState: the resource is in a state the call does not accept.
	ErrWrongState = "WrongState"
	// ErrNotPermitted: IAM or an EC2 guard refused the call.
	ErrNotPermitted = "NotPermitted"
	// ErrInvalidRequest: the request itself is wrong (bad parameter, bad ID).
	ErrInvalidRequest = "InvalidRequest"
	// ErrNoCapacity: AWS has no capacity for the launch right now.
	ErrNoCapacity = "NoCapacity"
	// ErrNotFound: a resource other than the instance does not exist.
	ErrNotFound = "NotFound"
	// ErrConfig: Cordon's configuration is missing something (no quarantine subnet, ...).
	ErrConfig = "ConfigError"
	// ErrTimeout: a wait (image available, group healed) ran out of time.
	ErrTimeout = "Timeout"
)

// Kind says how the workflow should treat an AWS error.
type Kind int

// Error kinds.
const (
	// Retryable errors are transient: throttling, 5xx, eventual consistency.
	Retryable Kind = iota
	// NonRetryable errors will fail again the same way.
	NonRetryable
)

type classification struct {
	kind    Kind
	appType string // application error type when non-retryable
}

// errorCodes maps AWS error codes to how Cordon treats them. Codes not listed
// are retried (Temporal's retry policy bounds that), because an unknown code
// is more often a transient service problem than a permanent one.
var errorCodes = map[string]classification{
	// Throttling and transient service errors: retry with backoff.
	"RequestLimitExceeded":               {Retryable, ""},
	"Throttling":                         {Retryable, ""},
	"ThrottlingException":                {Retryable, ""},
	"RequestThrottled":                   {Retryable, ""},
	"TooManyRequestsException":           {Retryable, ""},
	"InternalError":                      {Retryable, ""},
	"InternalFailure":                    {Retryable, ""},
	"ServiceUnavailable":                 {Retryable, ""},
	"Unavailable":                        {Retryable, ""},
	"InsufficientInstanceCapacity":       {Retryable, ""}, // capacity comes back; bounded by the step's retry policy
	"ResourceContention":                 {Retryable, ""},
	"ScalingActivityInProgress":          {Retryable, ""},
	"IncorrectInstanceState":             {Retryable, ""}, // often a transition in progress (pending → running)
	"InvalidAMIID.Unavailable":           {Retryable, ""},
	"InvalidInstanceID.NotFound":         {Retryable, ""}, // eventual consistency right after a create; callers that describe first map it to InstanceGone
	"InvalidAMIID.NotFound":              {Retryable, ""}, // eventual consistency right after CreateImage
	"InvalidNetworkInterfaceID.NotFound": {Retryable, ""},
	"IdempotentParameterMismatch":        {NonRetryable, ErrInvalidRequest},

	// Permanent: retrying cannot help.
	"InvalidInstanceID.Malformed":   {NonRetryable, ErrInvalidRequest},
	"InvalidAMIName.Duplicate":      {NonRetryable, ErrWrongState}, // callers treat it as success after describing by name
	"OperationNotPermitted":         {NonRetryable, ErrNotPermitted},
	"UnauthorizedOperation":         {NonRetryable, ErrNotPermitted},
	"AccessDenied":                  {NonRetryable, ErrNotPermitted},
	"AccessDeniedException":         {NonRetryable, ErrNotPermitted},
	"AuthFailure":                   {NonRetryable, ErrNotPermitted},
	"InvalidClientTokenId":          {NonRetryable, ErrNotPermitted},
	"UnrecognizedClientException":   {NonRetryable, ErrNotPermitted},
	"ExpiredToken":                  {NonRetryable, ErrNotPermitted},
	"InvalidParameterValue":         {NonRetryable, ErrInvalidRequest},
	"InvalidParameterCombination":   {NonRetryable, ErrInvalidRequest},
	"InvalidParameter":              {NonRetryable, ErrInvalidRequest},
	"MissingParameter":              {NonRetryable, ErrInvalidRequest},
	"ValidationError":               {NonRetryable, ErrInvalidRequest},
	"InvalidGroup.NotFound":         {NonRetryable, ErrNotFound},
	"InvalidSubnetID.NotFound":      {NonRetryable, ErrNotFound},
	"InvalidSnapshot.NotFound":      {NonRetryable, ErrNotFound},
	"InvalidSnapshot.InUse":         {NonRetryable, ErrWrongState},
	"TargetGroupNotFound":           {NonRetryable, ErrNotFound},
	"InvalidTarget":                 {NonRetryable, ErrInvalidRequest},
	"NotFound":                      {NonRetryable, ErrNotFound},
	"InvalidInstanceAttributeValue": {NonRetryable, ErrInvalidRequest},
	"InvalidAMIID.Malformed":        {NonRetryable, ErrInvalidRequest},
	"InvalidID":                     {NonRetryable, ErrInvalidRequest}, // CreateTags/DeleteTags with a malformed resource ID
	"InstanceLimitExceeded":         {NonRetryable, ErrNoCapacity},
	"VcpuLimitExceeded":             {NonRetryable, ErrNoCapacity},
	"Unsupported":                   {NonRetryable, ErrInvalidRequest},
	"DryRunOperation":               {NonRetryable, ErrInvalidRequest}, // only seen when DryRun is set; never retried
}

// ErrorCode returns the AWS error code of err, or "" when it carries none.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// Classify reports how Cordon treats err and, when non-retryable, the
// application error type.
func Classify(err error) (Kind, string) {
	if err == nil {
		return Retryable, ""
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Retryable, ""
	}
	if code := ErrorCode(err); code != "" {
		if c, ok := errorCodes[code]; ok {
			return c.kind, c.appType
		}
		// Every "<Resource>ID.Malformed" (InvalidGroupId.Malformed,
		// InvalidNetworkInterfaceID.Malformed, ...) is a bad request.
		if strings.HasSuffix(code, ".Malformed") {
			return NonRetryable, ErrInvalidRequest
		}
		// 5xx responses without a listed code are transient.
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			return Retryable, ""
		}
		return Retryable, ""
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Retryable, ""
	}
	return Retryable, ""
}

// wrap turns an AWS error into what the activity returns: retryable errors
// pass through (Temporal retries them with the step's policy); permanent
// ones become non-retryable application errors with a type from the list above.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	kind, appType := Classify(err)
	msg := fmt.Sprintf("%s: %v", op, err)
	if kind == NonRetryable {
		return temporal.NewNonRetryableApplicationError(msg, appType, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// permanent returns a non-retryable application error of the given type.
func permanent(appType, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), appType, nil)
}

// isTransport reports whether err is a network or deadline failure, not an
// answer from AWS.
func isTransport(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
