package activities

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// PermissionsInput names the instance a dry run plans for, with what
// preflight recorded about it.
type PermissionsInput struct {
	Target
	InstanceID string   `json:"instanceID"`
	PreState   PreState `json:"preState"`
}

// PermissionCheck is the answer of one EC2 call made with DryRun.
type PermissionCheck struct {
	Call string `json:"call"` // "ec2:CreateTags"
	// Result is "allowed" (DryRunOperation), "denied" (UnauthorizedOperation)
	// or "unknown" (another answer: see Detail).
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// PermissionsResult lists the checks in the order of the runbook.
type PermissionsResult struct {
	Checks []PermissionCheck `json:"checks"`
}

// Denied counts the denied checks.
func (r PermissionsResult) Denied() int {
	n := 0
	for _, c := range r.Checks {
		if c.Result == "denied" {
			n++
		}
	}
	return n
}

// CheckPermissions asks EC2 whether the worker's credentials may make the
// mutating EC2 calls an incident of this instance would make, with each
// call's DryRun flag: EC2 checks the permissions and parameters and changes
// nothing. Auto Scaling, Elastic Load Balancing and SNS have no DryRun; the
// IAM policy in deploy/ covers them. The quarantine copy's RunInstances is
// not checked: it needs the image the incident makes.
func (a *Activities) CheckPermissions(ctx context.Context, in PermissionsInput) (PermissionsResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return PermissionsResult{}, err
	}
	yes := aws.Bool(true)
	var res PermissionsResult
	var retry error // a throttled or failed call: the activity is retried
	check := func(op string, call func() error) {
		if retry != nil {
			return
		}
		err := call()
		if code := ErrorCode(err); err != nil && code != "DryRunOperation" && !deniedCode(code) {
			if kind, _ := Classify(err); kind == Retryable {
				retry = wrap(op+" (DryRun)", err)
				return
			}
		}
		res.Checks = append(res.Checks, dryRunAnswer("ec2:"+op, err))
	}
	ps := in.PreState
	check("CreateSecurityGroup", func() error {
		_, err := c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{DryRun: yes, VpcId: aws.String(ps.VPCID),
			GroupName: aws.String("cordon-permission-check"), Description: aws.String("Cordon dry-run permission check")})
		return err
	})
	for _, e := range ps.ENIs {
		check("ModifyNetworkInterfaceAttribute", func() error {
			_, err := c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: yes,
				NetworkInterfaceId: aws.String(e.ENIID), Groups: e.GroupIDs})
			return err
		})
	}
	check("ModifyInstanceAttribute", func() error {
		_, err := c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: yes, InstanceId: aws.String(in.InstanceID),
			DisableApiTermination: &ec2types.AttributeBooleanValue{Value: yes}})
		return err
	})
	check("CreateTags", func() error {
		_, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: yes, Resources: []string{in.InstanceID},
			Tags: []ec2types.Tag{{Key: aws.String("cordon:incident"), Value: aws.String("permission-check")}}})
		return err
	})
	check("CreateImage", func() error {
		_, err := c.EC2.CreateImage(ctx, &ec2.CreateImageInput{DryRun: yes, InstanceId: aws.String(in.InstanceID),
			Name: aws.String("cordon-permission-check"), NoReboot: yes})
		return err
	})
	check("TerminateInstances", func() error {
		_, err := c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{DryRun: yes, InstanceIds: []string{in.InstanceID}})
		return err
	})
	if retry != nil {
		return PermissionsResult{}, retry
	}
	return res, nil
}

func deniedCode(code string) bool {
	return code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException"
}

// dryRunAnswer reads the answer to a DryRun call.
func dryRunAnswer(call string, err error) PermissionCheck {
	switch code := ErrorCode(err); {
	case code == "DryRunOperation":
		return PermissionCheck{Call: call, Result: "allowed"}
	case deniedCode(code):
		return PermissionCheck{Call: call, Result: "denied", Detail: code + ": grant it (see deploy/iam-policy.json)"}
	case err == nil:
		// Nothing should succeed with DryRun; say so rather than call it allowed.
		return PermissionCheck{Call: call, Result: "unknown", Detail: "the call succeeded although DryRun was set"}
	default:
		return PermissionCheck{Call: call, Result: "unknown", Detail: fmt.Sprintf("%v", err)}
	}
}
