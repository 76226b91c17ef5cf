package activities_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/activities"
	"github.com/cordonhq/cordon/simcloud"
)

// The plan's permission check asks EC2 with DryRun: every answer is read,
// nothing changes, a denied call is named, a throttled one is retried.
func TestCheckPermissionsWithDryRun(t *testing.T) {
	h := seed(t)
	pf := must[activities.PreflightResult](h, h.acts.Preflight, activities.PreflightInput{Target: tgt, InstanceID: twoENI, ProtectTag: protectTag})
	h.cloud.ResetCalls()
	in := activities.PermissionsInput{Target: tgt, InstanceID: twoENI, PreState: pf.PreState}

	res := must[activities.PermissionsResult](h, h.acts.CheckPermissions, in)
	var calls []string
	for _, c := range res.Checks {
		require.Equal(t, "allowed", c.Result, "%s: %s", c.Call, c.Detail)
		calls = append(calls, c.Call)
	}
	require.Equal(t, []string{"ec2:CreateSecurityGroup", "ec2:ModifyNetworkInterfaceAttribute", "ec2:ModifyNetworkInterfaceAttribute",
		"ec2:ModifyInstanceAttribute", "ec2:CreateTags", "ec2:CreateImage", "ec2:TerminateInstances"}, calls, "one check per ENI")
	require.Empty(t, h.cloud.Mutations(), "DryRun changes nothing")
	require.Equal(t, "running", h.instance(twoENI).State)

	h.cloud.InjectFault("TerminateInstances", simcloud.APIError("UnauthorizedOperation", "You are not authorized to perform this operation. Encoded authorization failure message: ..."), 1)
	res = must[activities.PermissionsResult](h, h.acts.CheckPermissions, in)
	require.Equal(t, 1, res.Denied())
	last := res.Checks[len(res.Checks)-1]
	require.Equal(t, "ec2:TerminateInstances", last.Call)
	require.Equal(t, "denied", last.Result)
	require.Contains(t, last.Detail, "UnauthorizedOperation")

	h.cloud.InjectFault("CreateImage", simcloud.APIError("RequestLimitExceeded", "Request limit exceeded."), 1)
	_, err := run[activities.PermissionsResult](h, h.acts.CheckPermissions, in)
	requireRetryable(t, err)
}
