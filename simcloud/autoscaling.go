package simcloud

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func (c *Cloud) asGroupByName(name string) (*asGroup, error) {
	g, ok := c.groups.get(name)
	if !ok {
		return nil, apiErr("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
	}
	return g, nil
}

func (g *asGroup) member(id string) *member {
	for _, m := range g.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (c *Cloud) launchTemplateSpec(g *asGroup) *astypes.LaunchTemplateSpecification {
	if g.launchTemplate == "" {
		return nil
	}
	return &astypes.LaunchTemplateSpecification{LaunchTemplateName: ptr(g.launchTemplate), LaunchTemplateId: ptr(g.launchTplID), Version: ptr("$Latest")}
}

// DescribeAutoScalingInstances implements activities.AutoScalingAPI. An
// instance that is not in a group is simply absent from the result, as on
// AWS. HealthStatus is upper case here ("HEALTHY"), as AWS returns it from
// this operation (DescribeAutoScalingGroups says "Healthy").
func (c *Cloud) DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error) {
	return call(c, ctx, svcAS, "DescribeAutoScalingInstances", in, c.describeASInstances)
}

func (c *Cloud) describeASInstances(_ time.Time, in *autoscaling.DescribeAutoScalingInstancesInput) (*autoscaling.DescribeAutoScalingInstancesOutput, error) {
	if len(in.InstanceIds) > 50 {
		return nil, apiErr("ValidationError", "The number of instance ids that may be passed in is limited to 50")
	}
	out := &autoscaling.DescribeAutoScalingInstancesOutput{AutoScalingInstances: []astypes.AutoScalingInstanceDetails{}}
	add := func(g *asGroup, m *member) {
		out.AutoScalingInstances = append(out.AutoScalingInstances, astypes.AutoScalingInstanceDetails{
			AutoScalingGroupName: ptr(g.name),
			InstanceId:           ptr(m.id),
			AvailabilityZone:     ptr(m.az),
			HealthStatus:         ptr(strings.ToUpper(m.health)),
			LifecycleState:       ptr(string(m.lifecycle)),
			ProtectedFromScaleIn: ptr(m.protected),
			InstanceType:         ptr(m.instanceType),
			ImageId:              ptr(m.imageID),
			LaunchTemplate:       c.launchTemplateSpec(g),
		})
	}
	if len(in.InstanceIds) == 0 {
		for _, g := range c.groups.all() {
			for _, m := range g.members {
				add(g, m)
			}
		}
		return out, nil
	}
	for _, id := range in.InstanceIds {
		if g, m := c.memberOf(id); g != nil {
			add(g, m)
		}
	}
	return out, nil
}

// DescribeAutoScalingGroups implements activities.AutoScalingAPI with
// AutoScalingGroupNames (unknown names are omitted, as on AWS) and the filters
// tag-key, tag-value and tag:<key>.
func (c *Cloud) DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	return call(c, ctx, svcAS, "DescribeAutoScalingGroups", in, c.describeASGroups)
}

func (c *Cloud) describeASGroups(_ time.Time, in *autoscaling.DescribeAutoScalingGroupsInput) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	var filters []ec2types.Filter
	for _, f := range in.Filters {
		name := deref(f.Name)
		if name != "tag-key" && name != "tag-value" && !strings.HasPrefix(name, "tag:") {
			return nil, apiErr("ValidationError", "Filter type %s is not supported. Supported filter types are tag-key, tag-value, tag:<key>", name)
		}
		filters = append(filters, ec2types.Filter{Name: f.Name, Values: f.Values})
	}
	list := c.groups.all()
	if len(in.AutoScalingGroupNames) > 0 {
		list = nil
		for _, name := range in.AutoScalingGroupNames {
			if g, ok := c.groups.get(name); ok {
				list = append(list, g)
			}
		}
	}
	out := &autoscaling.DescribeAutoScalingGroupsOutput{AutoScalingGroups: []astypes.AutoScalingGroup{}}
	for _, g := range list {
		if matchFilters(filters, g.tags, func(string) ([]string, bool) { return nil, false }) {
			out.AutoScalingGroups = append(out.AutoScalingGroups, c.asGroupOut(g))
		}
	}
	return out, nil
}

func (c *Cloud) asGroupOut(g *asGroup) astypes.AutoScalingGroup {
	var azs []string
	for _, id := range g.subnets {
		if s, ok := c.subnets.get(id); ok && !contains(azs, s.az) {
			azs = append(azs, s.az)
		}
	}
	sort.Strings(azs)
	out := astypes.AutoScalingGroup{
		AutoScalingGroupName:             ptr(g.name),
		AutoScalingGroupARN:              ptr(g.arn),
		MinSize:                          ptr(g.min),
		MaxSize:                          ptr(g.max),
		DesiredCapacity:                  ptr(g.desired),
		DefaultCooldown:                  ptr(int32(300)),
		HealthCheckType:                  ptr(g.healthCheck),
		HealthCheckGracePeriod:           ptr(int32(300)),
		AvailabilityZones:                azs,
		VPCZoneIdentifier:                ptr(strings.Join(g.subnets, ",")),
		CreatedTime:                      ptr(g.created),
		TargetGroupARNs:                  append([]string{}, g.targetGroups...),
		LoadBalancerNames:                []string{},
		LaunchTemplate:                   c.launchTemplateSpec(g),
		NewInstancesProtectedFromScaleIn: ptr(g.newProtected),
		ServiceLinkedRoleARN:             ptr("arn:aws:iam::" + c.account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
		TerminationPolicies:              []string{"Default"},
		SuspendedProcesses:               []astypes.SuspendedProcess{},
		EnabledMetrics:                   []astypes.EnabledMetric{},
		Instances:                        []astypes.Instance{},
	}
	for _, m := range g.members {
		out.Instances = append(out.Instances, astypes.Instance{
			InstanceId:           ptr(m.id),
			AvailabilityZone:     ptr(m.az),
			LifecycleState:       m.lifecycle,
			HealthStatus:         ptr(m.health),
			ProtectedFromScaleIn: ptr(m.protected),
			InstanceType:         ptr(m.instanceType),
			ImageId:              ptr(m.imageID),
			LaunchTemplate:       c.launchTemplateSpec(g),
		})
	}
	for _, k := range sortedKeys(g.tags) {
		out.Tags = append(out.Tags, astypes.TagDescription{
			Key: ptr(k), Value: ptr(g.tags[k]), PropagateAtLaunch: ptr(true),
			ResourceId: ptr(g.name), ResourceType: ptr("auto-scaling-group"),
		})
	}
	return out
}

func (c *Cloud) activity(g *asGroup, t time.Time, description, cause string) astypes.Activity {
	return astypes.Activity{
		ActivityId:           ptr(c.newUUID()),
		AutoScalingGroupName: ptr(g.name),
		AutoScalingGroupARN:  ptr(g.arn),
		Description:          ptr(description),
		Cause:                ptr(cause),
		StartTime:            ptr(t),
		StatusCode:           astypes.ScalingActivityStatusCodeInProgress,
		Progress:             ptr(int32(50)),
		Details:              ptr(fmt.Sprintf(`{"Subnet ID":"%s"}`, strings.Join(g.subnets, ","))),
	}
}

// DetachInstances implements activities.AutoScalingAPI. The instances leave
// the group (Detaching while their target groups drain them, then gone) and
// are deregistered from the group's target groups. Without
// ShouldDecrementDesiredCapacity the group launches replacements after
// Delays.Replace; with it, desired capacity drops (not below MinSize).
func (c *Cloud) DetachInstances(ctx context.Context, in *autoscaling.DetachInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DetachInstancesOutput, error) {
	return call(c, ctx, svcAS, "DetachInstances", in, c.detachInstances)
}

func (c *Cloud) detachInstances(t time.Time, in *autoscaling.DetachInstancesInput) (*autoscaling.DetachInstancesOutput, error) {
	if err := need("DetachInstances", req{"AutoScalingGroupName", in.AutoScalingGroupName != nil}, req{"ShouldDecrementDesiredCapacity", in.ShouldDecrementDesiredCapacity != nil}); err != nil {
		return nil, err
	}
	g, err := c.asGroupByName(*in.AutoScalingGroupName)
	if err != nil {
		return nil, err
	}
	var members []*member
	for _, id := range in.InstanceIds {
		m := g.member(id)
		if m == nil || m.lifecycle == astypes.LifecycleStateDetaching {
			return nil, apiErr("ValidationError", "The instance %s is not part of Auto Scaling group %s.", id, g.name)
		}
		if m.lifecycle != astypes.LifecycleStateInService && m.lifecycle != astypes.LifecycleStateStandby {
			return nil, apiErr("ValidationError", "The instance %s is not in InService or Standby.", id)
		}
		members = append(members, m)
	}
	decrement := *in.ShouldDecrementDesiredCapacity
	if decrement && g.desired-int32(len(members)) < g.min {
		return nil, apiErr("ValidationError", "AutoScalingGroup %s has min-size=%d, max-size=%d, and desired-size=%d. To detach %d instance(s) with should-decrement-desired-capacity=true, the desired capacity must stay at or above the min-size.",
			g.name, g.min, g.max, g.desired, len(members))
	}
	out := &autoscaling.DetachInstancesOutput{}
	for _, m := range members {
		if decrement {
			g.desired--
		}
		m.lifecycle = astypes.LifecycleStateDetaching
		m.due = t
		for _, arn := range g.targetGroups {
			if tg, ok := c.targetGroups.get(arn); ok && c.deregister(tg, m.id, tg.port, t) {
				m.due = t.Add(c.delays.TargetDraining)
			}
		}
		cause := fmt.Sprintf("At %s instance %s was detached in response to a user request", t.UTC().Format(time.RFC3339), m.id)
		if decrement {
			cause += fmt.Sprintf(", shrinking the capacity from %d to %d.", g.desired+1, g.desired)
		} else {
			cause += ", keeping the capacity at the new desired capacity."
		}
		out.Activities = append(out.Activities, c.activity(g, t, "Detaching EC2 instance: "+m.id, cause))
	}
	c.reconcile(g, t)
	return out, nil
}

// AttachInstances implements activities.AutoScalingAPI: running instances in
// one of the group's Availability Zones join it InService, desired capacity
// grows by their number (ValidationError past MaxSize), and they are
// registered with the group's target groups.
func (c *Cloud) AttachInstances(ctx context.Context, in *autoscaling.AttachInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.AttachInstancesOutput, error) {
	return call(c, ctx, svcAS, "AttachInstances", in, c.attachInstances)
}

func (c *Cloud) attachInstances(t time.Time, in *autoscaling.AttachInstancesInput) (*autoscaling.AttachInstancesOutput, error) {
	if err := need("AttachInstances", req{"AutoScalingGroupName", in.AutoScalingGroupName != nil}); err != nil {
		return nil, err
	}
	g, err := c.asGroupByName(*in.AutoScalingGroupName)
	if err != nil {
		return nil, err
	}
	azs := map[string]bool{}
	for _, id := range g.subnets {
		if s, ok := c.subnets.get(id); ok {
			azs[s.az] = true
		}
	}
	var list []*instance
	for _, id := range dedupe(in.InstanceIds) {
		inst, ok := c.instances.get(id)
		if !ok {
			return nil, apiErr("ValidationError", "Instance ID(s) %s are not valid.", id)
		}
		if og, _ := c.memberOf(id); og != nil {
			return nil, apiErr("ValidationError", "The instance %s is already part of Auto Scaling group %s.", id, og.name)
		}
		if inst.state != ec2types.InstanceStateNameRunning {
			return nil, apiErr("ValidationError", "Instance %s is not in a valid state for attaching: it is %s, not running.", id, inst.state)
		}
		if !azs[inst.az] {
			return nil, apiErr("ValidationError", "Instance %s is in Availability Zone %s, which is not one of the Availability Zones of Auto Scaling group %s.", id, inst.az, g.name)
		}
		list = append(list, inst)
	}
	if g.desired+int32(len(list)) > g.max {
		return nil, apiErr("ValidationError", "AutoScalingGroup %s has min-size=%d, max-size=%d, and desired-size=%d. Attaching %d instance(s) would exceed the max-size.",
			g.name, g.min, g.max, g.desired, len(list))
	}
	for _, inst := range list {
		g.desired++
		g.members = append(g.members, &member{
			id: inst.id, lifecycle: astypes.LifecycleStateInService, health: "Healthy", protected: g.newProtected,
			az: inst.az, imageID: inst.imageID, instanceType: inst.instanceType,
		})
		inst.tags["aws:autoscaling:groupName"] = g.name
		c.registerInGroupTargets(g, inst.id, t)
	}
	c.reconcile(g, t)
	return &autoscaling.AttachInstancesOutput{}, nil
}

// SetDesiredCapacity implements activities.AutoScalingAPI: scale-out
// launches after Delays.Replace; scale-in terminates the newest members not
// protected from scale-in. Values outside MinSize..MaxSize fail.
func (c *Cloud) SetDesiredCapacity(ctx context.Context, in *autoscaling.SetDesiredCapacityInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error) {
	return call(c, ctx, svcAS, "SetDesiredCapacity", in, c.setDesiredCapacity)
}

func (c *Cloud) setDesiredCapacity(t time.Time, in *autoscaling.SetDesiredCapacityInput) (*autoscaling.SetDesiredCapacityOutput, error) {
	if err := need("SetDesiredCapacity", req{"AutoScalingGroupName", in.AutoScalingGroupName != nil}, req{"DesiredCapacity", in.DesiredCapacity != nil}); err != nil {
		return nil, err
	}
	g, err := c.asGroupByName(*in.AutoScalingGroupName)
	if err != nil {
		return nil, err
	}
	d := *in.DesiredCapacity
	if d > g.max {
		return nil, apiErr("ValidationError", "New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", d, g.max)
	}
	if d < g.min {
		return nil, apiErr("ValidationError", "New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", d, g.min)
	}
	g.desired = d
	c.reconcile(g, t)
	return &autoscaling.SetDesiredCapacityOutput{}, nil
}

// TerminateInstanceInAutoScalingGroup implements activities.AutoScalingAPI:
// the member shuts down; with ShouldDecrementDesiredCapacity the group does
// not replace it, otherwise it does.
func (c *Cloud) TerminateInstanceInAutoScalingGroup(ctx context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error) {
	return call(c, ctx, svcAS, "TerminateInstanceInAutoScalingGroup", in, c.terminateInASG)
}

func (c *Cloud) terminateInASG(t time.Time, in *autoscaling.TerminateInstanceInAutoScalingGroupInput) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error) {
	if err := need("TerminateInstanceInAutoScalingGroup", req{"InstanceId", in.InstanceId != nil}, req{"ShouldDecrementDesiredCapacity", in.ShouldDecrementDesiredCapacity != nil}); err != nil {
		return nil, err
	}
	id := *in.InstanceId
	for _, g := range c.groups.all() {
		m := g.member(id)
		if m == nil {
			continue
		}
		if !counts(m) {
			return nil, apiErr("ValidationError", "Instance %s is not in a state that allows termination (%s).", id, m.lifecycle)
		}
		decrement := *in.ShouldDecrementDesiredCapacity
		if decrement && g.desired-1 < g.min {
			return nil, apiErr("ValidationError", "Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.min)
		}
		if decrement {
			g.desired--
		}
		m.lifecycle = astypes.LifecycleStateTerminating
		if inst, ok := c.instances.get(id); ok {
			c.startShutdown(inst, t, true)
		}
		c.reconcile(g, t)
		act := c.activity(g, t, "Terminating EC2 instance: "+id, fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", t.UTC().Format(time.RFC3339), id))
		return &autoscaling.TerminateInstanceInAutoScalingGroupOutput{Activity: &act}, nil
	}
	return nil, apiErr("ValidationError", "Instance Id not found - No managed instance found for instance ID: %s", id)
}

// SetInstanceProtection implements activities.AutoScalingAPI.
func (c *Cloud) SetInstanceProtection(ctx context.Context, in *autoscaling.SetInstanceProtectionInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetInstanceProtectionOutput, error) {
	return call(c, ctx, svcAS, "SetInstanceProtection", in, c.setInstanceProtection)
}

func (c *Cloud) setInstanceProtection(_ time.Time, in *autoscaling.SetInstanceProtectionInput) (*autoscaling.SetInstanceProtectionOutput, error) {
	if err := need("SetInstanceProtection", req{"AutoScalingGroupName", in.AutoScalingGroupName != nil}, req{"InstanceIds", in.InstanceIds != nil}, req{"ProtectedFromScaleIn", in.ProtectedFromScaleIn != nil}); err != nil {
		return nil, err
	}
	g, err := c.asGroupByName(*in.AutoScalingGroupName)
	if err != nil {
		return nil, err
	}
	var ms []*member
	for _, id := range in.InstanceIds {
		m := g.member(id)
		if m == nil {
			return nil, apiErr("ValidationError", "The instance %s is not part of Auto Scaling group %s.", id, g.name)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.protected = *in.ProtectedFromScaleIn
	}
	return &autoscaling.SetInstanceProtectionOutput{}, nil
}
