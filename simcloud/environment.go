package simcloud

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"go.yaml.in/yaml/v3"
)

// Environment describes the resources a simulated cloud starts with. It is
// usually read from YAML (see testdata/seed.yaml); references between
// resources use either the resource's ID or its name (VPC and subnet name
// tags, security group names, target group names).
type Environment struct {
	// Account is the 12-digit account ID every resource belongs to.
	Account string `yaml:"account"`
	// Region is the default region (VPCs, target groups, groups, ARNs).
	Region            string                 `yaml:"region"`
	VPCs              []VPCSpec              `yaml:"vpcs"`
	Subnets           []SubnetSpec           `yaml:"subnets"`
	SecurityGroups    []SecurityGroupSpec    `yaml:"securityGroups"`
	Images            []ImageSpec            `yaml:"images"`
	TargetGroups      []TargetGroupSpec      `yaml:"targetGroups"`
	AutoScalingGroups []AutoScalingGroupSpec `yaml:"autoScalingGroups"`
	Instances         []InstanceSpec         `yaml:"instances"`
	// Topics are SNS topic ARNs that Publish accepts.
	Topics []string `yaml:"topics"`

	file string
	root *yaml.Node
}

// VPCSpec declares a VPC.
type VPCSpec struct {
	ID     string            `yaml:"id"`     // optional: generated when empty
	Name   string            `yaml:"name"`   // Name tag, usable as a reference
	Region string            `yaml:"region"` // default: Environment.Region
	CIDR   string            `yaml:"cidr"`   // IPv4, e.g. 10.0.0.0/16
	Tags   map[string]string `yaml:"tags"`
}

// SubnetSpec declares a subnet.
type SubnetSpec struct {
	ID          string            `yaml:"id"`
	Name        string            `yaml:"name"`
	VPC         string            `yaml:"vpc"`  // VPC ID or name
	CIDR        string            `yaml:"cidr"` // inside the VPC's CIDR
	AZ          string            `yaml:"az"`   // e.g. us-east-1a
	MapPublicIP bool              `yaml:"mapPublicIp"`
	Tags        map[string]string `yaml:"tags"`
}

// SecurityGroupSpec declares a security group. Its rules are exactly the
// ones listed: unlike CreateSecurityGroup, no default egress rule is added.
// Every VPC also gets AWS's "default" group unless one is declared.
type SecurityGroupSpec struct {
	ID          string            `yaml:"id"`
	Name        string            `yaml:"name"`
	VPC         string            `yaml:"vpc"`
	Description string            `yaml:"description"`
	Ingress     []RuleSpec        `yaml:"ingress"`
	Egress      []RuleSpec        `yaml:"egress"`
	Tags        map[string]string `yaml:"tags"`
}

// RuleSpec is one security group rule with one peer.
type RuleSpec struct {
	Protocol    string `yaml:"protocol"` // tcp, udp, icmp, or all (-1)
	Ports       string `yaml:"ports"`    // "443" or "1024-65535"; empty with protocol all
	CIDR        string `yaml:"cidr"`     // an IPv4 or IPv6 CIDR, or
	Group       string `yaml:"group"`    // a security group name (same VPC) or ID
	Description string `yaml:"description"`
}

// ImageSpec declares an existing, available AMI (the fleet's base images).
type ImageSpec struct {
	ID          string            `yaml:"id"`
	Name        string            `yaml:"name"`
	Owner       string            `yaml:"owner"` // self (default), amazon, or an account ID
	Description string            `yaml:"description"`
	Volumes     []VolumeSpec      `yaml:"volumes"` // default: one 8 GiB gp3 /dev/xvda
	Tags        map[string]string `yaml:"tags"`
}

// VolumeSpec declares an EBS volume (or an image's block device).
type VolumeSpec struct {
	ID      string `yaml:"id"` // instances only; generated when empty
	Device  string `yaml:"device"`
	SizeGiB int32  `yaml:"sizeGiB"`
	Type    string `yaml:"type"` // default gp3
}

// TargetGroupSpec declares an ELBv2 target group of instances.
type TargetGroupSpec struct {
	Name         string `yaml:"name"`
	ARN          string `yaml:"arn"` // optional: generated when empty
	Region       string `yaml:"region"`
	VPC          string `yaml:"vpc"`
	Protocol     string `yaml:"protocol"` // default HTTP
	Port         int32  `yaml:"port"`     // default 80
	LoadBalancer string `yaml:"loadBalancer"`
}

// AutoScalingGroupSpec declares an Auto Scaling group and how it launches
// replacements.
type AutoScalingGroupSpec struct {
	Name                             string            `yaml:"name"`
	Region                           string            `yaml:"region"`
	Min                              int32             `yaml:"min"`
	Max                              int32             `yaml:"max"`
	Desired                          int32             `yaml:"desired"`
	Subnets                          []string          `yaml:"subnets"`
	SecurityGroups                   []string          `yaml:"securityGroups"`
	InstanceType                     string            `yaml:"instanceType"`
	Image                            string            `yaml:"image"`
	IAMInstanceProfile               string            `yaml:"iamInstanceProfile"` // name or ARN
	LaunchTemplate                   string            `yaml:"launchTemplate"`     // name, informational
	TargetGroups                     []string          `yaml:"targetGroups"`       // names or ARNs
	HealthCheckType                  string            `yaml:"healthCheckType"`    // EC2 or ELB (default)
	NewInstancesProtectedFromScaleIn bool              `yaml:"newInstancesProtectedFromScaleIn"`
	Tags                             map[string]string `yaml:"tags"` // propagated to launched instances
}

// InstanceSpec declares a running instance with fixed identity.
type InstanceSpec struct {
	ID                    string            `yaml:"id"`
	Host                  string            `yaml:"host"` // becomes the Name tag
	Type                  string            `yaml:"type"`
	Image                 string            `yaml:"image"`
	Subnet                string            `yaml:"subnet"`
	AZ                    string            `yaml:"az"`     // must match the subnet's AZ when given
	Region                string            `yaml:"region"` // default: derived from the AZ
	PrivateIP             string            `yaml:"privateIP"`
	PublicIP              string            `yaml:"publicIP"`
	NetworkInterfaceID    string            `yaml:"networkInterfaceId"` // primary ENI; generated when empty
	SecurityGroups        []string          `yaml:"securityGroups"`     // of the primary ENI
	SecondaryInterfaces   []InterfaceSpec   `yaml:"secondaryInterfaces"`
	Volumes               []VolumeSpec      `yaml:"volumes"` // default: the image's
	IAMInstanceProfile    string            `yaml:"iamInstanceProfile"`
	TerminationProtection bool              `yaml:"terminationProtection"`
	AutoScalingGroup      string            `yaml:"autoScalingGroup"`
	ProtectedFromScaleIn  bool              `yaml:"protectedFromScaleIn"`
	LaunchTime            string            `yaml:"launchTime"` // RFC 3339; default: the cloud's start
	Tags                  map[string]string `yaml:"tags"`
}

// InterfaceSpec declares an additional network interface (device index 1, 2, ...).
type InterfaceSpec struct {
	ID             string   `yaml:"id"`
	Subnet         string   `yaml:"subnet"` // default: the instance's subnet
	PrivateIP      string   `yaml:"privateIP"`
	SecurityGroups []string `yaml:"securityGroups"`
	Description    string   `yaml:"description"`
}

// LoadEnvironment reads and validates an environment file.
func LoadEnvironment(path string) (*Environment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("simcloud: read environment: %w", err)
	}
	return parseEnvironment(data, path)
}

// ParseEnvironment parses and validates an environment in YAML.
func ParseEnvironment(data []byte) (*Environment, error) {
	return parseEnvironment(data, "environment")
}

func parseEnvironment(data []byte, file string) (*Environment, error) {
	env := &Environment{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(env); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; describe at least account, region, vpcs and subnets (see simcloud/testdata/seed.yaml)", file)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %w (field names and types are those of simcloud.Environment's yaml tags; see simcloud/testdata/seed.yaml)", file, err)
		}
		return nil, fmt.Errorf("%s: %w (fix the YAML syntax at that line)", file, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		env.root = &root
	}
	env.file = file
	if err := env.Validate(); err != nil {
		return nil, err
	}
	return env, nil
}

// EnvError is one problem in an environment, located by file, line and the
// path of the offending field.
type EnvError struct {
	File string
	Line int // 0 when unknown
	Path string
	Msg  string
}

func (e *EnvError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Msg)
}

// line finds the line of a field from its path (keys and indexes).
func (e *Environment) line(path ...any) int {
	if e.root == nil {
		return 0
	}
	n := e.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						line = n.Content[i].Line
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

type validator struct {
	env  *Environment
	errs []error
}

func (v *validator) fail(msg string, path ...any) {
	v.errs = append(v.errs, &EnvError{File: v.env.file, Line: v.env.line(path...), Path: pathString(path...), Msg: msg})
}

func pathString(path ...any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$`)
	azPattern      = regexp.MustCompile(`^([a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9])[a-z]$`)
	topicPattern   = regexp.MustCompile(`^arn:aws:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
	tgNamePattern  = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)
	tgArnPattern   = regexp.MustCompile(`^arn:aws:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`)
)

func regionOfAZ(az string) string {
	if m := azPattern.FindStringSubmatch(az); m != nil {
		return m[1]
	}
	return ""
}

// Validate checks an environment: formats, uniqueness, and that every
// reference names a declared resource. Errors name the field, its line, and
// what to do.
func (e *Environment) Validate() error {
	v := &validator{env: e}
	if !accountPattern.MatchString(e.Account) {
		v.fail(fmt.Sprintf("want the 12-digit account ID in quotes, e.g. \"123456789012\"; got %q", e.Account), "account")
	}
	if !regionPattern.MatchString(e.Region) {
		v.fail(fmt.Sprintf("want an AWS region such as us-east-1; got %q", e.Region), "region")
	}
	if len(e.VPCs) == 0 {
		v.fail("declare at least one VPC (id, cidr)", "vpcs")
	}
	ids := map[string]string{} // every declared ID → where
	claim := func(id, prefix string, path ...any) {
		if id == "" {
			return
		}
		if !validID(id, prefix) {
			v.fail(fmt.Sprintf("%q is not a valid ID: want %s- followed by 17 (or 8) lower-case hex digits", id, prefix), path...)
			return
		}
		if where, dup := ids[id]; dup {
			v.fail(fmt.Sprintf("ID %s is already used by %s; IDs must be unique", id, where), path...)
			return
		}
		ids[id] = pathString(path...)
	}

	vpcCIDR := map[string]netip.Prefix{} // by VPC ref (id and name)
	for i, s := range e.VPCs {
		claim(s.ID, "vpc", "vpcs", i, "id")
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil || !p.Addr().Is4() {
			v.fail(fmt.Sprintf("want an IPv4 CIDR such as 10.0.0.0/16; got %q", s.CIDR), "vpcs", i, "cidr")
		}
		if s.Region != "" && !regionPattern.MatchString(s.Region) {
			v.fail(fmt.Sprintf("want an AWS region such as us-east-1; got %q", s.Region), "vpcs", i, "region")
		}
		if s.ID == "" && s.Name == "" {
			v.fail("give the VPC an id or a name so subnets can refer to it", "vpcs", i)
		}
		for _, ref := range []string{s.ID, s.Name} {
			if ref != "" {
				if _, dup := vpcCIDR[ref]; dup {
					v.fail(fmt.Sprintf("VPC %q is declared twice", ref), "vpcs", i)
				}
				vpcCIDR[ref] = p
			}
		}
	}

	subnetVPC := map[string]string{} // subnet ref → VPC ref (as written)
	subnetCIDR := map[string]netip.Prefix{}
	subnetAZ := map[string]string{}
	for i, s := range e.Subnets {
		claim(s.ID, "subnet", "subnets", i, "id")
		if s.ID == "" && s.Name == "" {
			v.fail("give the subnet an id or a name so instances and groups can refer to it", "subnets", i)
		}
		vc, ok := vpcCIDR[s.VPC]
		if !ok {
			v.fail(fmt.Sprintf("VPC %q is not declared under vpcs; use a VPC's id or name", s.VPC), "subnets", i, "vpc")
		}
		p, err := netip.ParsePrefix(s.CIDR)
		switch {
		case err != nil || !p.Addr().Is4():
			v.fail(fmt.Sprintf("want an IPv4 CIDR such as 10.0.1.0/24; got %q", s.CIDR), "subnets", i, "cidr")
		case p.Bits() > 28:
			v.fail(fmt.Sprintf("subnet %s is too small: AWS subnets are /16 to /28", s.CIDR), "subnets", i, "cidr")
		case ok && vc.IsValid() && (!vc.Contains(p.Addr()) || p.Bits() < vc.Bits()):
			v.fail(fmt.Sprintf("%s is not inside the VPC's %s", s.CIDR, vc), "subnets", i, "cidr")
		}
		if regionOfAZ(s.AZ) == "" {
			v.fail(fmt.Sprintf("want an Availability Zone such as us-east-1a; got %q", s.AZ), "subnets", i, "az")
		}
		for j := range i {
			o := e.Subnets[j]
			if q, err := netip.ParsePrefix(o.CIDR); err == nil && p.IsValid() && o.VPC == s.VPC && p.Overlaps(q) {
				v.fail(fmt.Sprintf("%s overlaps subnet %s (%s) in the same VPC", s.CIDR, firstNonEmpty(o.ID, o.Name), o.CIDR), "subnets", i, "cidr")
			}
		}
		for _, ref := range []string{s.ID, s.Name} {
			if ref != "" {
				if _, dup := subnetVPC[ref]; dup {
					v.fail(fmt.Sprintf("subnet %q is declared twice", ref), "subnets", i)
				}
				subnetVPC[ref], subnetCIDR[ref], subnetAZ[ref] = s.VPC, p, s.AZ
			}
		}
	}
	// Canonical VPC of a ref: resolve names and IDs to the same key.
	vpcKey := func(ref string) string {
		for _, s := range e.VPCs {
			if ref == s.ID || ref == s.Name {
				return firstNonEmpty(s.ID, s.Name)
			}
		}
		return ref
	}

	sgVPC := map[string]string{} // by ID, and by vpcKey+"/"+name
	for i, g := range e.SecurityGroups {
		claim(g.ID, "sg", "securityGroups", i, "id")
		if g.Name == "" {
			v.fail("every security group needs a name", "securityGroups", i, "name")
		}
		if _, ok := vpcCIDR[g.VPC]; !ok {
			v.fail(fmt.Sprintf("VPC %q is not declared under vpcs", g.VPC), "securityGroups", i, "vpc")
		}
		key := vpcKey(g.VPC) + "/" + g.Name
		if _, dup := sgVPC[key]; dup {
			v.fail(fmt.Sprintf("security group %q is declared twice in VPC %s; names are unique per VPC", g.Name, g.VPC), "securityGroups", i, "name")
		}
		sgVPC[key] = vpcKey(g.VPC)
		if g.ID != "" {
			sgVPC[g.ID] = vpcKey(g.VPC)
		}
	}
	groupIn := func(ref, vpcRef string) bool {
		if vk, ok := sgVPC[ref]; ok {
			return vk == vpcKey(vpcRef)
		}
		if ref == "default" {
			return true // AWS's default group
		}
		_, ok := sgVPC[vpcKey(vpcRef)+"/"+ref]
		return ok
	}
	for i, g := range e.SecurityGroups {
		for _, dir := range []string{"ingress", "egress"} {
			rules := g.Ingress
			if dir == "egress" {
				rules = g.Egress
			}
			for j, r := range rules {
				if _, err := normProto(firstNonEmpty(r.Protocol, "-1")); err != nil {
					v.fail(fmt.Sprintf("protocol %q is not tcp, udp, icmp, icmpv6, all or a number", r.Protocol), "securityGroups", i, dir, j, "protocol")
				}
				if _, _, err := parsePorts(r.Ports); err != nil {
					v.fail(err.Error(), "securityGroups", i, dir, j, "ports")
				}
				switch {
				case (r.CIDR == "") == (r.Group == ""):
					v.fail("give exactly one peer: cidr or group", "securityGroups", i, dir, j)
				case r.CIDR != "":
					if _, err := netip.ParsePrefix(r.CIDR); err != nil {
						v.fail(fmt.Sprintf("want a CIDR such as 0.0.0.0/0; got %q", r.CIDR), "securityGroups", i, dir, j, "cidr")
					}
				case !groupIn(r.Group, g.VPC):
					v.fail(fmt.Sprintf("security group %q is not declared in VPC %s", r.Group, g.VPC), "securityGroups", i, dir, j, "group")
				}
			}
		}
	}

	images := map[string]bool{}
	imageNames := map[string]bool{}
	for i, im := range e.Images {
		if im.ID == "" {
			v.fail("give the image its AMI ID (ami-...)", "images", i, "id")
		}
		claim(im.ID, "ami", "images", i, "id")
		images[im.ID] = true
		if !amiName.MatchString(im.Name) {
			v.fail(fmt.Sprintf("AMI names are 3-128 letters, digits and ()[] ./-'@_; got %q", im.Name), "images", i, "name")
		}
		owner := firstNonEmpty(im.Owner, "self")
		if owner != "self" && owner != "amazon" && !accountPattern.MatchString(owner) {
			v.fail(fmt.Sprintf("owner is self, amazon or a 12-digit account ID; got %q", im.Owner), "images", i, "owner")
		}
		if imageNames[owner+"/"+im.Name] {
			v.fail(fmt.Sprintf("image name %q is used twice by the same owner; AMI names are unique per account", im.Name), "images", i, "name")
		}
		imageNames[owner+"/"+im.Name] = true
		v.volumes(im.Volumes, "images", i, "volumes")
	}

	tgs := map[string]bool{}
	for i, tg := range e.TargetGroups {
		if !tgNamePattern.MatchString(tg.Name) || strings.HasPrefix(tg.Name, "-") {
			v.fail(fmt.Sprintf("target group names are 1-32 letters, digits and hyphens; got %q", tg.Name), "targetGroups", i, "name")
		}
		if tgs[tg.Name] {
			v.fail(fmt.Sprintf("target group %q is declared twice", tg.Name), "targetGroups", i, "name")
		}
		tgs[tg.Name] = true
		if tg.ARN != "" {
			if !tgArnPattern.MatchString(tg.ARN) || !strings.Contains(tg.ARN, ":targetgroup/"+tg.Name+"/") {
				v.fail(fmt.Sprintf("want arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/%s/<16 hex digits>; got %q", tg.Name, tg.ARN), "targetGroups", i, "arn")
			}
			tgs[tg.ARN] = true
		}
		if _, ok := vpcCIDR[tg.VPC]; !ok {
			v.fail(fmt.Sprintf("VPC %q is not declared under vpcs", tg.VPC), "targetGroups", i, "vpc")
		}
		if tg.Port < 0 || tg.Port > 65535 {
			v.fail(fmt.Sprintf("port %d is not 1-65535", tg.Port), "targetGroups", i, "port")
		}
		if tg.Region != "" && !regionPattern.MatchString(tg.Region) {
			v.fail(fmt.Sprintf("want an AWS region such as us-east-1; got %q", tg.Region), "targetGroups", i, "region")
		}
	}

	asgs := map[string]int32{} // name → desired
	for i, g := range e.AutoScalingGroups {
		p := func(f string) []any { return []any{"autoScalingGroups", i, f} }
		if g.Name == "" {
			v.fail("every Auto Scaling group needs a name", p("name")...)
		}
		if _, dup := asgs[g.Name]; dup {
			v.fail(fmt.Sprintf("Auto Scaling group %q is declared twice", g.Name), p("name")...)
		}
		asgs[g.Name] = g.Desired
		if g.Min < 0 || g.Min > g.Desired || g.Desired > g.Max {
			v.fail(fmt.Sprintf("want 0 <= min <= desired <= max; got min %d, desired %d, max %d", g.Min, g.Desired, g.Max), p("desired")...)
		}
		if len(g.Subnets) == 0 {
			v.fail("list the subnets the group launches into", p("subnets")...)
		}
		var vpcRef string
		for j, s := range g.Subnets {
			sv, ok := subnetVPC[s]
			if !ok {
				v.fail(fmt.Sprintf("subnet %q is not declared under subnets", s), "autoScalingGroups", i, "subnets", j)
				continue
			}
			if vpcRef == "" {
				vpcRef = sv
			} else if vpcKey(sv) != vpcKey(vpcRef) {
				v.fail(fmt.Sprintf("subnet %q is in VPC %s but the group's other subnets are in %s; a group's subnets share one VPC", s, sv, vpcRef), "autoScalingGroups", i, "subnets", j)
			}
		}
		for j, sg := range g.SecurityGroups {
			if vpcRef != "" && !groupIn(sg, vpcRef) {
				v.fail(fmt.Sprintf("security group %q is not declared in the group's VPC %s", sg, vpcRef), "autoScalingGroups", i, "securityGroups", j)
			}
		}
		if !images[g.Image] {
			v.fail(fmt.Sprintf("image %q is not declared under images; the group launches replacements from it", g.Image), p("image")...)
		}
		if g.InstanceType == "" {
			v.fail("give the instance type replacements launch with, e.g. t3.medium", p("instanceType")...)
		}
		for j, tg := range g.TargetGroups {
			if !tgs[tg] {
				v.fail(fmt.Sprintf("target group %q is not declared under targetGroups; use its name or ARN", tg), "autoScalingGroups", i, "targetGroups", j)
			}
		}
		if hc := g.HealthCheckType; hc != "" && hc != "EC2" && hc != "ELB" {
			v.fail(fmt.Sprintf("healthCheckType is EC2 or ELB; got %q", hc), p("healthCheckType")...)
		}
	}

	ips := map[string]string{}
	members := map[string]int32{}
	for i, in := range e.Instances {
		p := func(f ...any) []any { return append([]any{"instances", i}, f...) }
		if in.ID == "" {
			v.fail("give the instance its ID (i- followed by 17 hex digits)", p("id")...)
		}
		claim(in.ID, "i", p("id")...)
		if in.Type == "" {
			v.fail("give the instance type, e.g. t3.medium", p("type")...)
		}
		if !images[in.Image] {
			v.fail(fmt.Sprintf("image %q is not declared under images", in.Image), p("image")...)
		}
		sv, ok := subnetVPC[in.Subnet]
		if !ok {
			v.fail(fmt.Sprintf("subnet %q is not declared under subnets; use a subnet's id or name", in.Subnet), p("subnet")...)
		}
		if in.AZ != "" && ok && in.AZ != subnetAZ[in.Subnet] {
			v.fail(fmt.Sprintf("az %s differs from its subnet's %s; drop az or fix the subnet", in.AZ, subnetAZ[in.Subnet]), p("az")...)
		}
		if in.Region != "" && !regionPattern.MatchString(in.Region) {
			v.fail(fmt.Sprintf("want an AWS region such as eu-west-1; got %q", in.Region), p("region")...)
		}
		claim(in.NetworkInterfaceID, "eni", p("networkInterfaceId")...)
		v.address(in.PrivateIP, in.Subnet, subnetCIDR, ips, in.ID, p("privateIP")...)
		if in.PublicIP != "" {
			if a, err := netip.ParseAddr(in.PublicIP); err != nil || !a.Is4() {
				v.fail(fmt.Sprintf("want an IPv4 address; got %q", in.PublicIP), p("publicIP")...)
			}
		}
		for j, sg := range in.SecurityGroups {
			if ok && !groupIn(sg, sv) {
				v.fail(fmt.Sprintf("security group %q is not declared in the instance's VPC %s", sg, sv), p("securityGroups", j)...)
			}
		}
		for k, eni := range in.SecondaryInterfaces {
			sub := firstNonEmpty(eni.Subnet, in.Subnet)
			esv, eok := subnetVPC[sub]
			if !eok {
				v.fail(fmt.Sprintf("subnet %q is not declared under subnets", sub), p("secondaryInterfaces", k, "subnet")...)
			} else if ok && vpcKey(esv) != vpcKey(sv) {
				v.fail(fmt.Sprintf("subnet %q is in another VPC than the instance; all interfaces of an instance share its VPC", sub), p("secondaryInterfaces", k, "subnet")...)
			} else if eok && eni.Subnet != "" && subnetAZ[sub] != subnetAZ[in.Subnet] {
				v.fail(fmt.Sprintf("subnet %q is in %s but the instance is in %s; interfaces attach only in the instance's AZ", sub, subnetAZ[sub], subnetAZ[in.Subnet]), p("secondaryInterfaces", k, "subnet")...)
			}
			claim(eni.ID, "eni", p("secondaryInterfaces", k, "id")...)
			v.address(eni.PrivateIP, sub, subnetCIDR, ips, in.ID, p("secondaryInterfaces", k, "privateIP")...)
			if len(eni.SecurityGroups) == 0 {
				v.fail("list the interface's security groups", p("secondaryInterfaces", k, "securityGroups")...)
			}
			for j, sg := range eni.SecurityGroups {
				if eok && !groupIn(sg, esv) {
					v.fail(fmt.Sprintf("security group %q is not declared in the interface's VPC %s", sg, esv), p("secondaryInterfaces", k, "securityGroups", j)...)
				}
			}
		}
		v.volumes(in.Volumes, p("volumes")...)
		for j, vol := range in.Volumes {
			claim(vol.ID, "vol", p("volumes", j, "id")...)
		}
		if in.LaunchTime != "" {
			if _, err := time.Parse(time.RFC3339, in.LaunchTime); err != nil {
				v.fail(fmt.Sprintf("want an RFC 3339 time such as 2024-04-30T08:00:00Z; got %q", in.LaunchTime), p("launchTime")...)
			}
		}
		if in.AutoScalingGroup != "" {
			if _, ok := asgs[in.AutoScalingGroup]; !ok {
				v.fail(fmt.Sprintf("Auto Scaling group %q is not declared under autoScalingGroups", in.AutoScalingGroup), p("autoScalingGroup")...)
			}
			members[in.AutoScalingGroup]++
		}
		for k := range in.Tags {
			if strings.HasPrefix(k, "aws:") {
				v.fail(fmt.Sprintf("tag %q: aws: tags are set by AWS itself (autoScalingGroup sets aws:autoscaling:groupName)", k), p("tags")...)
			}
		}
	}
	for i, g := range e.AutoScalingGroups {
		if n := members[g.Name]; n > g.Desired {
			v.fail(fmt.Sprintf("%d instances name group %s but its desired capacity is %d; raise desired or move instances", n, g.Name, g.Desired), "autoScalingGroups", i, "desired")
		}
	}
	for i, t := range e.Topics {
		if !topicPattern.MatchString(t) {
			v.fail(fmt.Sprintf("want a topic ARN such as arn:aws:sns:us-east-1:123456789012:cordon-alerts; got %q", t), "topics", i)
		}
	}
	return errors.Join(v.errs...)
}

func (v *validator) address(ip, subnetRef string, cidrs map[string]netip.Prefix, used map[string]string, owner string, path ...any) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		v.fail(fmt.Sprintf("want the private IPv4 address; got %q", ip), path...)
		return
	}
	if p, ok := cidrs[subnetRef]; ok && p.IsValid() {
		first := p.Masked().Addr()
		last := first
		for range (1 << (32 - p.Bits())) - 1 {
			last = last.Next()
		}
		reserved := a == last
		x := first
		for range 4 {
			reserved = reserved || a == x
			x = x.Next()
		}
		switch {
		case !p.Contains(a):
			v.fail(fmt.Sprintf("%s is not inside subnet %s (%s)", ip, subnetRef, p), path...)
		case reserved:
			v.fail(fmt.Sprintf("%s is reserved by AWS (the first four and the last address of %s)", ip, p), path...)
		}
	}
	if other, dup := used[subnetRef+"/"+ip]; dup {
		v.fail(fmt.Sprintf("%s is already used by %s", ip, other), path...)
	}
	used[subnetRef+"/"+ip] = owner
}

func (v *validator) volumes(vols []VolumeSpec, path ...any) {
	devices := map[string]bool{}
	for j, vol := range vols {
		p := append(append([]any{}, path...), j)
		if !strings.HasPrefix(vol.Device, "/dev/") {
			v.fail(fmt.Sprintf("want a device name such as /dev/xvda; got %q", vol.Device), append(p, "device")...)
		}
		if devices[vol.Device] {
			v.fail(fmt.Sprintf("device %s is used twice", vol.Device), append(p, "device")...)
		}
		devices[vol.Device] = true
		if vol.SizeGiB < 1 || vol.SizeGiB > 16384 {
			v.fail(fmt.Sprintf("sizeGiB is 1-16384; got %d", vol.SizeGiB), append(p, "sizeGiB")...)
		}
		switch vol.Type {
		case "", "gp2", "gp3", "io1", "io2", "st1", "sc1", "standard":
		default:
			v.fail(fmt.Sprintf("type is gp3, gp2, io1, io2, st1, sc1 or standard; got %q", vol.Type), append(p, "type")...)
		}
	}
}

func parsePorts(s string) (from, to *int32, err error) {
	if s == "" {
		return nil, nil, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < -1 || b > 65535 || a > b {
		return nil, nil, fmt.Errorf("want a port such as \"443\" or a range such as \"1024-65535\"; got %q", s)
	}
	return ptr(int32(a)), ptr(int32(b)), nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// Building the cloud from a validated environment.

func (c *Cloud) build(env *Environment, t time.Time) error {
	if err := env.Validate(); err != nil {
		return err
	}
	// Reserve every declared ID before generating any.
	for _, s := range env.VPCs {
		c.used[s.ID] = true
	}
	for _, s := range env.Subnets {
		c.used[s.ID] = true
	}
	for _, s := range env.SecurityGroups {
		c.used[s.ID] = true
	}
	for _, s := range env.Images {
		c.used[s.ID] = true
	}
	for _, s := range env.Instances {
		c.used[s.ID] = true
		c.used[s.NetworkInterfaceID] = true
		for _, e := range s.SecondaryInterfaces {
			c.used[e.ID] = true
		}
		for _, v := range s.Volumes {
			c.used[v.ID] = true
		}
	}

	vpcRef := map[string]*vpc{}
	for _, s := range env.VPCs {
		x := &vpc{id: firstNonEmpty(s.ID, c.newID("vpc")), region: firstNonEmpty(s.Region, env.Region), cidr: netip.MustParsePrefix(s.CIDR), tags: copyTags(s.Tags)}
		if s.Name != "" {
			x.tags["Name"] = s.Name
			vpcRef[s.Name] = x
		}
		vpcRef[x.id] = x
		c.vpcs.put(x.id, x)
	}
	subnetRef := map[string]*subnet{}
	for _, s := range env.Subnets {
		v := vpcRef[s.VPC]
		x := &subnet{id: firstNonEmpty(s.ID, c.newID("subnet")), vpcID: v.id, region: firstNonEmpty(regionOfAZ(s.AZ), v.region), az: s.AZ,
			cidr: netip.MustParsePrefix(s.CIDR), publicIP: s.MapPublicIP, tags: copyTags(s.Tags)}
		if s.Name != "" {
			x.tags["Name"] = s.Name
			subnetRef[s.Name] = x
		}
		subnetRef[x.id] = x
		c.subnets.put(x.id, x)
	}
	for _, s := range env.SecurityGroups {
		v := vpcRef[s.VPC]
		g := &secGroup{id: firstNonEmpty(s.ID, c.newID("sg")), name: s.Name, description: firstNonEmpty(s.Description, s.Name), vpcID: v.id, region: v.region, tags: copyTags(s.Tags)}
		c.secGroups.put(g.id, g)
	}
	for _, v := range c.vpcs.all() {
		if c.groupByName(v.id, "default") == nil {
			g := &secGroup{id: c.newID("sg"), name: "default", description: "default VPC security group", vpcID: v.id, region: v.region, tags: map[string]string{}}
			g.rules = []*sgRule{
				{id: c.newID("sgr"), proto: "-1", group: g.id},
				{id: c.newID("sgr"), egress: true, proto: "-1", cidr4: "0.0.0.0/0"},
			}
			c.secGroups.put(g.id, g)
		}
	}
	sgID := func(ref, vpcID string) string {
		if g, ok := c.secGroups.get(ref); ok {
			return g.id
		}
		return c.groupByName(vpcID, ref).id
	}
	for _, s := range env.SecurityGroups {
		g := c.groupByName(vpcRef[s.VPC].id, s.Name)
		for _, dir := range []bool{false, true} {
			rules := s.Ingress
			if dir {
				rules = s.Egress
			}
			for _, r := range rules {
				proto, _ := normProto(firstNonEmpty(r.Protocol, "-1"))
				from, to, _ := parsePorts(r.Ports)
				if proto == "-1" {
					from, to = nil, nil
				}
				x := &sgRule{id: c.newID("sgr"), egress: dir, proto: proto, from: from, to: to, desc: r.Description}
				switch {
				case r.Group != "":
					x.group = sgID(r.Group, g.vpcID)
				case strings.Contains(r.CIDR, ":"):
					x.cidr6 = r.CIDR
				default:
					x.cidr4 = r.CIDR
				}
				g.rules = append(g.rules, x)
			}
		}
	}
	for _, s := range env.Images {
		im := &image{seq: c.nextSeq(), id: s.ID, name: s.Name, desc: s.Description, owner: c.account, state: ec2types.ImageStateAvailable,
			created: t, rootDevice: "/dev/xvda", tags: copyTags(s.Tags)}
		switch o := firstNonEmpty(s.Owner, "self"); o {
		case "self":
		case "amazon":
			im.owner, im.alias = "137112412989", "amazon"
		default:
			im.owner = o
		}
		vols := s.Volumes
		if len(vols) == 0 {
			vols = []VolumeSpec{{Device: "/dev/xvda", SizeGiB: 8}}
		}
		im.rootDevice = vols[0].Device
		for _, v := range vols {
			snap := &snapshot{id: c.newID("snap"), volumeID: "vol-ffffffff", desc: "Copied for " + s.ID, owner: im.owner, size: v.SizeGiB,
				state: ec2types.SnapshotStateCompleted, started: t, due: t, tags: map[string]string{}}
			c.snapshots.put(snap.id, snap)
			im.disks = append(im.disks, imageDisk{device: v.Device, snapshotID: snap.id, size: v.SizeGiB, volType: firstNonEmpty(v.Type, "gp3"), deleteOnTerm: true})
		}
		c.images.put(im.id, im)
	}
	tgRef := map[string]*targetGroup{}
	for _, s := range env.TargetGroups {
		region := firstNonEmpty(s.Region, env.Region)
		tg := &targetGroup{name: s.Name, region: region, vpcID: vpcRef[s.VPC].id, protocol: firstNonEmpty(s.Protocol, "HTTP"), port: s.Port, loadBalancer: s.LoadBalancer}
		if tg.port == 0 {
			tg.port = 80
		}
		tg.arn = s.ARN
		if tg.arn == "" {
			tg.arn = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s", region, c.account, s.Name, c.hex(16))
		}
		tgRef[s.Name], tgRef[tg.arn] = tg, tg
		c.targetGroups.put(tg.arn, tg)
	}
	profileARN := func(p string) string {
		if p == "" || strings.HasPrefix(p, "arn:") {
			return p
		}
		return "arn:aws:iam::" + c.account + ":instance-profile/" + p
	}
	for _, s := range env.AutoScalingGroups {
		region := firstNonEmpty(s.Region, env.Region)
		g := &asGroup{name: s.Name, region: region, min: s.Min, max: s.Max, desired: s.Desired, instanceType: s.InstanceType, imageID: s.Image,
			profileARN: profileARN(s.IAMInstanceProfile), launchTemplate: s.LaunchTemplate, healthCheck: firstNonEmpty(s.HealthCheckType, "ELB"),
			newProtected: s.NewInstancesProtectedFromScaleIn, tags: copyTags(s.Tags), created: t}
		g.arn = fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", region, c.account, c.newUUID(), s.Name)
		if g.launchTemplate != "" {
			g.launchTplID = c.newID("lt")
		}
		var vpcID string
		for _, ref := range s.Subnets {
			sub := subnetRef[ref]
			g.subnets = append(g.subnets, sub.id)
			vpcID = sub.vpcID
		}
		for _, ref := range s.SecurityGroups {
			g.secGroups = append(g.secGroups, sgID(ref, vpcID))
		}
		for _, ref := range s.TargetGroups {
			g.targetGroups = append(g.targetGroups, tgRef[ref].arn)
		}
		c.groups.put(g.name, g)
	}
	for _, s := range env.Instances {
		sub := subnetRef[s.Subnet]
		launched := t
		if s.LaunchTime != "" {
			launched, _ = time.Parse(time.RFC3339, s.LaunchTime)
		}
		in := &instance{
			seq: c.nextSeq(), id: s.ID, instanceType: s.Type, imageID: s.Image,
			region: firstNonEmpty(s.Region, sub.region), az: sub.az, publicIP: s.PublicIP,
			profileARN: profileARN(s.IAMInstanceProfile), tags: copyTags(s.Tags),
			termProtection: s.TerminationProtection, sourceDestCheck: true, shutdownBehavior: "stop",
			launched: launched, state: ec2types.InstanceStateNameRunning, since: t, reservationID: c.newID("r"),
		}
		if in.profileARN != "" {
			in.profileID = c.profileID()
		}
		if s.Host != "" {
			if _, ok := in.tags["Name"]; !ok {
				in.tags["Name"] = s.Host
			}
		}
		if in.publicIP != "" {
			c.used[in.publicIP] = true
		}
		in.privateDNS = privateDNSName(s.PrivateIP, in.region)
		groups := func(refs []string, vpcID string) []string {
			var out []string
			for _, r := range refs {
				out = append(out, sgID(r, vpcID))
			}
			if len(out) == 0 {
				out = []string{sgID("default", vpcID)}
			}
			return out
		}
		primary := &eni{id: firstNonEmpty(s.NetworkInterfaceID, c.newID("eni")), subnetID: sub.id, vpcID: sub.vpcID, privateIP: s.PrivateIP,
			mac: c.newMAC(), attachID: c.newID("eni-attach"), index: 0, groups: groups(s.SecurityGroups, sub.vpcID), attached: launched,
			deleteOnTerm: true, tags: map[string]string{}}
		in.enis = append(in.enis, primary)
		for k, e := range s.SecondaryInterfaces {
			es := subnetRef[firstNonEmpty(e.Subnet, s.Subnet)]
			in.enis = append(in.enis, &eni{id: firstNonEmpty(e.ID, c.newID("eni")), subnetID: es.id, vpcID: es.vpcID, privateIP: e.PrivateIP,
				mac: c.newMAC(), attachID: c.newID("eni-attach"), index: int32(k + 1), groups: groups(e.SecurityGroups, es.vpcID),
				attached: launched, deleteOnTerm: true, description: e.Description, tags: map[string]string{}})
		}
		for _, e := range in.enis {
			c.enis[e.id] = in
		}
		vols := s.Volumes
		if len(vols) == 0 {
			im, _ := c.images.get(s.Image)
			for _, d := range im.disks {
				vols = append(vols, VolumeSpec{Device: d.device, SizeGiB: d.size, Type: d.volType})
			}
		}
		for _, v := range vols {
			vol := &volume{id: firstNonEmpty(v.ID, c.newID("vol")), device: v.Device, size: v.SizeGiB, volType: firstNonEmpty(v.Type, "gp3"),
				deleteOnTerm: true, attached: launched, tags: map[string]string{}}
			in.vols = append(in.vols, vol)
			c.volumes[vol.id] = in
		}
		c.instances.put(in.id, in)
		if s.AutoScalingGroup != "" {
			g, _ := c.groups.get(s.AutoScalingGroup)
			in.tags["aws:autoscaling:groupName"] = g.name
			g.members = append(g.members, &member{id: in.id, lifecycle: astypes.LifecycleStateInService, health: "Healthy",
				protected: s.ProtectedFromScaleIn, az: in.az, imageID: in.imageID, instanceType: in.instanceType})
			for _, arn := range g.targetGroups {
				tg, _ := c.targetGroups.get(arn)
				tg.targets = append(tg.targets, &target{id: in.id, port: tg.port, state: elbtypes.TargetHealthStateEnumHealthy, due: t})
			}
		}
	}
	for _, arn := range env.Topics {
		c.topics.put(arn, arn)
	}
	for _, g := range c.groups.all() {
		c.reconcile(g, t)
	}
	return nil
}

func (c *Cloud) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[c.rng.IntN(16)]
	}
	return string(b)
}
