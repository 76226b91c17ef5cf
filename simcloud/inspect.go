package simcloud

import (
	"sync"
	"time"

	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// ManualClock is a clock that moves only when told, for deterministic tests:
// pass its Now as Options.Now.
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock returns a clock stopped at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{t: start} }

// Now returns the clock's time.
func (m *ManualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

// Advance moves the clock forward by d.
func (m *ManualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
}

// Inspection helpers for tests and the demo. They do not appear in Calls, but
// like API calls they first apply the transitions that are due. They return
// copies.

// InstanceInfo is a snapshot of one instance.
type InstanceInfo struct {
	ID                    string
	Type                  string
	ImageID               string
	Region                string
	AvailabilityZone      string
	State                 string // pending, running, shutting-down, terminated
	SubnetID              string // of the primary interface (kept after termination)
	VPCID                 string
	PrivateIP             string
	PublicIP              string
	PrivateDNSName        string
	IAMInstanceProfile    string // ARN; empty without a profile
	TerminationProtection bool
	ClientToken           string
	ReservationID         string
	LaunchTime            time.Time
	ENIs                  []ENIInfo // in device order; empty once terminated
	GroupIDs              []string  // security groups, union over the ENIs
	Volumes               []VolumeInfo
	Tags                  map[string]string
	// Reboots counts CreateImage calls without NoReboot on the running
	// instance: each would have rebooted it on AWS.
	Reboots int
	// AutoScalingGroup is the group the instance is a member of now, if any.
	AutoScalingGroup string
}

// ENIInfo is one attached network interface.
type ENIInfo struct {
	ID          string
	DeviceIndex int32
	SubnetID    string
	PrivateIP   string
	GroupIDs    []string // its security groups
}

// VolumeInfo is one attached EBS volume.
type VolumeInfo struct {
	ID      string
	Device  string
	SizeGiB int32
}

// GroupInfo is a snapshot of an Auto Scaling group.
type GroupInfo struct {
	Name            string
	Min             int32
	Max             int32
	Desired         int32
	Members         []MemberInfo
	Subnets         []string
	SecurityGroups  []string
	TargetGroupARNs []string
	ImageID         string
	InstanceType    string
	// ScheduledLaunches counts launches the group has decided on but not
	// made yet (waiting for Delays.Replace).
	ScheduledLaunches int
	// LastLaunchError is the error of the latest failed launch, if the last
	// attempt failed.
	LastLaunchError string
}

// InService returns the IDs of the members that are InService.
func (g GroupInfo) InService() []string {
	var out []string
	for _, m := range g.Members {
		if m.LifecycleState == string(astypes.LifecycleStateInService) {
			out = append(out, m.InstanceID)
		}
	}
	return out
}

// MemberInfo is one member of a group.
type MemberInfo struct {
	InstanceID           string
	LifecycleState       string // Pending, InService, Terminating, Detaching
	HealthStatus         string // Healthy, Unhealthy
	ProtectedFromScaleIn bool
	AvailabilityZone     string
}

// ImageInfo is a snapshot of an AMI.
type ImageInfo struct {
	ID               string
	Name             string
	Description      string
	OwnerID          string
	State            string // pending or available
	SourceInstanceID string
	// NoReboot records whether CreateImage was called with NoReboot=true.
	NoReboot    bool
	SnapshotIDs []string
	Tags        map[string]string
	Created     time.Time
}

// SnapshotInfo is a snapshot of an EBS snapshot.
type SnapshotInfo struct {
	ID          string
	VolumeID    string
	Description string
	SizeGiB     int32
	State       string // pending, completed
	Tags        map[string]string
	// ImageIDs are the registered images that use it.
	ImageIDs []string
}

// SecurityGroupInfo is a snapshot of a security group.
type SecurityGroupInfo struct {
	ID          string
	Name        string
	VPCID       string
	Description string
	Ingress     []RuleInfo
	Egress      []RuleInfo
	Tags        map[string]string
}

// RuleInfo is one security group rule with one peer. FromPort and ToPort are
// -1 for all traffic.
type RuleInfo struct {
	ID          string
	Protocol    string
	FromPort    int32
	ToPort      int32
	CIDR        string
	GroupID     string
	Description string
}

// TargetInfo is one target of a target group.
type TargetInfo struct {
	ID    string
	Port  int32
	State string // initial, healthy, draining
}

func (c *Cloud) inspect() func() {
	c.mu.Lock()
	c.advance()
	return c.mu.Unlock
}

func (c *Cloud) instanceInfo(in *instance) InstanceInfo {
	out := InstanceInfo{
		ID: in.id, Type: in.instanceType, ImageID: in.imageID, Region: in.region, AvailabilityZone: in.az, State: string(in.state),
		SubnetID: in.lastSubnetID, VPCID: in.lastVPCID, PrivateIP: in.lastPrivateIP, PublicIP: in.publicIP, PrivateDNSName: in.privateDNS,
		IAMInstanceProfile: in.profileARN, TerminationProtection: in.termProtection, ClientToken: in.clientToken,
		ReservationID: in.reservationID, LaunchTime: in.launched, Tags: copyTags(in.tags), Reboots: in.reboots,
		GroupIDs: c.instanceGroupIDs(in),
	}
	if len(in.enis) > 0 {
		out.SubnetID, out.VPCID, out.PrivateIP = in.enis[0].subnetID, in.enis[0].vpcID, in.enis[0].privateIP
	}
	for _, e := range in.enis {
		out.ENIs = append(out.ENIs, ENIInfo{
			ID: e.id, DeviceIndex: e.index, SubnetID: e.subnetID, PrivateIP: e.privateIP, GroupIDs: append([]string(nil), e.groups...),
		})
	}
	for _, v := range in.vols {
		out.Volumes = append(out.Volumes, VolumeInfo{ID: v.id, Device: v.device, SizeGiB: v.size})
	}
	if g, _ := c.memberOf(in.id); g != nil {
		out.AutoScalingGroup = g.name
	}
	return out
}

// Instance returns an instance by ID.
func (c *Cloud) Instance(id string) (InstanceInfo, bool) {
	defer c.inspect()()
	in, ok := c.instances.get(id)
	if !ok {
		return InstanceInfo{}, false
	}
	return c.instanceInfo(in), true
}

// Instances returns every instance, terminated ones included, in launch order.
func (c *Cloud) Instances() []InstanceInfo {
	defer c.inspect()()
	var out []InstanceInfo
	for _, in := range c.instances.all() {
		out = append(out, c.instanceInfo(in))
	}
	return out
}

// InstanceByPrivateIP returns the instance that holds a private address now
// (on any of its interfaces).
func (c *Cloud) InstanceByPrivateIP(ip string) (InstanceInfo, bool) {
	defer c.inspect()()
	for _, in := range c.instances.all() {
		for _, e := range in.enis {
			if e.privateIP == ip {
				return c.instanceInfo(in), true
			}
		}
	}
	return InstanceInfo{}, false
}

// Group returns an Auto Scaling group by name.
func (c *Cloud) Group(name string) (GroupInfo, bool) {
	defer c.inspect()()
	g, ok := c.groups.get(name)
	if !ok {
		return GroupInfo{}, false
	}
	out := GroupInfo{
		Name: g.name, Min: g.min, Max: g.max, Desired: g.desired,
		Subnets: append([]string(nil), g.subnets...), SecurityGroups: append([]string(nil), g.secGroups...),
		TargetGroupARNs: append([]string(nil), g.targetGroups...), ImageID: g.imageID, InstanceType: g.instanceType,
		ScheduledLaunches: len(g.launches), LastLaunchError: g.lastLaunchErr,
	}
	for _, m := range g.members {
		out.Members = append(out.Members, MemberInfo{InstanceID: m.id, LifecycleState: string(m.lifecycle), HealthStatus: m.health,
			ProtectedFromScaleIn: m.protected, AvailabilityZone: m.az})
	}
	return out, true
}

func (c *Cloud) imageInfo(im *image) ImageInfo {
	out := ImageInfo{ID: im.id, Name: im.name, Description: im.desc, OwnerID: im.owner, State: string(im.state), SourceInstanceID: im.source,
		NoReboot: im.noReboot, Tags: copyTags(im.tags), Created: im.created}
	for _, d := range im.disks {
		out.SnapshotIDs = append(out.SnapshotIDs, d.snapshotID)
	}
	return out
}

// Image returns a registered image by ID; like DescribeImages, it no longer
// finds a deregistered one.
func (c *Cloud) Image(id string) (ImageInfo, bool) {
	defer c.inspect()()
	im, ok := c.images.get(id)
	if !ok {
		return ImageInfo{}, false
	}
	return c.imageInfo(im), true
}

// Images returns every registered image in creation order (base images
// first).
func (c *Cloud) Images() []ImageInfo {
	defer c.inspect()()
	var out []ImageInfo
	for _, im := range c.images.all() {
		out = append(out, c.imageInfo(im))
	}
	return out
}

// Snapshot returns a snapshot by ID.
func (c *Cloud) Snapshot(id string) (SnapshotInfo, bool) {
	defer c.inspect()()
	s, ok := c.snapshots.get(id)
	if !ok {
		return SnapshotInfo{}, false
	}
	return c.snapshotInfo(s), true
}

// Snapshots returns every snapshot that exists.
func (c *Cloud) Snapshots() []SnapshotInfo {
	defer c.inspect()()
	var out []SnapshotInfo
	for _, s := range c.snapshots.all() {
		out = append(out, c.snapshotInfo(s))
	}
	return out
}

func (c *Cloud) snapshotInfo(s *snapshot) SnapshotInfo {
	out := SnapshotInfo{ID: s.id, VolumeID: s.volumeID, Description: s.desc, SizeGiB: s.size, State: string(s.state), Tags: copyTags(s.tags)}
	for _, im := range c.images.all() {
		for _, d := range im.disks {
			if d.snapshotID == s.id {
				out.ImageIDs = append(out.ImageIDs, im.id)
			}
		}
	}
	return out
}

// SecurityGroup returns a security group by ID or by name (the first group
// with that name, in declaration order).
func (c *Cloud) SecurityGroup(idOrName string) (SecurityGroupInfo, bool) {
	defer c.inspect()()
	g, ok := c.secGroups.get(idOrName)
	if !ok {
		for _, x := range c.secGroups.all() {
			if x.name == idOrName {
				g, ok = x, true
				break
			}
		}
	}
	if !ok {
		return SecurityGroupInfo{}, false
	}
	out := SecurityGroupInfo{ID: g.id, Name: g.name, VPCID: g.vpcID, Description: g.description, Tags: copyTags(g.tags)}
	for _, r := range g.rules {
		ri := RuleInfo{ID: r.id, Protocol: r.proto, FromPort: -1, ToPort: -1, CIDR: r.cidr4 + r.cidr6 + r.prefixList, GroupID: r.group, Description: r.desc}
		if r.from != nil {
			ri.FromPort, ri.ToPort = *r.from, *r.to
		}
		if r.egress {
			out.Egress = append(out.Egress, ri)
		} else {
			out.Ingress = append(out.Ingress, ri)
		}
	}
	return out, true
}

// SubnetID returns the ID of the subnet with a given Name tag (or ID).
func (c *Cloud) SubnetID(nameOrID string) (string, bool) {
	defer c.inspect()()
	for _, s := range c.subnets.all() {
		if s.id == nameOrID || s.tags["Name"] == nameOrID {
			return s.id, true
		}
	}
	return "", false
}

// TargetGroupARN returns the ARN of a target group by name.
func (c *Cloud) TargetGroupARN(name string) (string, bool) {
	defer c.inspect()()
	for _, tg := range c.targetGroups.all() {
		if tg.name == name {
			return tg.arn, true
		}
	}
	return "", false
}

// Targets returns the targets of a target group (by name or ARN).
func (c *Cloud) Targets(targetGroup string) []TargetInfo {
	defer c.inspect()()
	var out []TargetInfo
	for _, tg := range c.targetGroups.all() {
		if tg.name != targetGroup && tg.arn != targetGroup {
			continue
		}
		for _, tr := range tg.targets {
			out = append(out, TargetInfo{ID: tr.id, Port: tr.port, State: string(tr.state)})
		}
	}
	return out
}

// Topics returns the SNS topic ARNs.
func (c *Cloud) Topics() []string {
	defer c.inspect()()
	return append([]string(nil), c.topics.order...)
}

// Published returns the messages published so far, oldest first.
func (c *Cloud) Published() []PublishedMessage {
	defer c.inspect()()
	out := make([]PublishedMessage, 0, len(c.published))
	for _, p := range c.published {
		attrs := make(map[string]snstypes.MessageAttributeValue, len(p.MessageAttributes))
		for k, v := range p.MessageAttributes {
			cp := snstypes.MessageAttributeValue{DataType: ptr(deref(v.DataType))}
			if v.StringValue != nil {
				cp.StringValue = ptr(*v.StringValue)
			}
			if v.BinaryValue != nil {
				cp.BinaryValue = append([]byte(nil), v.BinaryValue...)
			}
			attrs[k] = cp
		}
		p.MessageAttributes = attrs
		out = append(out, p)
	}
	return out
}
