package simcloud

import (
	"context"
	"strconv"
	"strings"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

func (c *Cloud) tgByARN(arn *string) (*targetGroup, error) {
	if arn == nil {
		return nil, apiErr("ValidationError", "A target group ARN must be specified")
	}
	tg, ok := c.targetGroups.get(*arn)
	if !ok {
		return nil, apiErr("TargetGroupNotFound", "One or more target groups not found")
	}
	return tg, nil
}

func targetPort(tg *targetGroup, p *int32) int32 {
	if p == nil {
		return tg.port
	}
	return *p
}

// DescribeTargetHealth implements activities.ELBv2API. A target is initial
// after registration, healthy once its instance runs and
// Delays.TargetHealthy has passed, draining for Delays.TargetDraining after
// deregistration, then gone; asking about a target that is not registered
// returns unused / Target.NotRegistered, as on AWS.
func (c *Cloud) DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	return call(c, ctx, svcELBv2, "DescribeTargetHealth", in, c.describeTargetHealth)
}

func (c *Cloud) describeTargetHealth(_ time.Time, in *elbv2.DescribeTargetHealthInput) (*elbv2.DescribeTargetHealthOutput, error) {
	if err := need("DescribeTargetHealth", req{"TargetGroupArn", in.TargetGroupArn != nil}); err != nil {
		return nil, err
	}
	tg, err := c.tgByARN(in.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	out := &elbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: []elbtypes.TargetHealthDescription{}}
	if len(in.Targets) == 0 {
		for _, tr := range tg.targets {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, c.targetOut(tr))
		}
		return out, nil
	}
	for _, want := range in.Targets {
		if err := need("DescribeTargetHealth", req{"Targets[].Id", want.Id != nil}); err != nil {
			return nil, err
		}
		port := targetPort(tg, want.Port)
		var found *target
		for _, tr := range tg.targets {
			if tr.id == *want.Id && tr.port == port {
				found = tr
			}
		}
		if found != nil {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, c.targetOut(found))
			continue
		}
		if _, ok := c.instances.get(*want.Id); !ok {
			return nil, apiErr("InvalidTarget", "The following targets are not valid instances: '%s'", *want.Id)
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, elbtypes.TargetHealthDescription{
			Target:          &elbtypes.TargetDescription{Id: ptr(*want.Id), Port: ptr(port)},
			HealthCheckPort: ptr(strconv.Itoa(int(port))),
			TargetHealth: &elbtypes.TargetHealth{
				State:       elbtypes.TargetHealthStateEnumUnused,
				Reason:      elbtypes.TargetHealthReasonEnumNotRegistered,
				Description: ptr("Target is not registered to the target group"),
			},
		})
	}
	return out, nil
}

func (c *Cloud) targetOut(tr *target) elbtypes.TargetHealthDescription {
	th := &elbtypes.TargetHealth{State: tr.state}
	switch tr.state {
	case elbtypes.TargetHealthStateEnumInitial:
		if in, ok := c.instances.get(tr.id); ok && in.state == ec2types.InstanceStateNameRunning {
			th.Reason, th.Description = elbtypes.TargetHealthReasonEnumInitialHealthChecking, ptr("Initial health checks in progress")
		} else {
			th.Reason, th.Description = elbtypes.TargetHealthReasonEnumRegistrationInProgress, ptr("Target registration is in progress")
		}
	case elbtypes.TargetHealthStateEnumDraining:
		th.Reason, th.Description = elbtypes.TargetHealthReasonEnumDeregistrationInProgress, ptr("Target deregistration is in progress")
	}
	d := elbtypes.TargetHealthDescription{
		Target:          &elbtypes.TargetDescription{Id: ptr(tr.id), Port: ptr(tr.port)},
		HealthCheckPort: ptr(strconv.Itoa(int(tr.port))),
		TargetHealth:    th,
	}
	if in, ok := c.instances.get(tr.id); ok {
		d.Target.AvailabilityZone = ptr(in.az)
	}
	return d
}

// RegisterTargets implements activities.ELBv2API for running instances in
// the target group's VPC. Registering a registered target is a no-op.
func (c *Cloud) RegisterTargets(ctx context.Context, in *elbv2.RegisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error) {
	return call(c, ctx, svcELBv2, "RegisterTargets", in, c.registerTargets)
}

func (c *Cloud) registerTargets(t time.Time, in *elbv2.RegisterTargetsInput) (*elbv2.RegisterTargetsOutput, error) {
	if err := need("RegisterTargets", req{"TargetGroupArn", in.TargetGroupArn != nil}, req{"Targets", in.Targets != nil}); err != nil {
		return nil, err
	}
	tg, err := c.tgByARN(in.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	var notValid, notRunning, otherVPC []string
	for _, tr := range in.Targets {
		id := deref(tr.Id)
		inst, ok := c.instances.get(id)
		switch {
		case !ok:
			notValid = append(notValid, id)
		case inst.state != ec2types.InstanceStateNameRunning:
			notRunning = append(notRunning, id)
		case tg.vpcID != "" && len(inst.enis) > 0 && inst.enis[0].vpcID != tg.vpcID:
			otherVPC = append(otherVPC, id)
		}
	}
	quote := func(ids []string) string { return "'" + strings.Join(ids, "', '") + "'" }
	switch {
	case len(notValid) > 0:
		return nil, apiErr("InvalidTarget", "The following targets are not valid instances: %s", quote(notValid))
	case len(notRunning) > 0:
		return nil, apiErr("InvalidTarget", "The following targets are not in a running state and cannot be registered: %s", quote(notRunning))
	case len(otherVPC) > 0:
		return nil, apiErr("InvalidTarget", "The following targets are not in the target group VPC '%s': %s", tg.vpcID, quote(otherVPC))
	}
	for _, tr := range in.Targets {
		c.register(tg, deref(tr.Id), targetPort(tg, tr.Port), t)
	}
	return &elbv2.RegisterTargetsOutput{}, nil
}

// DeregisterTargets implements activities.ELBv2API: registered targets drain
// for Delays.TargetDraining; a target that is not registered (on that port;
// the default is the group's port) is ignored, as AWS does.
func (c *Cloud) DeregisterTargets(ctx context.Context, in *elbv2.DeregisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error) {
	return call(c, ctx, svcELBv2, "DeregisterTargets", in, c.deregisterTargets)
}

func (c *Cloud) deregisterTargets(t time.Time, in *elbv2.DeregisterTargetsInput) (*elbv2.DeregisterTargetsOutput, error) {
	if err := need("DeregisterTargets", req{"TargetGroupArn", in.TargetGroupArn != nil}, req{"Targets", in.Targets != nil}); err != nil {
		return nil, err
	}
	tg, err := c.tgByARN(in.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	for _, tr := range in.Targets {
		c.deregister(tg, deref(tr.Id), targetPort(tg, tr.Port), t)
	}
	return &elbv2.DeregisterTargetsOutput{}, nil
}

// ---------------------------------------------------------------------------
// SNS.

// PublishedMessage is one message published to a simulated SNS topic.
type PublishedMessage struct {
	MessageID         string
	TopicArn          string
	Subject           string
	Message           string
	MessageStructure  string
	MessageGroupID    string
	MessageAttributes map[string]snstypes.MessageAttributeValue
	Time              time.Time
}

// Publish implements activities.SNSAPI: the message is recorded (see
// Published). An unknown topic fails NotFound.
func (c *Cloud) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return call(c, ctx, svcSNS, "Publish", in, c.publish)
}

func (c *Cloud) publish(t time.Time, in *sns.PublishInput) (*sns.PublishOutput, error) {
	if err := need("Publish", req{"Message", in.Message != nil}); err != nil {
		return nil, err
	}
	arn := deref(in.TopicArn)
	if arn == "" {
		arn = deref(in.TargetArn)
	}
	if arn == "" {
		if in.PhoneNumber != nil {
			return nil, apiErr("InvalidParameter", "Invalid parameter: PhoneNumber Reason: simcloud does not deliver SMS")
		}
		return nil, apiErr("InvalidParameter", "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
	}
	if !strings.HasPrefix(arn, "arn:aws:sns:") {
		return nil, apiErr("InvalidParameter", "Invalid parameter: TopicArn")
	}
	if _, ok := c.topics.get(arn); !ok {
		return nil, apiErr("NotFound", "Topic does not exist")
	}
	if in.Subject != nil {
		s := *in.Subject
		ok := s != "" && len(s) <= 100
		for _, r := range s {
			ok = ok && r >= 0x20 && r < 0x7f
		}
		if !ok {
			return nil, apiErr("InvalidParameter", "Invalid parameter: Subject")
		}
	}
	if *in.Message == "" {
		return nil, apiErr("InvalidParameter", "Invalid parameter: Empty message")
	}
	if len(*in.Message) > 256*1024 {
		return nil, apiErr("InvalidParameter", "Invalid parameter: Message too long")
	}
	if strings.HasSuffix(arn, ".fifo") && in.MessageGroupId == nil {
		return nil, apiErr("InvalidParameter", "Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
	}
	attrs := map[string]snstypes.MessageAttributeValue{}
	for k, v := range in.MessageAttributes {
		dt := deref(v.DataType)
		switch {
		case dt == "":
			return nil, apiErr("ParameterValueInvalid", "The message attribute '%s' must contain non-empty message attribute type.", k)
		case strings.HasPrefix(dt, "Binary") && len(v.BinaryValue) == 0:
			return nil, apiErr("ParameterValueInvalid", "The message attribute '%s' with type 'Binary' must use field 'Binary'.", k)
		case !strings.HasPrefix(dt, "Binary") && v.StringValue == nil:
			return nil, apiErr("ParameterValueInvalid", "The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", k, dt)
		}
		cp := snstypes.MessageAttributeValue{DataType: ptr(dt)}
		if v.StringValue != nil {
			cp.StringValue = ptr(*v.StringValue)
		}
		if v.BinaryValue != nil {
			cp.BinaryValue = append([]byte(nil), v.BinaryValue...)
		}
		attrs[k] = cp
	}
	id := c.newUUID()
	c.published = append(c.published, PublishedMessage{
		MessageID:         id,
		TopicArn:          arn,
		Subject:           deref(in.Subject),
		Message:           *in.Message,
		MessageStructure:  deref(in.MessageStructure),
		MessageGroupID:    deref(in.MessageGroupId),
		MessageAttributes: attrs,
		Time:              t,
	})
	return &sns.PublishOutput{MessageId: ptr(id)}, nil
}
