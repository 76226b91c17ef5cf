package simcloud

import (
	"fmt"
	"net/netip"
	"time"

	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// The resources the cloud holds. They never leave the package: API outputs and
// inspection helpers build fresh values from them.

type vpc struct {
	id     string
	region string
	cidr   netip.Prefix
	tags   map[string]string
}

type subnet struct {
	id       string
	vpcID    string
	region   string
	az       string
	cidr     netip.Prefix
	publicIP bool // MapPublicIpOnLaunch
	tags     map[string]string
}

type secGroup struct {
	id          string
	name        string
	description string
	vpcID       string
	region      string
	rules       []*sgRule
	tags        map[string]string
}

type sgRule struct {
	id         string
	egress     bool
	proto      string // "-1", "tcp", "udp", "icmp", "icmpv6" or a protocol number
	from, to   *int32 // nil for "-1"
	cidr4      string
	cidr6      string
	group      string // referenced security group ID
	prefixList string
	desc       string
}

type instance struct {
	seq              int
	id               string
	instanceType     string
	imageID          string
	region           string
	az               string
	privateDNS       string
	publicIP         string
	profileARN       string
	profileID        string
	keyName          string
	enis             []*eni
	vols             []*volume
	tags             map[string]string
	termProtection   bool
	sourceDestCheck  bool
	shutdownBehavior string
	launched         time.Time
	state            ec2types.InstanceStateName
	since            time.Time // when it entered state
	due              time.Time // when pending or shutting-down ends
	reason           string    // StateTransitionReason
	clientToken      string
	reservationID    string
	launchIndex      int32
	reboots          int
	// Kept after termination (when the ENIs are gone) for inspection.
	lastSubnetID, lastVPCID, lastPrivateIP string
}

type eni struct {
	id           string
	subnetID     string
	vpcID        string
	privateIP    string
	mac          string
	attachID     string
	description  string
	index        int32
	groups       []string
	attached     time.Time
	deleteOnTerm bool
	tags         map[string]string
}

type volume struct {
	id           string
	device       string
	size         int32
	volType      string
	snapshotID   string
	deleteOnTerm bool
	attached     time.Time
	tags         map[string]string
}

type image struct {
	seq        int
	id         string
	name       string
	desc       string
	owner      string
	alias      string // "amazon" for public base images
	state      ec2types.ImageState
	created    time.Time
	due        time.Time
	source     string // source instance ID
	noReboot   bool
	rootDevice string
	disks      []imageDisk
	tags       map[string]string
}

type imageDisk struct {
	device       string
	snapshotID   string
	size         int32
	volType      string
	deleteOnTerm bool
}

type snapshot struct {
	id       string
	volumeID string
	desc     string
	owner    string
	size     int32
	state    ec2types.SnapshotState
	started  time.Time
	due      time.Time // when pending ends
	tags     map[string]string
}

type asGroup struct {
	name           string
	arn            string
	region         string
	min, max       int32
	desired        int32
	subnets        []string
	secGroups      []string
	targetGroups   []string // ARNs
	instanceType   string
	imageID        string
	profileARN     string
	launchTemplate string
	launchTplID    string
	healthCheck    string
	newProtected   bool
	tags           map[string]string
	created        time.Time
	members        []*member
	launches       []time.Time // scheduled launches, earliest first
	lastLaunchErr  string
}

type member struct {
	id           string
	lifecycle    astypes.LifecycleState
	health       string // "Healthy" or "Unhealthy"
	protected    bool
	az           string
	imageID      string
	instanceType string
	due          time.Time // when Detaching ends
}

type targetGroup struct {
	arn          string
	name         string
	region       string
	vpcID        string
	protocol     string
	port         int32
	loadBalancer string
	targets      []*target
}

type target struct {
	id    string
	port  int32
	state elbtypes.TargetHealthStateEnum
	due   time.Time // initial → healthy, draining → gone
}

type runToken struct {
	fingerprint   string
	reservationID string
	instanceIDs   []string
}

// ---------------------------------------------------------------------------
// Time: the event loop.

// advance applies, in time order, every transition whose deadline is not
// after now, and returns now. Each transition happens at its own deadline, so
// the outcome does not depend on how often the cloud is polled.
func (c *Cloud) advance() time.Time {
	now := c.now()
	if now.Before(c.last) {
		now = c.last
	}
	for range 1_000_000 {
		at, apply := c.nextEvent(now)
		if apply == nil {
			break
		}
		apply(at)
	}
	c.last = now
	return now
}

// nextEvent finds the earliest transition due by now.
func (c *Cloud) nextEvent(now time.Time) (time.Time, func(time.Time)) {
	var best time.Time
	var apply func(time.Time)
	consider := func(at time.Time, f func(time.Time)) {
		if at.After(now) {
			return
		}
		if apply == nil || at.Before(best) {
			best, apply = at, f
		}
	}
	for _, in := range c.instances.all() {
		switch in.state {
		case ec2types.InstanceStateNamePending:
			consider(in.due, func(t time.Time) { c.instanceRunning(in, t) })
		case ec2types.InstanceStateNameShuttingDown:
			consider(in.due, func(t time.Time) { c.instanceTerminated(in, t) })
		}
	}
	for _, im := range c.images.all() {
		if im.state == ec2types.ImageStatePending {
			consider(im.due, func(t time.Time) { c.imageAvailable(im, t) })
		}
	}
	for _, s := range c.snapshots.all() {
		if s.state == ec2types.SnapshotStatePending {
			consider(s.due, func(time.Time) { s.state = ec2types.SnapshotStateCompleted })
		}
	}
	for _, g := range c.groups.all() {
		if len(g.launches) > 0 {
			consider(g.launches[0], func(t time.Time) { c.groupLaunch(g, t) })
		}
		for _, m := range g.members {
			if m.lifecycle == astypes.LifecycleStateDetaching {
				consider(m.due, func(t time.Time) { c.removeMember(g, m.id, t) })
			}
		}
	}
	for _, tg := range c.targetGroups.all() {
		for _, tr := range tg.targets {
			switch tr.state {
			case elbtypes.TargetHealthStateEnumInitial:
				in, ok := c.instances.get(tr.id)
				if ok && in.state == ec2types.InstanceStateNameRunning {
					consider(maxTime(tr.due, in.since), func(time.Time) { tr.state = elbtypes.TargetHealthStateEnumHealthy })
				}
			case elbtypes.TargetHealthStateEnumDraining:
				consider(tr.due, func(time.Time) { c.removeTarget(tg, tr) })
			}
		}
	}
	return best, apply
}

func (c *Cloud) instanceRunning(in *instance, t time.Time) {
	in.state = ec2types.InstanceStateNameRunning
	in.since = t
	in.reason = ""
	if g, m := c.memberOf(in.id); g != nil && m.lifecycle == astypes.LifecycleStatePending {
		m.lifecycle = astypes.LifecycleStateInService
		c.registerInGroupTargets(g, in.id, t)
	}
}

// startShutdown moves an instance to shutting-down; byGroup says the group
// itself terminates it (scale-in), otherwise a group it belongs to notices
// the instance is not running, marks it unhealthy and replaces it.
func (c *Cloud) startShutdown(in *instance, t time.Time, byGroup bool) bool {
	switch in.state {
	case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated:
		return false
	}
	in.state = ec2types.InstanceStateNameShuttingDown
	in.since = t
	in.due = t.Add(c.delays.InstanceStop)
	in.reason = fmt.Sprintf("User initiated (%s)", t.UTC().Format("2006-01-02 15:04:05 MST"))
	if byGroup {
		in.reason = fmt.Sprintf("Service initiated (%s)", t.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	c.drainInstance(in.id, t)
	if g, m := c.memberOf(in.id); g != nil {
		if m.lifecycle != astypes.LifecycleStateTerminating && m.lifecycle != astypes.LifecycleStateDetaching {
			m.lifecycle = astypes.LifecycleStateTerminating
			if !byGroup {
				m.health = "Unhealthy"
			}
			c.reconcile(g, t)
		}
	}
	return true
}

func (c *Cloud) instanceTerminated(in *instance, t time.Time) {
	in.state = ec2types.InstanceStateNameTerminated
	in.since = t
	if len(in.enis) > 0 {
		in.lastSubnetID, in.lastVPCID, in.lastPrivateIP = in.enis[0].subnetID, in.enis[0].vpcID, in.enis[0].privateIP
	}
	for _, e := range in.enis {
		delete(c.enis, e.id)
	}
	in.enis = nil
	for _, v := range in.vols {
		delete(c.volumes, v.id)
	}
	in.vols = nil
	in.publicIP = ""
	in.privateDNS = ""
	if g, _ := c.memberOf(in.id); g != nil {
		c.removeMember(g, in.id, t)
	}
}

func (c *Cloud) imageAvailable(im *image, _ time.Time) {
	im.state = ec2types.ImageStateAvailable
}

// ---------------------------------------------------------------------------
// Auto Scaling mechanics.

func (c *Cloud) memberOf(id string) (*asGroup, *member) {
	for _, g := range c.groups.all() {
		for _, m := range g.members {
			if m.id == id {
				return g, m
			}
		}
	}
	return nil, nil
}

func (c *Cloud) removeMember(g *asGroup, id string, t time.Time) {
	for i, m := range g.members {
		if m.id == id {
			g.members = append(g.members[:i:i], g.members[i+1:]...)
			break
		}
	}
	c.reconcile(g, t)
}

func counts(m *member) bool {
	return m.lifecycle == astypes.LifecycleStatePending || m.lifecycle == astypes.LifecycleStateInService
}

// reconcile brings the group's capacity (members Pending or InService plus
// scheduled launches) to its desired capacity: it schedules launches after
// Delays.Replace, or cancels scheduled launches and then terminates the
// newest members not protected from scale-in.
func (c *Cloud) reconcile(g *asGroup, t time.Time) {
	active := 0
	for _, m := range g.members {
		if counts(m) {
			active++
		}
	}
	total := active + len(g.launches)
	for ; total < int(g.desired); total++ {
		g.launches = append(g.launches, t.Add(c.delays.Replace))
	}
	for ; total > int(g.desired) && len(g.launches) > 0; total-- {
		g.launches = g.launches[:len(g.launches)-1]
	}
	for active > int(g.desired) {
		var victim *member
		for i := len(g.members) - 1; i >= 0; i-- {
			if m := g.members[i]; counts(m) && !m.protected {
				victim = m
				break
			}
		}
		if victim == nil {
			return // AWS leaves protected instances alone
		}
		victim.lifecycle = astypes.LifecycleStateTerminating
		active--
		if in, ok := c.instances.get(victim.id); ok {
			c.startShutdown(in, t, true)
		}
	}
}

// groupLaunch launches one instance for a group's scheduled launch.
func (c *Cloud) groupLaunch(g *asGroup, t time.Time) {
	g.launches = g.launches[1:]
	sub := c.pickSubnet(g)
	in, err := c.launchInstance(launchSpec{
		imageID:      g.imageID,
		instanceType: g.instanceType,
		subnetID:     sub,
		groups:       g.secGroups,
		profileARN:   g.profileARN,
		tags:         c.groupLaunchTags(g),
	}, t)
	if err != nil {
		// AWS records a failed scaling activity and tries again later.
		g.lastLaunchErr = err.Error()
		retry := max(c.delays.Replace, 30*time.Second)
		g.launches = append([]time.Time{t.Add(retry)}, g.launches...)
		return
	}
	g.lastLaunchErr = ""
	g.members = append(g.members, &member{
		id:           in.id,
		lifecycle:    astypes.LifecycleStatePending,
		health:       "Healthy",
		protected:    g.newProtected,
		az:           in.az,
		imageID:      in.imageID,
		instanceType: in.instanceType,
	})
}

func (c *Cloud) groupLaunchTags(g *asGroup) map[string]string {
	tags := copyTags(g.tags)
	tags["aws:autoscaling:groupName"] = g.name
	return tags
}

// pickSubnet balances members across the group's subnets (AWS balances
// Availability Zones).
func (c *Cloud) pickSubnet(g *asGroup) string {
	best, bestN := "", -1
	for _, s := range g.subnets {
		n := 0
		for _, m := range g.members {
			if !counts(m) {
				continue
			}
			if in, ok := c.instances.get(m.id); ok && len(in.enis) > 0 && in.enis[0].subnetID == s {
				n++
			}
		}
		if bestN < 0 || n < bestN {
			best, bestN = s, n
		}
	}
	return best
}

func (c *Cloud) registerInGroupTargets(g *asGroup, id string, t time.Time) {
	for _, arn := range g.targetGroups {
		if tg, ok := c.targetGroups.get(arn); ok {
			c.register(tg, id, tg.port, t)
		}
	}
}

// ---------------------------------------------------------------------------
// Target groups.

func (c *Cloud) register(tg *targetGroup, id string, port int32, t time.Time) {
	for _, tr := range tg.targets {
		if tr.id == id && tr.port == port {
			if tr.state == elbtypes.TargetHealthStateEnumDraining {
				tr.state = elbtypes.TargetHealthStateEnumInitial
				tr.due = t.Add(c.delays.TargetHealthy)
			}
			return
		}
	}
	tg.targets = append(tg.targets, &target{id: id, port: port, state: elbtypes.TargetHealthStateEnumInitial, due: t.Add(c.delays.TargetHealthy)})
}

func (c *Cloud) deregister(tg *targetGroup, id string, port int32, t time.Time) bool {
	for _, tr := range tg.targets {
		if tr.id == id && tr.port == port && tr.state != elbtypes.TargetHealthStateEnumDraining {
			tr.state = elbtypes.TargetHealthStateEnumDraining
			tr.due = t.Add(c.delays.TargetDraining)
			return true
		}
	}
	return false
}

// drainInstance deregisters an instance from every target group it is in and
// reports whether it was registered anywhere.
func (c *Cloud) drainInstance(id string, t time.Time) bool {
	any := false
	for _, tg := range c.targetGroups.all() {
		for _, tr := range tg.targets {
			if tr.id == id && tr.state != elbtypes.TargetHealthStateEnumDraining {
				tr.state = elbtypes.TargetHealthStateEnumDraining
				tr.due = t.Add(c.delays.TargetDraining)
				any = true
			}
		}
	}
	return any
}

func (c *Cloud) removeTarget(tg *targetGroup, tr *target) {
	for i, x := range tg.targets {
		if x == tr {
			tg.targets = append(tg.targets[:i:i], tg.targets[i+1:]...)
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Launching instances (RunInstances and groups).

type launchSpec struct {
	imageID       string
	instanceType  string
	subnetID      string
	groups        []string
	publicIP      *bool
	privateIP     string
	profileARN    string
	keyName       string
	tags          map[string]string
	volumeTags    map[string]string
	eniTags       map[string]string
	protect       bool
	clientToken   string
	reservationID string
	launchIndex   int32
}

// launchInstance creates a pending instance. Callers have validated the
// image, subnet and groups.
func (c *Cloud) launchInstance(s launchSpec, t time.Time) (*instance, error) {
	im, ok := c.images.get(s.imageID)
	if !ok {
		return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", s.imageID)
	}
	sub, ok := c.subnets.get(s.subnetID)
	if !ok {
		return nil, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", s.subnetID)
	}
	ip := s.privateIP
	if ip == "" {
		var err error
		if ip, err = c.freeIP(sub); err != nil {
			return nil, err
		}
	}
	if s.reservationID == "" {
		s.reservationID = c.newID("r")
	}
	if s.instanceType == "" {
		s.instanceType = "m1.small"
	}
	in := &instance{
		seq:              c.nextSeq(),
		id:               c.newID("i"),
		instanceType:     s.instanceType,
		imageID:          s.imageID,
		region:           sub.region,
		az:               sub.az,
		profileARN:       s.profileARN,
		keyName:          s.keyName,
		tags:             copyTags(s.tags),
		termProtection:   s.protect,
		sourceDestCheck:  true,
		shutdownBehavior: "stop",
		launched:         t,
		state:            ec2types.InstanceStateNamePending,
		since:            t,
		due:              t.Add(c.delays.InstanceStart),
		clientToken:      s.clientToken,
		reservationID:    s.reservationID,
		launchIndex:      s.launchIndex,
	}
	if s.profileARN != "" {
		in.profileID = c.profileID()
	}
	in.privateDNS = privateDNSName(ip, in.region)
	public := sub.publicIP
	if s.publicIP != nil {
		public = *s.publicIP
	}
	if public {
		in.publicIP = c.newPublicIP()
	}
	e := &eni{
		id:           c.newID("eni"),
		subnetID:     sub.id,
		vpcID:        sub.vpcID,
		privateIP:    ip,
		mac:          c.newMAC(),
		attachID:     c.newID("eni-attach"),
		description:  "",
		index:        0,
		groups:       append([]string(nil), s.groups...),
		attached:     t,
		deleteOnTerm: true,
		tags:         copyTags(s.eniTags),
	}
	in.enis = []*eni{e}
	c.enis[e.id] = in
	for _, d := range im.disks {
		v := &volume{
			id:           c.newID("vol"),
			device:       d.device,
			size:         d.size,
			volType:      d.volType,
			snapshotID:   d.snapshotID,
			deleteOnTerm: d.deleteOnTerm,
			attached:     t,
			tags:         copyTags(s.volumeTags),
		}
		in.vols = append(in.vols, v)
		c.volumes[v.id] = in
	}
	c.instances.put(in.id, in)
	return in, nil
}

// freeIP returns the lowest free address of a subnet. AWS reserves the first
// four addresses and the last one of every subnet.
func (c *Cloud) freeIP(sub *subnet) (string, error) {
	used := map[string]bool{}
	for _, in := range c.enis {
		for _, e := range in.enis {
			if e.subnetID == sub.id {
				used[e.privateIP] = true
			}
		}
	}
	a := sub.cidr.Masked().Addr()
	for range 4 {
		a = a.Next()
	}
	for ; sub.cidr.Contains(a); a = a.Next() {
		if !sub.cidr.Contains(a.Next()) {
			break // broadcast address
		}
		if !used[a.String()] {
			return a.String(), nil
		}
	}
	return "", apiErr("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sub.id)
}

func (c *Cloud) ipInUse(subnetID, ip string) bool {
	for _, in := range c.enis {
		for _, e := range in.enis {
			if e.subnetID == subnetID && e.privateIP == ip {
				return true
			}
		}
	}
	return false
}

func privateDNSName(ip, region string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return ""
	}
	b := a.As4()
	host := fmt.Sprintf("ip-%d-%d-%d-%d", b[0], b[1], b[2], b[3])
	if region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + region + ".compute.internal"
}

func (c *Cloud) newPublicIP() string {
	for {
		ip := fmt.Sprintf("54.%d.%d.%d", 160+c.rng.IntN(64), c.rng.IntN(256), 1+c.rng.IntN(254))
		if !c.used[ip] {
			c.used[ip] = true
			return ip
		}
	}
}

func (c *Cloud) newMAC() string {
	return fmt.Sprintf("0e:%02x:%02x:%02x:%02x:%02x", c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256))
}

func (c *Cloud) profileID() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 17)
	for i := range b {
		b[i] = alnum[c.rng.IntN(len(alnum))]
	}
	return "AIPA" + string(b)
}
