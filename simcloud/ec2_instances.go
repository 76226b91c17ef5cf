package simcloud

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

var idPattern = regexp.MustCompile(`^[a-z-]+-([0-9a-f]{8}|[0-9a-f]{17})$`)

// validID reports whether id is prefix-<8 or 17 lower-case hex digits>.
func validID(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"-") && idPattern.MatchString(id) && !strings.Contains(id[len(prefix)+1:], "-")
}

func stateCode(s ec2types.InstanceStateName) int32 {
	switch s {
	case ec2types.InstanceStateNamePending:
		return 0
	case ec2types.InstanceStateNameRunning:
		return 16
	case ec2types.InstanceStateNameShuttingDown:
		return 32
	case ec2types.InstanceStateNameTerminated:
		return 48
	case ec2types.InstanceStateNameStopping:
		return 64
	case ec2types.InstanceStateNameStopped:
		return 80
	}
	return 0
}

func instanceState(s ec2types.InstanceStateName) *ec2types.InstanceState {
	return &ec2types.InstanceState{Code: ptr(stateCode(s)), Name: s}
}

func gone(in *instance) bool {
	return in.state == ec2types.InstanceStateNameShuttingDown || in.state == ec2types.InstanceStateNameTerminated
}

// instanceByID finds an instance, with EC2's errors for a malformed or
// unknown ID.
func (c *Cloud) instanceByID(id string) (*instance, error) {
	if !validID(id, "i") {
		return nil, apiErr("InvalidInstanceID.Malformed", "Invalid id: \"%s\" (expecting \"i-...\")", id)
	}
	in, ok := c.instances.get(id)
	if !ok {
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	return in, nil
}

// instancesByID finds several instances; unknown IDs are reported together,
// as EC2 does.
func (c *Cloud) instancesByID(ids []string) ([]*instance, error) {
	var out []*instance
	var missing []string
	seen := map[string]bool{}
	for _, id := range ids {
		if !validID(id, "i") {
			return nil, apiErr("InvalidInstanceID.Malformed", "Invalid id: \"%s\" (expecting \"i-...\")", id)
		}
		in, ok := c.instances.get(id)
		if !ok {
			missing = append(missing, id)
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, in)
		}
	}
	switch len(missing) {
	case 0:
		return out, nil
	case 1:
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	default:
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
}

var instanceFilters = set(
	"instance-id", "instance-state-name", "instance-state-code", "instance-type", "image-id",
	"private-ip-address", "private-dns-name", "ip-address", "subnet-id", "vpc-id", "availability-zone",
	"network-interface.subnet-id", "network-interface.vpc-id", "network-interface.network-interface-id",
	"network-interface.addresses.private-ip-address", "network-interface.group-id",
	"instance.group-id", "instance.group-name", "client-token", "reservation-id",
	"iam-instance-profile.arn", "tag-key", "tag-value",
)

func (c *Cloud) instanceValues(in *instance) filterValues {
	return func(name string) ([]string, bool) {
		one := func(s string) []string {
			if s == "" {
				return nil
			}
			return []string{s}
		}
		var primary *eni
		if len(in.enis) > 0 {
			primary = in.enis[0]
		}
		each := func(f func(*eni) []string) []string {
			var out []string
			for _, e := range in.enis {
				out = append(out, f(e)...)
			}
			return out
		}
		switch name {
		case "instance-id":
			return one(in.id), true
		case "instance-state-name":
			return one(string(in.state)), true
		case "instance-state-code":
			return one(strconv.Itoa(int(stateCode(in.state)))), true
		case "instance-type":
			return one(in.instanceType), true
		case "image-id":
			return one(in.imageID), true
		case "private-ip-address":
			if primary != nil {
				return one(primary.privateIP), true
			}
			return nil, true
		case "private-dns-name":
			return one(in.privateDNS), true
		case "ip-address":
			return one(in.publicIP), true
		case "subnet-id":
			if primary != nil {
				return one(primary.subnetID), true
			}
			return nil, true
		case "vpc-id":
			if primary != nil {
				return one(primary.vpcID), true
			}
			return nil, true
		case "availability-zone":
			return one(in.az), true
		case "network-interface.subnet-id":
			return each(func(e *eni) []string { return one(e.subnetID) }), true
		case "network-interface.vpc-id":
			return each(func(e *eni) []string { return one(e.vpcID) }), true
		case "network-interface.network-interface-id":
			return each(func(e *eni) []string { return one(e.id) }), true
		case "network-interface.addresses.private-ip-address":
			return each(func(e *eni) []string { return one(e.privateIP) }), true
		case "network-interface.group-id", "instance.group-id":
			return c.instanceGroupIDs(in), true
		case "instance.group-name":
			var names []string
			for _, id := range c.instanceGroupIDs(in) {
				if g, ok := c.secGroups.get(id); ok {
					names = append(names, g.name)
				}
			}
			return names, true
		case "client-token":
			return one(in.clientToken), true
		case "reservation-id":
			return one(in.reservationID), true
		case "iam-instance-profile.arn":
			return one(in.profileARN), true
		}
		return nil, false
	}
}

// instanceGroupIDs is the union of the groups of every ENI, in device order.
func (c *Cloud) instanceGroupIDs(in *instance) []string {
	var out []string
	for _, e := range in.enis {
		for _, g := range e.groups {
			if !contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

func (c *Cloud) groupIdentifiers(ids []string) []ec2types.GroupIdentifier {
	out := make([]ec2types.GroupIdentifier, 0, len(ids))
	for _, id := range ids {
		gi := ec2types.GroupIdentifier{GroupId: ptr(id)}
		if g, ok := c.secGroups.get(id); ok {
			gi.GroupName = ptr(g.name)
		}
		out = append(out, gi)
	}
	return out
}

// instanceOut describes an instance as DescribeInstances does. A terminated
// instance has no network interfaces, addresses, groups or volumes any more.
func (c *Cloud) instanceOut(in *instance) ec2types.Instance {
	out := ec2types.Instance{
		InstanceId:            ptr(in.id),
		InstanceType:          ec2types.InstanceType(in.instanceType),
		ImageId:               ptr(in.imageID),
		LaunchTime:            ptr(in.launched),
		State:                 instanceState(in.state),
		Placement:             &ec2types.Placement{AvailabilityZone: ptr(in.az), Tenancy: ec2types.TenancyDefault},
		PrivateDnsName:        ptr(in.privateDNS),
		PublicDnsName:         ptr(""),
		StateTransitionReason: ptr(in.reason),
		AmiLaunchIndex:        ptr(in.launchIndex),
		Architecture:          ec2types.ArchitectureValuesX8664,
		Hypervisor:            ec2types.HypervisorTypeXen,
		RootDeviceName:        ptr("/dev/xvda"),
		RootDeviceType:        ec2types.DeviceTypeEbs,
		VirtualizationType:    ec2types.VirtualizationTypeHvm,
		EbsOptimized:          ptr(false),
		EnaSupport:            ptr(true),
		SourceDestCheck:       ptr(in.sourceDestCheck),
		Monitoring:            &ec2types.Monitoring{State: ec2types.MonitoringStateDisabled},
		Tags:                  tagList(in.tags),
	}
	if in.clientToken != "" {
		out.ClientToken = ptr(in.clientToken)
	}
	if in.keyName != "" {
		out.KeyName = ptr(in.keyName)
	}
	if in.profileARN != "" && in.state != ec2types.InstanceStateNameTerminated {
		out.IamInstanceProfile = &ec2types.IamInstanceProfile{Arn: ptr(in.profileARN), Id: ptr(in.profileID)}
	}
	if in.state == ec2types.InstanceStateNameTerminated || in.state == ec2types.InstanceStateNameShuttingDown {
		out.StateReason = &ec2types.StateReason{Code: ptr("Client.UserInitiatedShutdown"), Message: ptr("Client.UserInitiatedShutdown: User initiated shutdown")}
	}
	if in.publicIP != "" {
		out.PublicIpAddress = ptr(in.publicIP)
	}
	if len(in.enis) > 0 {
		p := in.enis[0]
		out.SubnetId, out.VpcId, out.PrivateIpAddress = ptr(p.subnetID), ptr(p.vpcID), ptr(p.privateIP)
		out.SecurityGroups = c.groupIdentifiers(c.instanceGroupIDs(in))
	} else {
		out.SecurityGroups = []ec2types.GroupIdentifier{}
		out.NetworkInterfaces = []ec2types.InstanceNetworkInterface{}
	}
	for _, e := range in.enis {
		ni := ec2types.InstanceNetworkInterface{
			NetworkInterfaceId: ptr(e.id),
			SubnetId:           ptr(e.subnetID),
			VpcId:              ptr(e.vpcID),
			PrivateIpAddress:   ptr(e.privateIP),
			PrivateDnsName:     ptr(privateDNSName(e.privateIP, in.region)),
			MacAddress:         ptr(e.mac),
			OwnerId:            ptr(c.account),
			Description:        ptr(e.description),
			SourceDestCheck:    ptr(in.sourceDestCheck),
			InterfaceType:      ptr("interface"),
			Status:             ec2types.NetworkInterfaceStatusInUse,
			Groups:             c.groupIdentifiers(e.groups),
			Attachment: &ec2types.InstanceNetworkInterfaceAttachment{
				AttachmentId:        ptr(e.attachID),
				AttachTime:          ptr(e.attached),
				DeleteOnTermination: ptr(e.deleteOnTerm),
				DeviceIndex:         ptr(e.index),
				NetworkCardIndex:    ptr(int32(0)),
				Status:              ec2types.AttachmentStatusAttached,
			},
			PrivateIpAddresses: []ec2types.InstancePrivateIpAddress{{
				Primary:          ptr(true),
				PrivateIpAddress: ptr(e.privateIP),
				PrivateDnsName:   ptr(privateDNSName(e.privateIP, in.region)),
			}},
		}
		if e.index == 0 && in.publicIP != "" {
			assoc := &ec2types.InstanceNetworkInterfaceAssociation{PublicIp: ptr(in.publicIP), IpOwnerId: ptr("amazon"), PublicDnsName: ptr("")}
			ni.Association = assoc
			ni.PrivateIpAddresses[0].Association = assoc
		}
		out.NetworkInterfaces = append(out.NetworkInterfaces, ni)
	}
	for _, v := range in.vols {
		out.BlockDeviceMappings = append(out.BlockDeviceMappings, ec2types.InstanceBlockDeviceMapping{
			DeviceName: ptr(v.device),
			Ebs: &ec2types.EbsInstanceBlockDevice{
				VolumeId:            ptr(v.id),
				AttachTime:          ptr(v.attached),
				DeleteOnTermination: ptr(v.deleteOnTerm),
				Status:              ec2types.AttachmentStatusAttached,
			},
		})
	}
	return out
}

// ---------------------------------------------------------------------------

// DescribeInstances implements activities.EC2API. It supports InstanceIds and
// the filters listed in instanceFilters (with * and ? wildcards); terminated
// instances stay visible.
func (c *Cloud) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return call(c, ctx, svcEC2, "DescribeInstances", in, c.describeInstances)
}

func (c *Cloud) describeInstances(_ time.Time, in *ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	if err := checkFilters(in.Filters, instanceFilters); err != nil {
		return nil, err
	}
	list := c.instances.all()
	if len(in.InstanceIds) > 0 {
		var err error
		if list, err = c.instancesByID(in.InstanceIds); err != nil {
			return nil, err
		}
	}
	out := &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{}}
	index := map[string]int{}
	for _, inst := range list {
		if !matchFilters(in.Filters, inst.tags, c.instanceValues(inst)) {
			continue
		}
		i, ok := index[inst.reservationID]
		if !ok {
			i = len(out.Reservations)
			index[inst.reservationID] = i
			out.Reservations = append(out.Reservations, ec2types.Reservation{
				ReservationId: ptr(inst.reservationID),
				OwnerId:       ptr(c.account),
				Groups:        []ec2types.GroupIdentifier{},
			})
		}
		out.Reservations[i].Instances = append(out.Reservations[i].Instances, c.instanceOut(inst))
	}
	return out, nil
}

// DescribeInstanceAttribute implements activities.EC2API for the attributes
// disableApiTermination, disableApiStop, groupSet (the primary interface's
// groups), instanceType, sourceDestCheck, instanceInitiatedShutdownBehavior,
// rootDeviceName and blockDeviceMapping.
func (c *Cloud) DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return call(c, ctx, svcEC2, "DescribeInstanceAttribute", in, c.describeInstanceAttribute)
}

func (c *Cloud) describeInstanceAttribute(_ time.Time, in *ec2.DescribeInstanceAttributeInput) (*ec2.DescribeInstanceAttributeOutput, error) {
	if err := need("DescribeInstanceAttribute", req{"Attribute", in.Attribute != ""}, req{"InstanceId", in.InstanceId != nil}); err != nil {
		return nil, err
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	inst, err := c.instanceByID(*in.InstanceId)
	if err != nil {
		return nil, err
	}
	out := &ec2.DescribeInstanceAttributeOutput{InstanceId: ptr(inst.id)}
	switch in.Attribute {
	case ec2types.InstanceAttributeNameDisableApiTermination:
		out.DisableApiTermination = &ec2types.AttributeBooleanValue{Value: ptr(inst.termProtection)}
	case ec2types.InstanceAttributeNameDisableApiStop:
		out.DisableApiStop = &ec2types.AttributeBooleanValue{Value: ptr(false)}
	case ec2types.InstanceAttributeNameGroupSet:
		out.Groups = []ec2types.GroupIdentifier{}
		if len(inst.enis) > 0 {
			out.Groups = c.groupIdentifiers(inst.enis[0].groups)
		}
	case ec2types.InstanceAttributeNameInstanceType:
		out.InstanceType = &ec2types.AttributeValue{Value: ptr(inst.instanceType)}
	case ec2types.InstanceAttributeNameSourceDestCheck:
		out.SourceDestCheck = &ec2types.AttributeBooleanValue{Value: ptr(inst.sourceDestCheck)}
	case ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior:
		out.InstanceInitiatedShutdownBehavior = &ec2types.AttributeValue{Value: ptr(inst.shutdownBehavior)}
	case ec2types.InstanceAttributeNameRootDeviceName:
		out.RootDeviceName = &ec2types.AttributeValue{Value: ptr("/dev/xvda")}
	case ec2types.InstanceAttributeNameBlockDeviceMapping:
		out.BlockDeviceMappings = c.instanceOut(inst).BlockDeviceMappings
	default:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", in.Attribute)
	}
	return out, nil
}

// ModifyInstanceAttribute implements activities.EC2API for one attribute per
// call: DisableApiTermination, Groups (fails on an instance with more than
// one network interface, as on AWS), SourceDestCheck,
// InstanceInitiatedShutdownBehavior, or the Attribute/Value form of those.
func (c *Cloud) ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
	return call(c, ctx, svcEC2, "ModifyInstanceAttribute", in, c.modifyInstanceAttribute)
}

func (c *Cloud) modifyInstanceAttribute(_ time.Time, in *ec2.ModifyInstanceAttributeInput) (*ec2.ModifyInstanceAttributeOutput, error) {
	if err := need("ModifyInstanceAttribute", req{"InstanceId", in.InstanceId != nil}); err != nil {
		return nil, err
	}
	inst, err := c.instanceByID(*in.InstanceId)
	if err != nil {
		return nil, err
	}
	// Normalise the Attribute/Value form.
	termination, sdc, shutdown, itype := in.DisableApiTermination, in.SourceDestCheck, in.InstanceInitiatedShutdownBehavior, in.InstanceType
	var named []string
	if in.Attribute != "" {
		if in.Value == nil {
			return nil, apiErr("MissingParameter", "The request must contain the parameter value")
		}
		v := *in.Value
		switch in.Attribute {
		case ec2types.InstanceAttributeNameDisableApiTermination:
			termination = &ec2types.AttributeBooleanValue{Value: ptr(strings.EqualFold(v, "true"))}
		case ec2types.InstanceAttributeNameSourceDestCheck:
			sdc = &ec2types.AttributeBooleanValue{Value: ptr(strings.EqualFold(v, "true"))}
		case ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior:
			shutdown = &ec2types.AttributeValue{Value: ptr(v)}
		case ec2types.InstanceAttributeNameInstanceType:
			itype = &ec2types.AttributeValue{Value: ptr(v)}
		default:
			return nil, apiErr("UnsupportedOperation", "simcloud does not model modifying the %s attribute", in.Attribute)
		}
	}
	if termination != nil {
		named = append(named, "disableApiTermination")
	}
	if len(in.Groups) > 0 {
		named = append(named, "groupSet")
	}
	if sdc != nil {
		named = append(named, "sourceDestCheck")
	}
	if shutdown != nil {
		named = append(named, "instanceInitiatedShutdownBehavior")
	}
	if itype != nil {
		named = append(named, "instanceType")
	}
	switch {
	case len(named) == 0:
		return nil, apiErr("InvalidParameterCombination", "No attributes specified.")
	case len(named) > 1:
		return nil, apiErr("InvalidParameterCombination", "Fields for multiple attribute types specified: %s", strings.Join(named, ", "))
	}
	if gone(inst) {
		return nil, apiErr("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be modified.", inst.id)
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	switch {
	case termination != nil:
		inst.termProtection = deref(termination.Value)
	case sdc != nil:
		inst.sourceDestCheck = deref(sdc.Value)
	case shutdown != nil:
		v := deref(shutdown.Value)
		if v != "stop" && v != "terminate" {
			return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter instanceInitiatedShutdownBehavior is invalid.", v)
		}
		inst.shutdownBehavior = v
	case itype != nil:
		if inst.state != ec2types.InstanceStateNameStopped {
			return nil, apiErr("IncorrectInstanceState", "The instance '%s' is not in the 'stopped' state.", inst.id)
		}
		inst.instanceType = deref(itype.Value)
	default: // Groups
		if len(inst.enis) > 1 {
			return nil, apiErr("InvalidInstanceID", "There are multiple interfaces attached to instance '%s'. Please specify an interface ID for the operation instead.", inst.id)
		}
		e := inst.enis[0]
		if err := c.checkGroupsFor(e, in.Groups); err != nil {
			return nil, err
		}
		e.groups = dedupe(in.Groups)
	}
	return &ec2.ModifyInstanceAttributeOutput{}, nil
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ---------------------------------------------------------------------------

// RunInstances implements activities.EC2API. It launches MaxCount instances
// from an available image into a subnet (SubnetId, or NetworkInterfaces[0]
// with its Groups and AssociatePublicIpAddress), pending until
// Delays.InstanceStart has passed. A ClientToken makes the call idempotent:
// the same token with the same parameters returns the original reservation;
// with different parameters it fails with IdempotentParameterMismatch.
func (c *Cloud) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return call(c, ctx, svcEC2, "RunInstances", in, c.runInstances)
}

func (c *Cloud) runInstances(t time.Time, in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	if err := need("RunInstances", req{"MaxCount", in.MaxCount != nil}, req{"MinCount", in.MinCount != nil}); err != nil {
		return nil, err
	}
	token := deref(in.ClientToken)
	if len(token) > 64 {
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter clientToken is invalid. Length exceeds maximum of 64 characters.", token)
	}
	fp := fingerprint(in)
	if token != "" {
		if prev, ok := c.tokens[token]; ok {
			if prev.fingerprint != fp {
				return nil, apiErr("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			return c.runOutput(prev.reservationID, prev.instanceIDs), nil
		}
	}
	minN, maxN := *in.MinCount, *in.MaxCount
	if minN < 1 || maxN < minN {
		return nil, apiErr("InvalidParameterValue", "Invalid value '%d' for maxCount. Must be at least minCount (%d) and at least 1.", maxN, minN)
	}
	if in.LaunchTemplate != nil {
		return nil, apiErr("UnsupportedOperation", "simcloud does not model launch templates in RunInstances; pass ImageId, InstanceType and SubnetId")
	}
	if in.ImageId == nil {
		return nil, apiErr("MissingParameter", "The request must contain the parameter ImageId")
	}
	im, ok := c.images.get(*in.ImageId)
	if !ok {
		if !validID(*in.ImageId, "ami") {
			return nil, apiErr("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", *in.ImageId)
		}
		return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", *in.ImageId)
	}
	if im.state != ec2types.ImageStateAvailable {
		return nil, apiErr("IncorrectState", "Image '%s' is not in a valid state: its state is %s.", im.id, im.state)
	}

	// Network: SubnetId + SecurityGroupIds, or one network interface spec.
	subnetID := deref(in.SubnetId)
	groups := append([]string(nil), in.SecurityGroupIds...)
	publicIP := (*bool)(nil)
	privateIP := deref(in.PrivateIpAddress)
	if len(in.NetworkInterfaces) > 0 {
		if len(in.NetworkInterfaces) > 1 {
			return nil, apiErr("UnsupportedOperation", "simcloud launches instances with one network interface")
		}
		if subnetID != "" {
			return nil, apiErr("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		if len(groups) > 0 || len(in.SecurityGroups) > 0 {
			return nil, apiErr("InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request")
		}
		if privateIP != "" {
			return nil, apiErr("InvalidParameterCombination", "Network interfaces and an instance-level private IP address may not be specified on the same request")
		}
		ni := in.NetworkInterfaces[0]
		if ni.NetworkInterfaceId != nil {
			return nil, apiErr("UnsupportedOperation", "simcloud does not attach existing network interfaces at launch")
		}
		if deref(ni.DeviceIndex) != 0 {
			return nil, apiErr("InvalidParameterValue", "Each network interface requires a device index; the first must be 0.")
		}
		subnetID = deref(ni.SubnetId)
		groups = append([]string(nil), ni.Groups...)
		publicIP = ni.AssociatePublicIpAddress
		privateIP = deref(ni.PrivateIpAddress)
	}
	if subnetID == "" {
		return nil, apiErr("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
	}
	sub, err := c.subnetByID(subnetID)
	if err != nil {
		return nil, err
	}
	for _, name := range in.SecurityGroups {
		g := c.groupByName(sub.vpcID, name)
		if g == nil {
			return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", name, sub.vpcID)
		}
		groups = append(groups, g.id)
	}
	if len(groups) == 0 {
		if g := c.groupByName(sub.vpcID, "default"); g != nil {
			groups = []string{g.id}
		}
	}
	for _, id := range groups {
		g, err := c.secGroupByID(id)
		if err != nil {
			return nil, err
		}
		if g.vpcID != sub.vpcID {
			return nil, apiErr("InvalidParameter", "Security group %s and subnet %s belong to different networks.", id, sub.id)
		}
	}
	if privateIP != "" {
		a, err := parseAddr(privateIP)
		if err != nil || !sub.cidr.Contains(a) {
			return nil, apiErr("InvalidParameterValue", "Address %s does not fall within the subnet's address range", privateIP)
		}
		if c.ipInUse(sub.id, privateIP) {
			return nil, apiErr("InvalidIPAddress.InUse", "Address %s is in use.", privateIP)
		}
		if maxN > 1 {
			return nil, apiErr("InvalidParameterCombination", "Cannot specify a private IP address when launching more than one instance")
		}
	}
	var profileARN string
	if p := in.IamInstanceProfile; p != nil {
		switch {
		case p.Arn != nil:
			profileARN = *p.Arn
		case p.Name != nil:
			profileARN = "arn:aws:iam::" + c.account + ":instance-profile/" + *p.Name
		}
	}
	tags, err := tagSpecs(in.TagSpecifications, "RunInstances", ec2types.ResourceTypeInstance, ec2types.ResourceTypeVolume, ec2types.ResourceTypeNetworkInterface)
	if err != nil {
		return nil, err
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	reservation := c.newID("r")
	var ids []string
	for i := int32(0); i < maxN; i++ {
		inst, err := c.launchInstance(launchSpec{
			imageID:       im.id,
			instanceType:  string(in.InstanceType),
			subnetID:      sub.id,
			groups:        dedupe(groups),
			publicIP:      publicIP,
			privateIP:     privateIP,
			profileARN:    profileARN,
			keyName:       deref(in.KeyName),
			tags:          tags[ec2types.ResourceTypeInstance],
			volumeTags:    tags[ec2types.ResourceTypeVolume],
			eniTags:       tags[ec2types.ResourceTypeNetworkInterface],
			protect:       deref(in.DisableApiTermination),
			clientToken:   token,
			reservationID: reservation,
			launchIndex:   i,
		}, t)
		if err != nil {
			if int32(len(ids)) >= minN {
				break
			}
			for _, id := range ids { // all or nothing below MinCount
				c.discard(id)
			}
			return nil, err
		}
		ids = append(ids, inst.id)
	}
	if token != "" {
		c.tokens[token] = &runToken{fingerprint: fp, reservationID: reservation, instanceIDs: ids}
	}
	return c.runOutput(reservation, ids), nil
}

// discard forgets an instance that was never returned to the caller.
func (c *Cloud) discard(id string) {
	in, ok := c.instances.get(id)
	if !ok {
		return
	}
	for _, e := range in.enis {
		delete(c.enis, e.id)
	}
	for _, v := range in.vols {
		delete(c.volumes, v.id)
	}
	c.instances.del(id)
}

func (c *Cloud) runOutput(reservation string, ids []string) *ec2.RunInstancesOutput {
	out := &ec2.RunInstancesOutput{ReservationId: ptr(reservation), OwnerId: ptr(c.account), Groups: []ec2types.GroupIdentifier{}}
	for _, id := range ids {
		if in, ok := c.instances.get(id); ok {
			out.Instances = append(out.Instances, c.instanceOut(in))
		}
	}
	return out
}

// fingerprint identifies RunInstances parameters for client-token
// idempotency.
func fingerprint(in *ec2.RunInstancesInput) string {
	cp := *in
	cp.ClientToken, cp.DryRun = nil, nil
	b, err := json.Marshal(cp)
	if err != nil {
		return ""
	}
	return string(b)
}

// tagSpecs collects TagSpecifications by resource type, rejecting types the
// operation cannot tag.
func tagSpecs(specs []ec2types.TagSpecification, op string, allowed ...ec2types.ResourceType) (map[ec2types.ResourceType]map[string]string, error) {
	out := map[ec2types.ResourceType]map[string]string{}
	for _, s := range specs {
		ok := false
		for _, a := range allowed {
			ok = ok || s.ResourceType == a
		}
		if !ok {
			return nil, apiErr("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if out[s.ResourceType] == nil {
			out[s.ResourceType] = map[string]string{}
		}
		for _, tag := range s.Tags {
			if err := checkTagKey(deref(tag.Key)); err != nil {
				return nil, err
			}
			out[s.ResourceType][deref(tag.Key)] = deref(tag.Value)
		}
	}
	return out, nil
}

// TerminateInstances implements activities.EC2API. Instances go
// shutting-down, then terminated after Delays.InstanceStop, and stay visible.
// The call is all or nothing: if any instance has termination protection it
// fails with OperationNotPermitted. Terminating an Auto Scaling group member
// makes the group replace it (desired capacity is unchanged).
func (c *Cloud) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return call(c, ctx, svcEC2, "TerminateInstances", in, c.terminateInstances)
}

func (c *Cloud) terminateInstances(t time.Time, in *ec2.TerminateInstancesInput) (*ec2.TerminateInstancesOutput, error) {
	if err := need("TerminateInstances", req{"InstanceIds", in.InstanceIds != nil}); err != nil {
		return nil, err
	}
	list, err := c.instancesByID(in.InstanceIds)
	if err != nil {
		return nil, err
	}
	for _, inst := range list {
		if inst.termProtection && !gone(inst) {
			return nil, apiErr("OperationNotPermitted", "The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", inst.id)
		}
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	out := &ec2.TerminateInstancesOutput{}
	for _, inst := range list {
		prev := inst.state
		c.startShutdown(inst, t, false)
		out.TerminatingInstances = append(out.TerminatingInstances, ec2types.InstanceStateChange{
			InstanceId:    ptr(inst.id),
			PreviousState: instanceState(prev),
			CurrentState:  instanceState(inst.state),
		})
	}
	return out, nil
}
