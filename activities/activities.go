// Package activities holds Cordon's side effects: one idempotent AWS mutation
// per activity (read state first; deterministic names and client tokens),
// narrow AWS interfaces, error classification, and the operator notifier.
package activities

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"go.temporal.io/sdk/activity"
)

// Activities are Cordon's activities. Dependencies are injected at start-up.
type Activities struct {
	Cloud    CloudProvider
	Notifier *Notifier
	// PollInterval is how often the waits (image available, instance
	// running, group healed) describe the resource. Default 15 s, the
	// interval of the SDK's own waiters; the simulated cloud uses less.
	PollInterval time.Duration
	// ProtectedInstances are instance IDs no incident may touch, whatever
	// their tags (the worker's --protect-instance allowlist): preflight
	// reports them protected and the incident ends there.
	ProtectedInstances map[string]bool
}

// Names of the isolation security groups Cordon finds or creates per VPC.
const (
	IsolationGroupName  = "cordon-isolation"
	TransitionGroupName = "cordon-isolation-transition"
)

// Target is the account and region an activity acts in.
type Target struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// ENIState records one network interface's security groups before isolation.
type ENIState struct {
	ENIID    string   `json:"eniID"`
	GroupIDs []string `json:"groupIDs"`
}

// PreState is the pre-incident state recorded before isolation.
type PreState struct {
	InstanceState         string            `json:"instanceState"`
	VPCID                 string            `json:"vpcID"`
	SubnetID              string            `json:"subnetID"`
	InstanceType          string            `json:"instanceType"`
	ENIs                  []ENIState        `json:"enis"`
	AutoScalingGroup      string            `json:"autoScalingGroup,omitempty"`
	DesiredCapacity       int32             `json:"desiredCapacity,omitempty"`
	ProtectedFromScaleIn  bool              `json:"protectedFromScaleIn,omitempty"`
	TargetGroupARNs       []string          `json:"targetGroupARNs,omitempty"`
	TerminationProtection bool              `json:"terminationProtection"`
	Tags                  map[string]string `json:"tags,omitempty"`
}

func (a *Activities) clients(ctx context.Context, t Target) (Clients, error) {
	c, err := a.Cloud.Clients(ctx, t.Account, t.Region)
	if err != nil {
		// An AWS call made while setting up the clients (the credentials
		// check, sts:GetCallerIdentity) is classified like any other: a
		// throttled or dropped call is retried. Only a missing piece of
		// configuration (an account without a role) is permanent.
		if ErrorCode(err) != "" || isTransport(err) {
			return Clients{}, wrap(fmt.Sprintf("AWS clients for account %s region %s", t.Account, t.Region), err)
		}
		return Clients{}, permanent(ErrConfig, "no AWS clients for account %s region %s: %v", t.Account, t.Region, err)
	}
	return c, nil
}

func (a *Activities) poll() time.Duration {
	if a.PollInterval > 0 {
		return a.PollInterval
	}
	return 15 * time.Second
}

// ---------------------------------------------------------------------------
// Preflight

// PreflightInput names the instance to inspect.
type PreflightInput struct {
	Target
	InstanceID       string `json:"instanceID"`
	ProtectTag       string `json:"protectTag"`
	QuarantineSubnet string `json:"quarantineSubnet,omitempty"`
}

// PreflightResult is what preflight found. It changes nothing.
type PreflightResult struct {
	Found     bool   `json:"found"`
	State     string `json:"state,omitempty"`
	Protected bool   `json:"protected,omitempty"`
	// ProtectedBy says what protects it: "tag <key>" or "the worker's
	// instance allowlist".
	ProtectedBy string   `json:"protectedBy,omitempty"`
	PreState    PreState `json:"preState"`
	// QuarantineSubnetID is the subnet for the quarantine copy, "" if none is configured or tagged.
	QuarantineSubnetID string `json:"quarantineSubnetID,omitempty"`
	// GroupMembers lists the group's members before the incident, so the
	// replacements can be told apart afterwards.
	GroupMembers []string `json:"groupMembers,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// Preflight describes the instance (state, ENIs and their groups, Auto
// Scaling group, target groups, tags, termination protection) and finds the
// quarantine subnet of its VPC. An unknown or terminated instance is reported
// with Found=false, not as an error.
func (a *Activities) Preflight(ctx context.Context, in PreflightInput) (PreflightResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return PreflightResult{}, err
	}
	inst, err := describeInstance(ctx, c.EC2, in.InstanceID)
	if err != nil {
		if ErrorCode(err) == "InvalidInstanceID.NotFound" || ErrorCode(err) == "InvalidInstanceID.Malformed" {
			return PreflightResult{Found: false, State: "unknown"}, nil
		}
		return PreflightResult{}, wrap("DescribeInstances", err)
	}
	if inst == nil {
		return PreflightResult{Found: false, State: "unknown"}, nil
	}
	res := PreflightResult{Found: true, State: string(inst.State.Name)}
	if inst.State.Name == ec2types.InstanceStateNameTerminated || inst.State.Name == ec2types.InstanceStateNameShuttingDown {
		res.Found = false
		return res, nil
	}
	ps := PreState{
		InstanceState: string(inst.State.Name),
		VPCID:         aws.ToString(inst.VpcId),
		SubnetID:      aws.ToString(inst.SubnetId),
		InstanceType:  string(inst.InstanceType),
		Tags:          map[string]string{},
	}
	for _, t := range inst.Tags {
		ps.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if _, ok := ps.Tags[in.ProtectTag]; ok && in.ProtectTag != "" && !isFalse(ps.Tags[in.ProtectTag]) {
		res.Protected, res.ProtectedBy = true, "tag "+in.ProtectTag
	}
	if a.ProtectedInstances[in.InstanceID] {
		res.Protected, res.ProtectedBy = true, "the worker's instance allowlist (--protect-instance)"
	}
	enis := slices.Clone(inst.NetworkInterfaces)
	sort.Slice(enis, func(i, j int) bool {
		return deviceIndex(enis[i]) < deviceIndex(enis[j])
	})
	for _, n := range enis {
		st := ENIState{ENIID: aws.ToString(n.NetworkInterfaceId)}
		for _, g := range n.Groups {
			st.GroupIDs = append(st.GroupIDs, aws.ToString(g.GroupId))
		}
		ps.ENIs = append(ps.ENIs, st)
	}
	attr, err := c.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(in.InstanceID), Attribute: ec2types.InstanceAttributeNameDisableApiTermination,
	})
	if err != nil {
		return PreflightResult{}, wrap("DescribeInstanceAttribute", err)
	}
	if attr.DisableApiTermination != nil {
		ps.TerminationProtection = aws.ToBool(attr.DisableApiTermination.Value)
	}
	asi, err := c.AutoScaling.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{in.InstanceID}})
	if err != nil {
		return PreflightResult{}, wrap("DescribeAutoScalingInstances", err)
	}
	if len(asi.AutoScalingInstances) > 0 {
		m := asi.AutoScalingInstances[0]
		ps.AutoScalingGroup = aws.ToString(m.AutoScalingGroupName)
		ps.ProtectedFromScaleIn = aws.ToBool(m.ProtectedFromScaleIn)
		g, err := describeGroup(ctx, c.AutoScaling, ps.AutoScalingGroup)
		if err != nil {
			return PreflightResult{}, err
		}
		ps.DesiredCapacity = aws.ToInt32(g.DesiredCapacity)
		res.GroupMembers = members(g, "")
		for _, tg := range g.TargetGroupARNs {
			registered, err := isRegistered(ctx, c.ELBv2, tg, in.InstanceID)
			if err != nil {
				return PreflightResult{}, err
			}
			if registered {
				ps.TargetGroupARNs = append(ps.TargetGroupARNs, tg)
			}
		}
	}
	res.PreState = ps
	res.QuarantineSubnetID, err = quarantineSubnet(ctx, c.EC2, ps.VPCID, in.QuarantineSubnet)
	if err != nil {
		return PreflightResult{}, err
	}
	if res.QuarantineSubnetID == "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("no quarantine subnet: tag one subnet of %s with %s=true or set the policy's quarantineSubnet", ps.VPCID, "cordon:quarantine"))
	}
	return res, nil
}

func isFalse(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v == "false" || v == "no" || v == "0"
}

func deviceIndex(n ec2types.InstanceNetworkInterface) int32 {
	if n.Attachment == nil {
		return 0
	}
	return aws.ToInt32(n.Attachment.DeviceIndex)
}

func describeInstance(ctx context.Context, api EC2API, id string) (*ec2types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, err
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, nil
}

func describeGroup(ctx context.Context, api AutoScalingAPI, name string) (*astypes.AutoScalingGroup, error) {
	out, err := api.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return nil, wrap("DescribeAutoScalingGroups", err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil, permanent(ErrNotFound, "auto scaling group %s not found", name)
	}
	return &out.AutoScalingGroups[0], nil
}

func isRegistered(ctx context.Context, api ELBv2API, tg, instanceID string) (bool, error) {
	out, err := api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return false, wrap("DescribeTargetHealth", err)
	}
	for _, d := range out.TargetHealthDescriptions {
		if d.Target != nil && aws.ToString(d.Target.Id) == instanceID {
			if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumDraining {
				continue
			}
			return true, nil
		}
	}
	return false, nil
}

func quarantineSubnet(ctx context.Context, api EC2API, vpc, override string) (string, error) {
	if override != "" {
		out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{override}})
		if err != nil {
			return "", wrap("DescribeSubnets", err)
		}
		if len(out.Subnets) == 0 {
			return "", permanent(ErrConfig, "quarantine subnet %s does not exist", override)
		}
		return override, nil
	}
	if vpc == "" {
		return "", nil
	}
	out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("tag:cordon:quarantine"), Values: []string{"true"}},
	}})
	if err != nil {
		return "", wrap("DescribeSubnets", err)
	}
	if len(out.Subnets) == 0 {
		return "", nil
	}
	ids := make([]string, 0, len(out.Subnets))
	for _, s := range out.Subnets {
		ids = append(ids, aws.ToString(s.SubnetId))
	}
	sort.Strings(ids)
	return ids[0], nil
}

// ---------------------------------------------------------------------------
// Isolation

// IsolationGroupsInput names the VPC whose isolation groups to find or create.
type IsolationGroupsInput struct {
	Target
	VPCID string `json:"vpcID"`
}

// IsolationGroupsResult holds the two groups of the two-step swap.
type IsolationGroupsResult struct {
	// TransitionGroupID allows all traffic both ways: swapping to it first
	// turns tracked connections into untracked ones.
	TransitionGroupID string `json:"transitionGroupID"`
	// IsolationGroupID has no rules at all: swapping to it then cuts every
	// untracked flow at once.
	IsolationGroupID string `json:"isolationGroupID"`
}

// EnsureIsolationGroups finds the isolation groups of a VPC by name, and
// creates the missing ones (idempotent: the name is the key).
func (a *Activities) EnsureIsolationGroups(ctx context.Context, in IsolationGroupsInput) (IsolationGroupsResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return IsolationGroupsResult{}, err
	}
	iso, err := ensureGroup(ctx, c.EC2, in.VPCID, IsolationGroupName, "Cordon isolation: no traffic at all", false)
	if err != nil {
		return IsolationGroupsResult{}, err
	}
	tr, err := ensureGroup(ctx, c.EC2, in.VPCID, TransitionGroupName, "Cordon isolation step 1: all traffic untracked", true)
	if err != nil {
		return IsolationGroupsResult{}, err
	}
	return IsolationGroupsResult{TransitionGroupID: tr, IsolationGroupID: iso}, nil
}

func ensureGroup(ctx context.Context, api EC2API, vpc, name, desc string, allowAll bool) (string, error) {
	find := func() (*ec2types.SecurityGroup, error) {
		out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpc}},
			{Name: aws.String("group-name"), Values: []string{name}},
		}})
		if err != nil {
			return nil, wrap("DescribeSecurityGroups", err)
		}
		if len(out.SecurityGroups) > 0 {
			return &out.SecurityGroups[0], nil
		}
		return nil, nil
	}
	g, err := find()
	if err != nil {
		return "", err
	}
	if g == nil {
		out, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), Description: aws.String(desc), VpcId: aws.String(vpc),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
				Tags: []ec2types.Tag{{Key: aws.String("cordon:managed"), Value: aws.String("true")}}}},
		})
		switch {
		case err == nil:
			// A new group has no inbound rule and AWS's default outbound
			// rule allowing all IPv4 traffic.
			g = &ec2types.SecurityGroup{GroupId: out.GroupId, IpPermissionsEgress: []ec2types.IpPermission{{
				IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}
		case ErrorCode(err) == "InvalidGroup.Duplicate": // a retry after a lost response
			g, err = find()
			if err != nil {
				return "", err
			}
			if g == nil {
				return "", fmt.Errorf("CreateSecurityGroup: %s exists but is not described yet", name)
			}
		default:
			return "", wrap("CreateSecurityGroup", err)
		}
	}
	id := aws.ToString(g.GroupId)
	// Set the rules on a found group too: an earlier attempt may have
	// created it and failed before its rules were set, and a group of that
	// name made or edited by someone else must not keep a rule that lets
	// traffic through.
	if allowAll {
		return id, allowAllTraffic(ctx, api, id, g)
	}
	return id, revokeAllRules(ctx, api, id, g)
}

// allowAllTraffic makes the transition group allow all traffic in both
// directions, IPv4 and IPv6: only flows such a group allows both ways become
// untracked, so that the second swap cuts them at once.
func allowAllTraffic(ctx context.Context, api EC2API, id string, g *ec2types.SecurityGroup) error {
	if missing := missingAllTraffic(g.IpPermissions); len(missing) > 0 {
		_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: missing})
		if err != nil && ErrorCode(err) != "InvalidPermission.Duplicate" {
			return wrap("AuthorizeSecurityGroupIngress", err)
		}
	}
	if missing := missingAllTraffic(g.IpPermissionsEgress); len(missing) > 0 {
		_, err := api.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: missing})
		if err != nil && ErrorCode(err) != "InvalidPermission.Duplicate" {
			return wrap("AuthorizeSecurityGroupEgress", err)
		}
	}
	return nil
}

// revokeAllRules leaves the isolation group with no rule in either direction.
func revokeAllRules(ctx context.Context, api EC2API, id string, g *ec2types.SecurityGroup) error {
	if len(g.IpPermissions) > 0 {
		_, err := api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: g.IpPermissions})
		if err != nil && ErrorCode(err) != "InvalidPermission.NotFound" {
			return wrap("RevokeSecurityGroupIngress", err)
		}
	}
	if len(g.IpPermissionsEgress) > 0 {
		_, err := api.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: g.IpPermissionsEgress})
		if err != nil && ErrorCode(err) != "InvalidPermission.NotFound" {
			return wrap("RevokeSecurityGroupEgress", err)
		}
	}
	return nil
}

// missingAllTraffic returns the all-traffic permissions (IPv4 0.0.0.0/0,
// IPv6 ::/0) that perms lack; nil when both are there.
func missingAllTraffic(perms []ec2types.IpPermission) []ec2types.IpPermission {
	var has4, has6 bool
	for _, p := range perms {
		if aws.ToString(p.IpProtocol) != "-1" {
			continue
		}
		for _, r := range p.IpRanges {
			has4 = has4 || aws.ToString(r.CidrIp) == "0.0.0.0/0"
		}
		for _, r := range p.Ipv6Ranges {
			has6 = has6 || aws.ToString(r.CidrIpv6) == "::/0"
		}
	}
	p := ec2types.IpPermission{IpProtocol: aws.String("-1")}
	if !has4 {
		p.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}
	}
	if !has6 {
		p.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}
	}
	if has4 && has6 {
		return nil
	}
	return []ec2types.IpPermission{p}
}

// InstanceGroupInput names an instance and its Auto Scaling group.
type InstanceGroupInput struct {
	Target
	InstanceID string `json:"instanceID"`
	Group      string `json:"group"`
}

// DetachFromGroup detaches the instance from its Auto Scaling group without
// decrementing the desired capacity, so the group starts a replacement at
// once and the instance leaves the group's load balancers. Idempotent: an
// instance that is no longer a member is a success.
func (a *Activities) DetachFromGroup(ctx context.Context, in InstanceGroupInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	out, err := c.AutoScaling.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{in.InstanceID}})
	if err != nil {
		return wrap("DescribeAutoScalingInstances", err)
	}
	if len(out.AutoScalingInstances) == 0 {
		return nil
	}
	switch astypes.LifecycleState(aws.ToString(out.AutoScalingInstances[0].LifecycleState)) {
	case astypes.LifecycleStateDetaching, astypes.LifecycleStateDetached:
		// Detached by an earlier attempt; still listed while its target
		// groups drain it. DetachInstances would now fail ValidationError.
		return nil
	}
	_, err = c.AutoScaling.DetachInstances(ctx, &autoscaling.DetachInstancesInput{
		AutoScalingGroupName:           aws.String(in.Group),
		InstanceIds:                    []string{in.InstanceID},
		ShouldDecrementDesiredCapacity: aws.Bool(false),
	})
	return wrap("DetachInstances", err)
}

// TargetsInput names an instance and target groups.
type TargetsInput struct {
	Target
	InstanceID      string   `json:"instanceID"`
	TargetGroupARNs []string `json:"targetGroupARNs"`
}

// DeregisterTargets removes the instance from target groups (a detach does
// this for the group's own target groups; this covers targets registered by
// hand). Deregistering a target that is not registered is a no-op on AWS.
func (a *Activities) DeregisterTargets(ctx context.Context, in TargetsInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	for _, tg := range in.TargetGroupARNs {
		registered, err := isRegistered(ctx, c.ELBv2, tg, in.InstanceID)
		if err != nil {
			return err
		}
		if !registered {
			continue
		}
		_, err = c.ELBv2.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{
			TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(in.InstanceID)}},
		})
		if err != nil {
			return wrap("DeregisterTargets", err)
		}
	}
	return nil
}

// RegisterTargets puts the instance back into target groups (release).
func (a *Activities) RegisterTargets(ctx context.Context, in TargetsInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	for _, tg := range in.TargetGroupARNs {
		_, err = c.ELBv2.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
			TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(in.InstanceID)}},
		})
		if err != nil {
			return wrap("RegisterTargets", err)
		}
	}
	return nil
}

// ENIGroupsInput sets the security groups of one network interface.
type ENIGroupsInput struct {
	Target
	ENIID    string   `json:"eniID"`
	GroupIDs []string `json:"groupIDs"`
}

// SetENIGroups replaces the security groups of one network interface. It is
// per ENI because the instance-level call fails on instances with several
// interfaces. Setting the same groups twice is harmless.
func (a *Activities) SetENIGroups(ctx context.Context, in ENIGroupsInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	_, err = c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(in.ENIID), Groups: in.GroupIDs,
	})
	return wrap("ModifyNetworkInterfaceAttribute", err)
}

// TerminationProtectionInput turns termination protection on or off.
type TerminationProtectionInput struct {
	Target
	InstanceID string `json:"instanceID"`
	Enabled    bool   `json:"enabled"`
}

// SetTerminationProtection sets the instance's DisableApiTermination flag.
func (a *Activities) SetTerminationProtection(ctx context.Context, in TerminationProtectionInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	_, err = c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(in.InstanceID), DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(in.Enabled)},
	})
	return wrap("ModifyInstanceAttribute", err)
}

// TagsInput adds or removes tags on resources.
type TagsInput struct {
	Target
	ResourceIDs []string          `json:"resourceIDs"`
	Tags        map[string]string `json:"tags"`
}

func ec2Tags(m map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}

// TagResources adds tags (CreateTags overwrites, so it is idempotent).
func (a *Activities) TagResources(ctx context.Context, in TagsInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	_, err = c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: in.ResourceIDs, Tags: ec2Tags(in.Tags)})
	return wrap("CreateTags", err)
}

// UntagResources removes the tag keys of in.Tags (release removes what the
// incident added).
func (a *Activities) UntagResources(ctx context.Context, in TagsInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	tags := make([]ec2types.Tag, 0, len(in.Tags))
	for _, t := range ec2Tags(in.Tags) {
		tags = append(tags, ec2types.Tag{Key: t.Key})
	}
	_, err = c.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: in.ResourceIDs, Tags: tags})
	return wrap("DeleteTags", err)
}

// ---------------------------------------------------------------------------
// Evidence

// CreateImageInput images an instance.
type CreateImageInput struct {
	Target
	InstanceID string            `json:"instanceID"`
	Name       string            `json:"name"` // deterministic: the idempotency key
	Tags       map[string]string `json:"tags"`
}

// CreateImageResult names the image.
type CreateImageResult struct {
	ImageID string `json:"imageID"`
}

// CreateImage images the instance with NoReboot (a reboot would destroy
// memory, processes and network state). CreateImage has no client token, so
// the deterministic name is the idempotency key: an image with that name is
// looked up first, and "name already exists" after a lost response is
// resolved by looking it up again.
func (a *Activities) CreateImage(ctx context.Context, in CreateImageInput) (CreateImageResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return CreateImageResult{}, err
	}
	if id, err := imageByName(ctx, c.EC2, in.Name); err != nil || id != "" {
		return CreateImageResult{ImageID: id}, err
	}
	tags := ec2Tags(in.Tags)
	out, err := c.EC2.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:  aws.String(in.InstanceID),
		Name:        aws.String(in.Name),
		Description: aws.String("Cordon evidence image of " + in.InstanceID),
		NoReboot:    aws.Bool(true),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: tags},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags},
		},
	})
	if err != nil {
		if ErrorCode(err) == "InvalidAMIName.Duplicate" {
			id, ferr := imageByName(ctx, c.EC2, in.Name)
			if ferr == nil && id != "" {
				return CreateImageResult{ImageID: id}, nil
			}
			// Not visible yet (eventual consistency): retry the activity.
			return CreateImageResult{}, fmt.Errorf("CreateImage: %s exists but is not described yet: %w", in.Name, err)
		}
		if ErrorCode(err) == "IncorrectInstanceState" {
			return CreateImageResult{}, wrap("CreateImage", err)
		}
		return CreateImageResult{}, wrap("CreateImage", err)
	}
	return CreateImageResult{ImageID: aws.ToString(out.ImageId)}, nil
}

func imageByName(ctx context.Context, api EC2API, name string) (string, error) {
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		return "", wrap("DescribeImages", err)
	}
	for _, im := range out.Images {
		if im.State == ec2types.ImageStateDeregistered {
			continue
		}
		return aws.ToString(im.ImageId), nil
	}
	return "", nil
}

// ImageInput names an image.
type ImageInput struct {
	Target
	ImageID string `json:"imageID"`
}

// ImageResult reports an image's snapshots.
type ImageResult struct {
	State       string   `json:"state"`
	SnapshotIDs []string `json:"snapshotIDs"`
}

// WaitImageAvailable polls until the image is available, heartbeating each
// poll, so a crashed worker's wait is picked up by another within the
// heartbeat timeout. Imaging can take hours: the workflow gives it a long
// schedule-to-close, never one SDK waiter call.
func (a *Activities) WaitImageAvailable(ctx context.Context, in ImageInput) (ImageResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return ImageResult{}, err
	}
	hb := keepAlive(ctx)
	defer hb.stop()
	for {
		out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{in.ImageID}})
		if err != nil {
			return ImageResult{}, wrap("DescribeImages", err)
		}
		if len(out.Images) == 0 {
			return ImageResult{}, fmt.Errorf("image %s not described yet", in.ImageID)
		}
		im := out.Images[0]
		res := ImageResult{State: string(im.State), SnapshotIDs: snapshotIDs(im)}
		switch im.State {
		case ec2types.ImageStateAvailable:
			return res, nil
		case ec2types.ImageStateFailed, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered, ec2types.ImageStateError:
			reason := ""
			if im.StateReason != nil {
				reason = aws.ToString(im.StateReason.Message)
			}
			return res, permanent(ErrWrongState, "image %s is %s: %s", in.ImageID, im.State, reason)
		}
		hb.beat(string(im.State))
		if err := sleep(ctx, a.poll()); err != nil {
			return res, err
		}
	}
}

func snapshotIDs(im ec2types.Image) []string {
	var ids []string
	for _, bd := range im.BlockDeviceMappings {
		if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
			ids = append(ids, aws.ToString(bd.Ebs.SnapshotId))
		}
	}
	sort.Strings(ids)
	return ids
}

// WaitHeartbeatTimeout is the heartbeat timeout of the waits (image
// available, instance running, group healed). They heartbeat every
// keepAliveEvery from a goroutine of their own, also while a describe call
// is slow (throttled and retried), so the server notices a dead worker
// within this time and another worker resumes the wait.
const WaitHeartbeatTimeout = 30 * time.Second

// Variables for tests.
var (
	keepAliveEvery  = 10 * time.Second
	isActivity      = activity.IsActivity
	recordHeartbeat = activity.RecordHeartbeat
)

// pulse heartbeats an activity every keepAliveEvery with the latest detail
// until stopped.
type pulse struct {
	ctx  context.Context
	last atomic.Value // string
	done chan struct{}
}

// keepAlive starts a pulse; call beat to record progress and stop when the
// wait returns.
func keepAlive(ctx context.Context) *pulse {
	p := &pulse{ctx: ctx, done: make(chan struct{})}
	p.last.Store("waiting")
	if !isActivity(ctx) {
		return p
	}
	go func() {
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				recordHeartbeat(ctx, p.last.Load())
			}
		}
	}()
	return p
}

// beat records progress now and as the detail of later pulses.
func (p *pulse) beat(detail string) {
	p.last.Store(detail)
	if isActivity(p.ctx) {
		recordHeartbeat(p.ctx, detail)
	}
}

func (p *pulse) stop() { close(p.done) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// LaunchCopyInput launches the quarantine copy.
type LaunchCopyInput struct {
	Target
	ImageID      string            `json:"imageID"`
	SubnetID     string            `json:"subnetID"`
	GroupID      string            `json:"groupID"`
	InstanceType string            `json:"instanceType"`
	ClientToken  string            `json:"clientToken"` // derived from the incident: the idempotency key
	Tags         map[string]string `json:"tags"`
}

// LaunchCopyResult names the quarantine copy.
type LaunchCopyResult struct {
	InstanceID string `json:"instanceID"`
}

// LaunchQuarantineCopy launches the image into the quarantine subnet with
// only the isolation group, no instance profile and no public address. The
// client token makes a retry after a lost response return the same instance.
func (a *Activities) LaunchQuarantineCopy(ctx context.Context, in LaunchCopyInput) (LaunchCopyResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return LaunchCopyResult{}, err
	}
	if in.SubnetID == "" {
		return LaunchCopyResult{}, permanent(ErrConfig, "no quarantine subnet: tag a subnet of the instance's VPC with cordon:quarantine=true")
	}
	// Describe before acting: a copy launched by an earlier attempt carries
	// the client token as a tag. RunInstances' ClientToken alone covers a
	// retry on AWS, but not an emulator that ignores it (moto), and the tag
	// lets an operator find the copy of an incident.
	if in.ClientToken != "" {
		if id, err := instanceByClientToken(ctx, c.EC2, in.ClientToken); err != nil || id != "" {
			return LaunchCopyResult{InstanceID: id}, err
		}
	}
	tagMap := make(map[string]string, len(in.Tags)+1)
	for k, v := range in.Tags {
		tagMap[k] = v
	}
	if in.ClientToken != "" {
		tagMap[ClientTokenTag] = in.ClientToken
	}
	tags := ec2Tags(tagMap)
	out, err := c.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:      aws.String(in.ImageID),
		InstanceType: ec2types.InstanceType(in.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		ClientToken:  aws.String(in.ClientToken),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex:              aws.Int32(0),
			SubnetId:                 aws.String(in.SubnetID),
			Groups:                   []string{in.GroupID},
			AssociatePublicIpAddress: aws.Bool(false),
			DeleteOnTermination:      aws.Bool(true),
		}},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tags},
		},
	})
	if err != nil {
		return LaunchCopyResult{}, wrap("RunInstances", err)
	}
	if len(out.Instances) == 0 {
		return LaunchCopyResult{}, fmt.Errorf("RunInstances returned no instance")
	}
	return LaunchCopyResult{InstanceID: aws.ToString(out.Instances[0].InstanceId)}, nil
}

// ClientTokenTag carries the RunInstances client token on the quarantine copy.
const ClientTokenTag = "cordon:client-token"

// instanceByClientToken returns the live instance launched with token, or "".
func instanceByClientToken(ctx context.Context, api EC2API, token string) (string, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + ClientTokenTag), Values: []string{token}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil {
		return "", wrap("DescribeInstances", err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	sort.Strings(ids)
	return ids[0], nil
}

// InstanceInput names an instance.
type InstanceInput struct {
	Target
	InstanceID string `json:"instanceID"`
}

// WaitInstanceRunning polls until the instance runs (heartbeating).
func (a *Activities) WaitInstanceRunning(ctx context.Context, in InstanceInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	hb := keepAlive(ctx)
	defer hb.stop()
	for {
		inst, err := describeInstance(ctx, c.EC2, in.InstanceID)
		if err != nil {
			return wrap("DescribeInstances", err)
		}
		if inst != nil {
			switch inst.State.Name {
			case ec2types.InstanceStateNameRunning:
				return nil
			case ec2types.InstanceStateNameTerminated, ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameStopped, ec2types.InstanceStateNameStopping:
				reason := ""
				if inst.StateReason != nil {
					reason = aws.ToString(inst.StateReason.Message)
				}
				return permanent(ErrWrongState, "instance %s is %s, not running: %s", in.InstanceID, inst.State.Name, reason)
			}
			hb.beat(string(inst.State.Name))
		}
		if err := sleep(ctx, a.poll()); err != nil {
			return err
		}
	}
}

// TerminateInput names the instance to terminate.
type TerminateInput struct {
	Target
	InstanceID string `json:"instanceID"`
	// LiftProtection turns termination protection off first (Cordon set it
	// during isolation).
	LiftProtection bool `json:"liftProtection,omitempty"`
}

// TerminateInstance terminates an instance, first lifting termination
// protection when asked. An instance already shutting down or terminated
// (or long gone) is a success, so a retry or a race with the group is safe.
func (a *Activities) TerminateInstance(ctx context.Context, in TerminateInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	inst, err := describeInstance(ctx, c.EC2, in.InstanceID)
	if ErrorCode(err) == "InvalidInstanceID.NotFound" || (err == nil && inst == nil) {
		return nil
	}
	if err != nil {
		return wrap("DescribeInstances", err)
	}
	if inst.State.Name == ec2types.InstanceStateNameTerminated || inst.State.Name == ec2types.InstanceStateNameShuttingDown {
		return nil
	}
	if in.LiftProtection {
		if _, err := c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
			InstanceId: aws.String(in.InstanceID), DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(false)},
		}); err != nil {
			return wrap("ModifyInstanceAttribute", err)
		}
	}
	_, err = c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{in.InstanceID}})
	if ErrorCode(err) == "InvalidInstanceID.NotFound" {
		return nil // already gone long ago
	}
	return wrap("TerminateInstances", err)
}

// HealInput names the group to watch.
type HealInput struct {
	Target
	Group string `json:"group"`
	// Desired is the capacity the group must reach; 0 means the group's own.
	Desired int32 `json:"desired"`
	// Exclude is the quarantined instance, which no longer counts.
	Exclude string `json:"exclude"`
	// TargetGroupARNs, when set, must also report the new members healthy.
	TargetGroupARNs []string `json:"targetGroupARNs,omitempty"`
}

// HealResult reports the healed group.
type HealResult struct {
	InService int32 `json:"inService"`
	Desired   int32 `json:"desired"`
	// Members lists the group's members other than the excluded instance.
	Members []string `json:"members"`
}

// WaitGroupHealed polls until the group has at least Desired InService and
// healthy members other than the excluded instance, heartbeating the count.
func (a *Activities) WaitGroupHealed(ctx context.Context, in HealInput) (HealResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return HealResult{}, err
	}
	hb := keepAlive(ctx)
	defer hb.stop()
	for {
		g, err := describeGroup(ctx, c.AutoScaling, in.Group)
		if err != nil {
			return HealResult{}, err
		}
		desired := in.Desired
		if desired == 0 {
			desired = aws.ToInt32(g.DesiredCapacity)
		}
		healthy := map[string]bool{}
		for _, tg := range in.TargetGroupARNs {
			out, err := c.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
			if err != nil {
				return HealResult{}, wrap("DescribeTargetHealth", err)
			}
			for _, d := range out.TargetHealthDescriptions {
				if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
					healthy[aws.ToString(d.Target.Id)] = true
				}
			}
		}
		var res HealResult
		res.Desired = desired
		for _, m := range g.Instances {
			id := aws.ToString(m.InstanceId)
			if id == in.Exclude || m.LifecycleState != astypes.LifecycleStateInService || aws.ToString(m.HealthStatus) != "Healthy" {
				continue
			}
			if len(in.TargetGroupARNs) > 0 && !healthy[id] {
				continue
			}
			res.InService++
		}
		res.Members = members(g, in.Exclude)
		if res.InService >= desired {
			return res, nil
		}
		hb.beat(fmt.Sprintf("%d/%d in service", res.InService, desired))
		if err := sleep(ctx, a.poll()); err != nil {
			return res, err
		}
	}
}

// members lists the group's member instance IDs except exclude, sorted.
func members(g *astypes.AutoScalingGroup, exclude string) []string {
	var ids []string
	for _, m := range g.Instances {
		if id := aws.ToString(m.InstanceId); id != exclude {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// DeregisterImageResult reports what cleanup removed.
type DeregisterImageResult struct {
	SnapshotIDs []string `json:"snapshotIDs"`
}

// DeregisterImage deregisters the evidence image and, by policy, deletes its
// snapshots (default: keep them; they are the disk evidence). An image that
// is already gone is a success.
func (a *Activities) DeregisterImage(ctx context.Context, in ImageInput) (DeregisterImageResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return DeregisterImageResult{}, err
	}
	out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{in.ImageID}})
	if err != nil && ErrorCode(err) != "InvalidAMIID.NotFound" {
		return DeregisterImageResult{}, wrap("DescribeImages", err)
	}
	var res DeregisterImageResult
	if out != nil && len(out.Images) > 0 && out.Images[0].State != ec2types.ImageStateDeregistered {
		res.SnapshotIDs = snapshotIDs(out.Images[0])
		_, err = c.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(in.ImageID)})
		if err != nil && ErrorCode(err) != "InvalidAMIID.NotFound" && ErrorCode(err) != "InvalidAMIID.Unavailable" {
			return res, wrap("DeregisterImage", err)
		}
	}
	return res, nil
}

// SnapshotsInput names snapshots.
type SnapshotsInput struct {
	Target
	SnapshotIDs []string `json:"snapshotIDs"`
}

// DeleteSnapshots deletes snapshots; one already gone is a success.
func (a *Activities) DeleteSnapshots(ctx context.Context, in SnapshotsInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	for _, id := range in.SnapshotIDs {
		_, err := c.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		if err != nil && ErrorCode(err) != "InvalidSnapshot.NotFound" {
			return wrap("DeleteSnapshot", err)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Release

// AttachInput re-attaches an instance to its group (release).
type AttachInput struct {
	Target
	InstanceID string `json:"instanceID"`
	Group      string `json:"group"`
	// Desired is the recorded pre-incident desired capacity to return to.
	Desired int32 `json:"desired"`
	// ProtectedFromScaleIn is the instance's recorded scale-in protection.
	ProtectedFromScaleIn bool `json:"protectedFromScaleIn"`
	// Before lists the group's members before the incident: they are never
	// taken as the replacement to scale in.
	Before []string `json:"before,omitempty"`
}

// pickReplacement chooses the member to terminate after a release: the newest
// member launched during the incident (not a member before it), not
// protected from scale-in, not the released instance, and not carrying a
// cordon:incident tag (another incident's instance being released). None yet
// is a retryable error: the group may still be launching it.
func pickReplacement(ctx context.Context, c Clients, g *astypes.AutoScalingGroup, in AttachInput) (string, error) {
	var ids []string
	for _, m := range g.Instances {
		id := aws.ToString(m.InstanceId)
		if id == in.InstanceID || slices.Contains(in.Before, id) || aws.ToBool(m.ProtectedFromScaleIn) {
			continue
		}
		if m.LifecycleState != astypes.LifecycleStateInService && m.LifecycleState != astypes.LifecycleStatePending {
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("no replacement in %s to scale in yet; retrying", in.Group)
	}
	out, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		return "", wrap("DescribeInstances", err)
	}
	best, bestLaunch := "", time.Time{}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			tagged := slices.ContainsFunc(inst.Tags, func(t ec2types.Tag) bool { return aws.ToString(t.Key) == "cordon:incident" })
			if tagged {
				continue
			}
			if lt := aws.ToTime(inst.LaunchTime); best == "" || lt.After(bestLaunch) || (lt.Equal(bestLaunch) && aws.ToString(inst.InstanceId) > best) {
				best, bestLaunch = aws.ToString(inst.InstanceId), lt
			}
		}
	}
	if best == "" {
		return "", fmt.Errorf("no untagged replacement in %s to scale in yet; retrying", in.Group)
	}
	return best, nil
}

// AttachToGroup puts the instance back into its group. AttachInstances adds
// one to the desired capacity; the released instance is protected from
// scale-in, one replacement launched during the incident is terminated with
// the desired capacity decremented, and the recorded protection is restored.
// Each call checks state first, so a retry is harmless.
func (a *Activities) AttachToGroup(ctx context.Context, in AttachInput) error {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return err
	}
	out, err := c.AutoScaling.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{in.InstanceID}})
	if err != nil {
		return wrap("DescribeAutoScalingInstances", err)
	}
	member := ""
	if len(out.AutoScalingInstances) > 0 {
		m := out.AutoScalingInstances[0]
		switch astypes.LifecycleState(aws.ToString(m.LifecycleState)) {
		case astypes.LifecycleStateDetaching, astypes.LifecycleStateDetached:
			// Still draining from the incident's detach: attaching now
			// would be skipped and the instance would then drop out of the
			// group. Retry (Temporal's backoff) until the detach is done.
			return fmt.Errorf("instance %s is still detaching from %s; retrying", in.InstanceID, aws.ToString(m.AutoScalingGroupName))
		}
		member = aws.ToString(m.AutoScalingGroupName)
	}
	if member == "" {
		if _, err := c.AutoScaling.AttachInstances(ctx, &autoscaling.AttachInstancesInput{
			AutoScalingGroupName: aws.String(in.Group), InstanceIds: []string{in.InstanceID},
		}); err != nil {
			return wrap("AttachInstances", err)
		}
	}
	// Protect the released instance first: from here on no scale-in, ours
	// or another release's, can pick it.
	if _, err := c.AutoScaling.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{
		AutoScalingGroupName: aws.String(in.Group), InstanceIds: []string{in.InstanceID}, ProtectedFromScaleIn: aws.Bool(true),
	}); err != nil {
		return wrap("SetInstanceProtection", err)
	}
	g, err := describeGroup(ctx, c.AutoScaling, in.Group)
	if err != nil {
		return err
	}
	if in.Desired > 0 && aws.ToInt32(g.DesiredCapacity) > in.Desired {
		// Attaching added one to the desired capacity. Take it back by
		// terminating a replacement the group launched during the incident,
		// never by lowering the desired capacity: that would let the group
		// pick any unprotected member, such as an instance another release
		// is re-attaching at the same moment.
		victim, err := pickReplacement(ctx, c, g, in)
		if err != nil {
			return err
		}
		if _, err := c.AutoScaling.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(true),
		}); err != nil {
			return wrap("TerminateInstanceInAutoScalingGroup", err)
		}
	}
	_, err = c.AutoScaling.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{
		AutoScalingGroupName: aws.String(in.Group), InstanceIds: []string{in.InstanceID}, ProtectedFromScaleIn: aws.Bool(in.ProtectedFromScaleIn),
	})
	return wrap("SetInstanceProtection", err)
}

// GroupMembersInput names a group.
type GroupMembersInput struct {
	Target
	Group string `json:"group"`
}

// GroupMembers lists a group's member instance IDs, sorted.
func (a *Activities) GroupMembers(ctx context.Context, in GroupMembersInput) ([]string, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	g, err := describeGroup(ctx, c.AutoScaling, in.Group)
	if err != nil {
		return nil, err
	}
	return members(g, ""), nil
}

// CapacityInput names a group and the instances not to count.
type CapacityInput struct {
	Target
	Group   string   `json:"group"`
	Exclude []string `json:"exclude"`
}

// CapacityResult counts a group's healthy in-service instances.
type CapacityResult struct {
	Healthy int `json:"healthy"`
}

// GroupCapacity counts the group's members that are InService, Healthy and
// (when the group has target groups) a healthy target in every one of them,
// leaving out the excluded instances. The governor uses it to never take the
// last healthy instance out of service.
func (a *Activities) GroupCapacity(ctx context.Context, in CapacityInput) (CapacityResult, error) {
	c, err := a.clients(ctx, in.Target)
	if err != nil {
		return CapacityResult{}, err
	}
	g, err := describeGroup(ctx, c.AutoScaling, in.Group)
	if err != nil {
		return CapacityResult{}, err
	}
	healthyIn := map[string]int{}
	for _, tg := range g.TargetGroupARNs {
		out, err := c.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
		if err != nil {
			return CapacityResult{}, wrap("DescribeTargetHealth", err)
		}
		for _, d := range out.TargetHealthDescriptions {
			if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy && d.Target != nil {
				healthyIn[aws.ToString(d.Target.Id)]++
			}
		}
	}
	var res CapacityResult
	for _, m := range g.Instances {
		id := aws.ToString(m.InstanceId)
		if slices.Contains(in.Exclude, id) || m.LifecycleState != astypes.LifecycleStateInService || aws.ToString(m.HealthStatus) != "Healthy" {
			continue
		}
		if healthyIn[id] < len(g.TargetGroupARNs) {
			continue
		}
		res.Healthy++
	}
	return res, nil
}
