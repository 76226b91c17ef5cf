package simcloud

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

func (c *Cloud) subnetByID(id string) (*subnet, error) {
	s, ok := c.subnets.get(id)
	if !ok {
		if !validID(id, "subnet") {
			return nil, apiErr("InvalidSubnetID.Malformed", "Invalid id: \"%s\" (expecting \"subnet-...\")", id)
		}
		return nil, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	}
	return s, nil
}

func (c *Cloud) secGroupByID(id string) (*secGroup, error) {
	g, ok := c.secGroups.get(id)
	if !ok {
		if !validID(id, "sg") {
			return nil, apiErr("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
		return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	return g, nil
}

func (c *Cloud) groupByName(vpcID, name string) *secGroup {
	for _, g := range c.secGroups.all() {
		if g.vpcID == vpcID && g.name == name {
			return g
		}
	}
	return nil
}

// checkGroupsFor validates a new group set for an interface: every group
// exists and is in the interface's VPC.
func (c *Cloud) checkGroupsFor(e *eni, groups []string) error {
	if len(groups) > 5 {
		return apiErr("SecurityGroupsPerInterfaceLimitExceeded", "The maximum number of security groups per interface has been reached.")
	}
	for _, id := range groups {
		g, err := c.secGroupByID(id)
		if err != nil {
			return err
		}
		if g.vpcID != e.vpcID {
			return apiErr("InvalidParameter", "Security group %s and subnet %s belong to different networks.", id, e.subnetID)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------

// ModifyNetworkInterfaceAttribute implements activities.EC2API for Groups
// (the interface's whole group set is replaced) and SourceDestCheck.
func (c *Cloud) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	return call(c, ctx, svcEC2, "ModifyNetworkInterfaceAttribute", in, c.modifyNetworkInterfaceAttribute)
}

func (c *Cloud) modifyNetworkInterfaceAttribute(_ time.Time, in *ec2.ModifyNetworkInterfaceAttributeInput) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	if err := need("ModifyNetworkInterfaceAttribute", req{"NetworkInterfaceId", in.NetworkInterfaceId != nil}); err != nil {
		return nil, err
	}
	id := *in.NetworkInterfaceId
	if !validID(id, "eni") {
		return nil, apiErr("InvalidNetworkInterfaceID.Malformed", "Invalid id: \"%s\" (expecting \"eni-...\")", id)
	}
	owner, ok := c.enis[id]
	if !ok {
		return nil, apiErr("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
	}
	var e *eni
	for _, x := range owner.enis {
		if x.id == id {
			e = x
		}
	}
	switch {
	case len(in.Groups) > 0 && in.SourceDestCheck != nil:
		return nil, apiErr("InvalidParameterCombination", "Fields for multiple attribute types specified: groupSet, sourceDestCheck")
	case len(in.Groups) > 0:
		if err := c.checkGroupsFor(e, in.Groups); err != nil {
			return nil, err
		}
		if err := dry(in.DryRun); err != nil {
			return nil, err
		}
		e.groups = dedupe(in.Groups)
	case in.SourceDestCheck != nil:
		if err := dry(in.DryRun); err != nil {
			return nil, err
		}
		owner.sourceDestCheck = deref(in.SourceDestCheck.Value)
	case in.Description != nil:
		if err := dry(in.DryRun); err != nil {
			return nil, err
		}
		e.description = deref(in.Description.Value)
	default:
		return nil, apiErr("UnsupportedOperation", "simcloud models only Groups, SourceDestCheck and Description for ModifyNetworkInterfaceAttribute")
	}
	return &ec2.ModifyNetworkInterfaceAttributeOutput{}, nil
}

// ---------------------------------------------------------------------------

var subnetFilters = set("subnet-id", "vpc-id", "availability-zone", "availabilityZone", "cidr-block", "cidrBlock", "cidr", "state", "default-for-az", "defaultForAz", "owner-id", "tag-key", "tag-value")

// DescribeSubnets implements activities.EC2API with SubnetIds and the filters
// subnet-id, vpc-id, availability-zone, cidr-block, state, default-for-az,
// owner-id, tag:<key>, tag-key and tag-value.
func (c *Cloud) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return call(c, ctx, svcEC2, "DescribeSubnets", in, c.describeSubnets)
}

func (c *Cloud) describeSubnets(_ time.Time, in *ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	if err := checkFilters(in.Filters, subnetFilters); err != nil {
		return nil, err
	}
	list := c.subnets.all()
	if len(in.SubnetIds) > 0 {
		list = nil
		for _, id := range in.SubnetIds {
			s, err := c.subnetByID(id)
			if err != nil {
				return nil, err
			}
			list = append(list, s)
		}
	}
	out := &ec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{}}
	for _, s := range list {
		get := func(name string) ([]string, bool) {
			switch name {
			case "subnet-id":
				return []string{s.id}, true
			case "vpc-id":
				return []string{s.vpcID}, true
			case "availability-zone", "availabilityZone":
				return []string{s.az}, true
			case "cidr-block", "cidrBlock", "cidr":
				return []string{s.cidr.String()}, true
			case "state":
				return []string{"available"}, true
			case "default-for-az", "defaultForAz":
				return []string{"false"}, true
			case "owner-id":
				return []string{c.account}, true
			}
			return nil, false
		}
		if !matchFilters(in.Filters, s.tags, get) {
			continue
		}
		out.Subnets = append(out.Subnets, ec2types.Subnet{
			SubnetId:                ptr(s.id),
			SubnetArn:               ptr(fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", s.region, c.account, s.id)),
			VpcId:                   ptr(s.vpcID),
			AvailabilityZone:        ptr(s.az),
			CidrBlock:               ptr(s.cidr.String()),
			State:                   ec2types.SubnetStateAvailable,
			OwnerId:                 ptr(c.account),
			DefaultForAz:            ptr(false),
			MapPublicIpOnLaunch:     ptr(s.publicIP),
			AvailableIpAddressCount: ptr(c.freeCount(s)),
			Tags:                    tagList(s.tags),
		})
	}
	return out, nil
}

func (c *Cloud) freeCount(s *subnet) int32 {
	size := int64(1) << (32 - s.cidr.Bits())
	used := 0
	for id, in := range c.enis {
		for _, e := range in.enis {
			if e.id == id && e.subnetID == s.id {
				used++
			}
		}
	}
	return int32(max(size-5-int64(used), 0))
}

// ---------------------------------------------------------------------------
// Security groups.

var sgFilters = set("group-id", "group-name", "vpc-id", "description", "owner-id", "tag-key", "tag-value")

// DescribeSecurityGroups implements activities.EC2API with GroupIds,
// GroupNames and the filters group-id, group-name, vpc-id, description,
// owner-id, tag:<key>, tag-key and tag-value.
func (c *Cloud) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return call(c, ctx, svcEC2, "DescribeSecurityGroups", in, c.describeSecurityGroups)
}

func (c *Cloud) describeSecurityGroups(_ time.Time, in *ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error) {
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	if err := checkFilters(in.Filters, sgFilters); err != nil {
		return nil, err
	}
	list := c.secGroups.all()
	if len(in.GroupIds) > 0 || len(in.GroupNames) > 0 {
		list = nil
		for _, id := range in.GroupIds {
			g, err := c.secGroupByID(id)
			if err != nil {
				return nil, err
			}
			list = append(list, g)
		}
		for _, name := range in.GroupNames {
			var found *secGroup
			for _, g := range c.secGroups.all() {
				if g.name == name {
					found = g
					break
				}
			}
			if found == nil {
				return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", name)
			}
			list = append(list, found)
		}
	}
	out := &ec2.DescribeSecurityGroupsOutput{SecurityGroups: []ec2types.SecurityGroup{}}
	for _, g := range list {
		get := func(name string) ([]string, bool) {
			switch name {
			case "group-id":
				return []string{g.id}, true
			case "group-name":
				return []string{g.name}, true
			case "vpc-id":
				return []string{g.vpcID}, true
			case "description":
				return []string{g.description}, true
			case "owner-id":
				return []string{c.account}, true
			}
			return nil, false
		}
		if matchFilters(in.Filters, g.tags, get) {
			out.SecurityGroups = append(out.SecurityGroups, c.secGroupOut(g))
		}
	}
	return out, nil
}

func (c *Cloud) secGroupArn(g *secGroup) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", g.region, c.account, g.id)
}

func (c *Cloud) secGroupOut(g *secGroup) ec2types.SecurityGroup {
	return ec2types.SecurityGroup{
		GroupId:             ptr(g.id),
		GroupName:           ptr(g.name),
		Description:         ptr(g.description),
		VpcId:               ptr(g.vpcID),
		OwnerId:             ptr(c.account),
		SecurityGroupArn:    ptr(c.secGroupArn(g)),
		IpPermissions:       c.permissions(g, false),
		IpPermissionsEgress: c.permissions(g, true),
		Tags:                tagList(g.tags),
	}
}

// permissions folds a group's rules into IpPermissions, one per protocol and
// port range, in the order the rules were added.
func (c *Cloud) permissions(g *secGroup, egress bool) []ec2types.IpPermission {
	out := []ec2types.IpPermission{}
	index := map[string]int{}
	for _, r := range g.rules {
		if r.egress != egress {
			continue
		}
		k := r.proto + "/" + portString(r.from) + "/" + portString(r.to)
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, ec2types.IpPermission{
				IpProtocol: ptr(r.proto), FromPort: copyPort(r.from), ToPort: copyPort(r.to),
				IpRanges: []ec2types.IpRange{}, Ipv6Ranges: []ec2types.Ipv6Range{},
				PrefixListIds: []ec2types.PrefixListId{}, UserIdGroupPairs: []ec2types.UserIdGroupPair{},
			})
		}
		p := &out[i]
		desc := (*string)(nil)
		if r.desc != "" {
			desc = ptr(r.desc)
		}
		switch {
		case r.cidr4 != "":
			p.IpRanges = append(p.IpRanges, ec2types.IpRange{CidrIp: ptr(r.cidr4), Description: desc})
		case r.cidr6 != "":
			p.Ipv6Ranges = append(p.Ipv6Ranges, ec2types.Ipv6Range{CidrIpv6: ptr(r.cidr6), Description: desc})
		case r.prefixList != "":
			p.PrefixListIds = append(p.PrefixListIds, ec2types.PrefixListId{PrefixListId: ptr(r.prefixList), Description: desc})
		case r.group != "":
			p.UserIdGroupPairs = append(p.UserIdGroupPairs, ec2types.UserIdGroupPair{GroupId: ptr(r.group), UserId: ptr(c.account), Description: desc})
		}
	}
	return out
}

func portString(p *int32) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(int(*p))
}

func copyPort(p *int32) *int32 {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

// CreateSecurityGroup implements activities.EC2API. Names are unique per VPC
// (InvalidGroup.Duplicate); a new group has AWS's default allow-all IPv4
// egress rule and no ingress rule.
func (c *Cloud) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return call(c, ctx, svcEC2, "CreateSecurityGroup", in, c.createSecurityGroup)
}

func (c *Cloud) createSecurityGroup(_ time.Time, in *ec2.CreateSecurityGroupInput) (*ec2.CreateSecurityGroupOutput, error) {
	if err := need("CreateSecurityGroup", req{"Description", in.Description != nil}, req{"GroupName", in.GroupName != nil}); err != nil {
		return nil, err
	}
	name := *in.GroupName
	if name == "" || len(name) > 255 {
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter GroupName is invalid. Length must be between 1 and 255 characters.", name)
	}
	if strings.HasPrefix(name, "sg-") {
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter GroupName is invalid. Group names may not be in the format sg-*.", name)
	}
	if in.VpcId == nil {
		return nil, apiErr("VPCIdNotSpecified", "No default VPC for this user")
	}
	v, ok := c.vpcs.get(*in.VpcId)
	if !ok {
		return nil, apiErr("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", *in.VpcId)
	}
	if c.groupByName(v.id, name) != nil {
		return nil, apiErr("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, v.id)
	}
	tags, err := tagSpecs(in.TagSpecifications, "CreateSecurityGroup", ec2types.ResourceTypeSecurityGroup)
	if err != nil {
		return nil, err
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	g := &secGroup{id: c.newID("sg"), name: name, description: *in.Description, vpcID: v.id, region: v.region, tags: tags[ec2types.ResourceTypeSecurityGroup]}
	if g.tags == nil {
		g.tags = map[string]string{}
	}
	g.rules = append(g.rules, &sgRule{id: c.newID("sgr"), egress: true, proto: "-1", cidr4: "0.0.0.0/0"})
	c.secGroups.put(g.id, g)
	return &ec2.CreateSecurityGroupOutput{GroupId: ptr(g.id), SecurityGroupArn: ptr(c.secGroupArn(g)), Tags: tagList(g.tags)}, nil
}

// normProto normalises an IpProtocol as AWS stores it.
func normProto(p string) (string, error) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return "-1", nil
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "icmpv6", "58":
		return "icmpv6", nil
	}
	if n, err := strconv.Atoi(p); err == nil && n >= 0 && n <= 255 {
		return p, nil
	}
	return "", apiErr("InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", p)
}

// rulesFrom expands IpPermissions into one rule per peer.
func (c *Cloud) rulesFrom(perms []ec2types.IpPermission, egress bool) ([]*sgRule, error) {
	var out []*sgRule
	for _, p := range perms {
		proto, err := normProto(deref(p.IpProtocol))
		if err != nil {
			return nil, err
		}
		var from, to *int32
		if proto != "-1" {
			if p.FromPort == nil || p.ToPort == nil {
				if proto == "tcp" || proto == "udp" {
					return nil, apiErr("InvalidParameterValue", "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.")
				}
			} else {
				from, to = ptr(*p.FromPort), ptr(*p.ToPort)
				if (proto == "tcp" || proto == "udp") && (*from < 0 || *to > 65535 || *from > *to) {
					return nil, apiErr("InvalidParameterValue", "Invalid TCP/UDP port range %d-%d.", *from, *to)
				}
			}
		}
		base := sgRule{egress: egress, proto: proto, from: from, to: to}
		n := 0
		for _, r := range p.IpRanges {
			x := base
			x.cidr4, x.desc = deref(r.CidrIp), deref(r.Description)
			if _, err := netip.ParsePrefix(x.cidr4); err != nil {
				return nil, apiErr("InvalidParameterValue", "CIDR block %s is malformed", x.cidr4)
			}
			out = append(out, &x)
			n++
		}
		for _, r := range p.Ipv6Ranges {
			x := base
			x.cidr6, x.desc = deref(r.CidrIpv6), deref(r.Description)
			out = append(out, &x)
			n++
		}
		for _, r := range p.PrefixListIds {
			x := base
			x.prefixList, x.desc = deref(r.PrefixListId), deref(r.Description)
			out = append(out, &x)
			n++
		}
		for _, r := range p.UserIdGroupPairs {
			x := base
			x.group, x.desc = deref(r.GroupId), deref(r.Description)
			if _, err := c.secGroupByID(x.group); err != nil {
				return nil, err
			}
			out = append(out, &x)
			n++
		}
		if n == 0 {
			return nil, apiErr("MissingParameter", "Either IpRanges, Ipv6Ranges, PrefixListIds or UserIdGroupPairs must be specified for each permission.")
		}
	}
	return out, nil
}

func (r *sgRule) key() string {
	return fmt.Sprintf("%t|%s|%s|%s|%s|%s|%s|%s", r.egress, r.proto, portString(r.from), portString(r.to), r.cidr4, r.cidr6, r.group, r.prefixList)
}

func (r *sgRule) describe() string {
	peer := r.cidr4 + r.cidr6 + r.group + r.prefixList
	return fmt.Sprintf("peer: %s, %s, from port: %s, to port: %s, ALLOW", peer, strings.ToUpper(r.proto), portString(r.from), portString(r.to))
}

func (c *Cloud) ruleOut(g *secGroup, r *sgRule) ec2types.SecurityGroupRule {
	out := ec2types.SecurityGroupRule{
		SecurityGroupRuleId:  ptr(r.id),
		GroupId:              ptr(g.id),
		GroupOwnerId:         ptr(c.account),
		IsEgress:             ptr(r.egress),
		IpProtocol:           ptr(r.proto),
		FromPort:             ptr(int32(-1)),
		ToPort:               ptr(int32(-1)),
		SecurityGroupRuleArn: ptr(fmt.Sprintf("arn:aws:ec2:%s:%s:security-group-rule/%s", g.region, c.account, r.id)),
	}
	if r.from != nil {
		out.FromPort, out.ToPort = ptr(*r.from), ptr(*r.to)
	}
	if r.cidr4 != "" {
		out.CidrIpv4 = ptr(r.cidr4)
	}
	if r.cidr6 != "" {
		out.CidrIpv6 = ptr(r.cidr6)
	}
	if r.prefixList != "" {
		out.PrefixListId = ptr(r.prefixList)
	}
	if r.group != "" {
		out.ReferencedGroupInfo = &ec2types.ReferencedSecurityGroup{GroupId: ptr(r.group), UserId: ptr(c.account)}
	}
	if r.desc != "" {
		out.Description = ptr(r.desc)
	}
	return out
}

// AuthorizeSecurityGroupIngress implements activities.EC2API with GroupId (or
// a unique GroupName) and IpPermissions, or the flat CidrIp/IpProtocol/
// FromPort/ToPort form. An existing rule fails InvalidPermission.Duplicate.
func (c *Cloud) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return call(c, ctx, svcEC2, "AuthorizeSecurityGroupIngress", in, c.authorizeIngress)
}

func (c *Cloud) authorizeIngress(_ time.Time, in *ec2.AuthorizeSecurityGroupIngressInput) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	var g *secGroup
	switch {
	case in.GroupId != nil:
		var err error
		if g, err = c.secGroupByID(*in.GroupId); err != nil {
			return nil, err
		}
	case in.GroupName != nil:
		for _, x := range c.secGroups.all() {
			if x.name == *in.GroupName {
				g = x
				break
			}
		}
		if g == nil {
			return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", *in.GroupName)
		}
	default:
		return nil, apiErr("MissingParameter", "The request must contain the parameter groupName or groupId")
	}
	perms := in.IpPermissions
	if in.IpProtocol != nil || in.CidrIp != nil {
		if len(perms) > 0 {
			return nil, apiErr("InvalidParameterCombination", "The parameter 'ipPermissions' may not be used in combination with 'ipProtocol'")
		}
		perms = []ec2types.IpPermission{{IpProtocol: in.IpProtocol, FromPort: in.FromPort, ToPort: in.ToPort, IpRanges: []ec2types.IpRange{{CidrIp: in.CidrIp}}}}
	}
	if len(perms) == 0 {
		return nil, apiErr("MissingParameter", "No inbound rule specified.")
	}
	rules, err := c.rulesFrom(perms, false)
	if err != nil {
		return nil, err
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	added, err := c.addRules(g, rules)
	if err != nil {
		return nil, err
	}
	return &ec2.AuthorizeSecurityGroupIngressOutput{Return: ptr(true), SecurityGroupRules: added}, nil
}

// addRules adds rules to g; one that exists fails the whole call with
// InvalidPermission.Duplicate, as on AWS.
func (c *Cloud) addRules(g *secGroup, rules []*sgRule) ([]ec2types.SecurityGroupRule, error) {
	existing := map[string]bool{}
	for _, r := range g.rules {
		existing[r.key()] = true
	}
	for _, r := range rules {
		if existing[r.key()] {
			return nil, apiErr("InvalidPermission.Duplicate", "the specified rule \"%s\" already exists", r.describe())
		}
		existing[r.key()] = true
	}
	var out []ec2types.SecurityGroupRule
	for _, r := range rules {
		r.id = c.newID("sgr")
		g.rules = append(g.rules, r)
		out = append(out, c.ruleOut(g, r))
	}
	return out, nil
}

// AuthorizeSecurityGroupEgress implements activities.EC2API with GroupId and
// IpPermissions. An existing rule fails InvalidPermission.Duplicate.
func (c *Cloud) AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	return call(c, ctx, svcEC2, "AuthorizeSecurityGroupEgress", in, c.authorizeEgress)
}

func (c *Cloud) authorizeEgress(_ time.Time, in *ec2.AuthorizeSecurityGroupEgressInput) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	if err := need("AuthorizeSecurityGroupEgress", req{"GroupId", in.GroupId != nil}); err != nil {
		return nil, err
	}
	g, err := c.secGroupByID(*in.GroupId)
	if err != nil {
		return nil, err
	}
	if in.CidrIp != nil || in.IpProtocol != nil || in.SourceSecurityGroupName != nil {
		return nil, apiErr("InvalidParameterCombination", "The parameter 'ipProtocol' is not supported for egress rules; use ipPermissions")
	}
	if len(in.IpPermissions) == 0 {
		return nil, apiErr("MissingParameter", "No outbound rule specified.")
	}
	rules, err := c.rulesFrom(in.IpPermissions, true)
	if err != nil {
		return nil, err
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	added, err := c.addRules(g, rules)
	if err != nil {
		return nil, err
	}
	return &ec2.AuthorizeSecurityGroupEgressOutput{Return: ptr(true), SecurityGroupRules: added}, nil
}

// RevokeSecurityGroupEgress implements activities.EC2API with
// SecurityGroupRuleIds or IpPermissions. Permissions that match no rule are
// returned in UnknownIpPermissions, as on AWS; unknown rule IDs fail.
func (c *Cloud) RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	return call(c, ctx, svcEC2, "RevokeSecurityGroupEgress", in, c.revokeEgress)
}

func (c *Cloud) revokeEgress(_ time.Time, in *ec2.RevokeSecurityGroupEgressInput) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	if err := need("RevokeSecurityGroupEgress", req{"GroupId", in.GroupId != nil}); err != nil {
		return nil, err
	}
	g, err := c.secGroupByID(*in.GroupId)
	if err != nil {
		return nil, err
	}
	if in.CidrIp != nil || in.IpProtocol != nil || in.SourceSecurityGroupName != nil {
		return nil, apiErr("InvalidParameterCombination", "The parameter 'ipProtocol' is not supported for egress rules; use ipPermissions")
	}
	if len(in.IpPermissions) == 0 && len(in.SecurityGroupRuleIds) == 0 {
		return nil, apiErr("MissingParameter", "No outbound rule specified.")
	}
	unknown, revoked, err := c.revokeRules(g, in.SecurityGroupRuleIds, in.IpPermissions, true, in.DryRun)
	if err != nil {
		return nil, err
	}
	return &ec2.RevokeSecurityGroupEgressOutput{Return: ptr(true), UnknownIpPermissions: unknown, RevokedSecurityGroupRules: revoked}, nil
}

// RevokeSecurityGroupIngress implements activities.EC2API with GroupId and
// SecurityGroupRuleIds or IpPermissions. Permissions that match no rule are
// returned in UnknownIpPermissions, as on AWS; unknown rule IDs fail.
func (c *Cloud) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	return call(c, ctx, svcEC2, "RevokeSecurityGroupIngress", in, c.revokeIngress)
}

func (c *Cloud) revokeIngress(_ time.Time, in *ec2.RevokeSecurityGroupIngressInput) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	if err := need("RevokeSecurityGroupIngress", req{"GroupId", in.GroupId != nil}); err != nil {
		return nil, err
	}
	g, err := c.secGroupByID(*in.GroupId)
	if err != nil {
		return nil, err
	}
	if in.CidrIp != nil || in.IpProtocol != nil || in.SourceSecurityGroupName != nil {
		return nil, apiErr("InvalidParameterCombination", "use ipPermissions or securityGroupRuleIds (the flat form is not simulated)")
	}
	if len(in.IpPermissions) == 0 && len(in.SecurityGroupRuleIds) == 0 {
		return nil, apiErr("MissingParameter", "No inbound rule specified.")
	}
	unknown, revoked, err := c.revokeRules(g, in.SecurityGroupRuleIds, in.IpPermissions, false, in.DryRun)
	if err != nil {
		return nil, err
	}
	return &ec2.RevokeSecurityGroupIngressOutput{Return: ptr(true), UnknownIpPermissions: unknown, RevokedSecurityGroupRules: revoked}, nil
}

// revokeRules removes the rules of one direction named by ID or permission.
func (c *Cloud) revokeRules(g *secGroup, ids []string, perms []ec2types.IpPermission, egress bool, dryRun *bool) ([]ec2types.IpPermission, []ec2types.RevokedSecurityGroupRule, error) {
	remove := map[*sgRule]bool{}
	for _, id := range ids {
		var found *sgRule
		for _, r := range g.rules {
			if r.id == id && r.egress == egress {
				found = r
			}
		}
		if found == nil {
			return nil, nil, apiErr("InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist", id)
		}
		remove[found] = true
	}
	var unknown []ec2types.IpPermission
	for _, p := range perms {
		rules, err := c.rulesFrom([]ec2types.IpPermission{p}, egress)
		if err != nil {
			return nil, nil, err
		}
		for _, want := range rules {
			matched := false
			for _, r := range g.rules {
				if r.key() == want.key() {
					remove[r] = true
					matched = true
				}
			}
			if !matched {
				unknown = append(unknown, p)
			}
		}
	}
	if err := dry(dryRun); err != nil {
		return nil, nil, err
	}
	var revoked []ec2types.RevokedSecurityGroupRule
	kept := g.rules[:0:0]
	for _, r := range g.rules {
		if !remove[r] {
			kept = append(kept, r)
			continue
		}
		rv := ec2types.RevokedSecurityGroupRule{
			SecurityGroupRuleId: ptr(r.id), GroupId: ptr(g.id), IsEgress: ptr(egress), IpProtocol: ptr(r.proto),
			FromPort: copyPort(r.from), ToPort: copyPort(r.to),
		}
		if r.cidr4 != "" {
			rv.CidrIpv4 = ptr(r.cidr4)
		}
		if r.cidr6 != "" {
			rv.CidrIpv6 = ptr(r.cidr6)
		}
		if r.group != "" {
			rv.ReferencedGroupId = ptr(r.group)
		}
		revoked = append(revoked, rv)
	}
	g.rules = kept
	return unknown, revoked, nil
}
