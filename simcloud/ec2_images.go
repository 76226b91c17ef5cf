package simcloud

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

var amiName = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)

func (c *Cloud) imageByID(id string) (*image, error) {
	im, ok := c.images.get(id)
	if !ok {
		if !validID(id, "ami") {
			return nil, apiErr("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
		}
		return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	return im, nil
}

// imageUsing returns a registered image whose block devices use a snapshot.
func (c *Cloud) imageUsing(snapID string, except *image) *image {
	for _, im := range c.images.all() {
		if im == except {
			continue
		}
		for _, d := range im.disks {
			if d.snapshotID == snapID {
				return im
			}
		}
	}
	return nil
}

// CreateImage implements activities.EC2API. The image is pending with one
// pending snapshot per volume (skip a volume with a BlockDeviceMappings entry
// whose NoDevice is set), both available/completed after
// Delays.ImageAvailable. Names are unique per account
// (InvalidAMIName.Duplicate). Without NoReboot a running instance is rebooted
// (counted, see InstanceInfo.Reboots). TagSpecifications may tag the image and
// the snapshots.
func (c *Cloud) CreateImage(ctx context.Context, in *ec2.CreateImageInput, _ ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	return call(c, ctx, svcEC2, "CreateImage", in, c.createImage)
}

func (c *Cloud) createImage(t time.Time, in *ec2.CreateImageInput) (*ec2.CreateImageOutput, error) {
	if err := need("CreateImage", req{"InstanceId", in.InstanceId != nil}, req{"Name", in.Name != nil}); err != nil {
		return nil, err
	}
	inst, err := c.instanceByID(*in.InstanceId)
	if err != nil {
		return nil, err
	}
	name := *in.Name
	if !amiName.MatchString(name) {
		return nil, apiErr("InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'")
	}
	for _, im := range c.images.all() {
		if im.owner == c.account && im.name == name {
			return nil, apiErr("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, im.id)
		}
	}
	switch inst.state {
	case ec2types.InstanceStateNameRunning, ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
	default:
		return nil, apiErr("IncorrectInstanceState", "Instance '%s' is not in state 'running' or 'stopping' or 'stopped'", inst.id)
	}
	tags, err := tagSpecs(in.TagSpecifications, "CreateImage", ec2types.ResourceTypeImage, ec2types.ResourceTypeSnapshot)
	if err != nil {
		return nil, err
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, m := range in.BlockDeviceMappings {
		if m.NoDevice != nil {
			skip[deref(m.DeviceName)] = true
		}
	}
	im := &image{
		seq:        c.nextSeq(),
		id:         c.newID("ami"),
		name:       name,
		desc:       deref(in.Description),
		owner:      c.account,
		state:      ec2types.ImageStatePending,
		created:    t,
		due:        t.Add(c.delays.ImageAvailable),
		source:     inst.id,
		noReboot:   deref(in.NoReboot),
		rootDevice: "/dev/xvda",
		tags:       tags[ec2types.ResourceTypeImage],
	}
	if im.tags == nil {
		im.tags = map[string]string{}
	}
	for _, v := range inst.vols {
		if skip[v.device] {
			continue
		}
		s := &snapshot{
			id:       c.newID("snap"),
			volumeID: v.id,
			desc:     fmt.Sprintf("Created by CreateImage(%s) for %s", inst.id, im.id),
			owner:    c.account,
			size:     v.size,
			state:    ec2types.SnapshotStatePending,
			started:  t,
			due:      im.due,
			tags:     copyTags(tags[ec2types.ResourceTypeSnapshot]),
		}
		c.snapshots.put(s.id, s)
		im.disks = append(im.disks, imageDisk{device: v.device, snapshotID: s.id, size: v.size, volType: v.volType, deleteOnTerm: true})
	}
	if !im.noReboot && inst.state == ec2types.InstanceStateNameRunning {
		inst.reboots++
	}
	c.images.put(im.id, im)
	return &ec2.CreateImageOutput{ImageId: ptr(im.id)}, nil
}

var imageFilters = set("image-id", "name", "state", "owner-id", "owner-alias", "description", "image-type",
	"is-public", "source-instance-id", "block-device-mapping.snapshot-id", "tag-key", "tag-value")

// DescribeImages implements activities.EC2API with ImageIds, Owners (self,
// amazon or an account ID) and the filters image-id, name, state, owner-id,
// owner-alias, description, image-type, is-public, source-instance-id,
// block-device-mapping.snapshot-id and tag:<key>.
func (c *Cloud) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return call(c, ctx, svcEC2, "DescribeImages", in, c.describeImages)
}

func (c *Cloud) describeImages(_ time.Time, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	if err := checkFilters(in.Filters, imageFilters); err != nil {
		return nil, err
	}
	list := c.images.all()
	if len(in.ImageIds) > 0 {
		list = nil
		var missing []string
		for _, id := range in.ImageIds {
			im, err := c.imageByID(id)
			if err != nil {
				if !validID(id, "ami") {
					return nil, err
				}
				missing = append(missing, id)
				continue
			}
			list = append(list, im)
		}
		if len(missing) > 0 {
			return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", strings.Join(missing, ", "))
		}
	}
	out := &ec2.DescribeImagesOutput{Images: []ec2types.Image{}}
	for _, im := range list {
		if len(in.Owners) > 0 {
			ok := false
			for _, o := range in.Owners {
				ok = ok || (o == "self" && im.owner == c.account) || o == im.owner || (o == im.alias && o != "")
			}
			if !ok {
				continue
			}
		}
		get := func(name string) ([]string, bool) {
			switch name {
			case "image-id":
				return []string{im.id}, true
			case "name":
				return []string{im.name}, true
			case "state":
				return []string{string(im.state)}, true
			case "owner-id":
				return []string{im.owner}, true
			case "owner-alias":
				return []string{im.alias}, true
			case "description":
				return []string{im.desc}, true
			case "image-type":
				return []string{"machine"}, true
			case "is-public":
				return []string{fmt.Sprint(im.alias == "amazon")}, true
			case "source-instance-id":
				return []string{im.source}, true
			case "block-device-mapping.snapshot-id":
				var ids []string
				for _, d := range im.disks {
					ids = append(ids, d.snapshotID)
				}
				return ids, true
			}
			return nil, false
		}
		if matchFilters(in.Filters, im.tags, get) {
			out.Images = append(out.Images, c.imageOut(im))
		}
	}
	return out, nil
}

func (c *Cloud) imageOut(im *image) ec2types.Image {
	out := ec2types.Image{
		ImageId:            ptr(im.id),
		Name:               ptr(im.name),
		OwnerId:            ptr(im.owner),
		State:              im.state,
		CreationDate:       ptr(im.created.UTC().Format("2006-01-02T15:04:05.000Z")),
		ImageLocation:      ptr(im.owner + "/" + im.name),
		ImageType:          ec2types.ImageTypeValuesMachine,
		Public:             ptr(im.alias == "amazon"),
		Architecture:       ec2types.ArchitectureValuesX8664,
		RootDeviceName:     ptr(im.rootDevice),
		RootDeviceType:     ec2types.DeviceTypeEbs,
		VirtualizationType: ec2types.VirtualizationTypeHvm,
		Hypervisor:         ec2types.HypervisorTypeXen,
		EnaSupport:         ptr(true),
		PlatformDetails:    ptr("Linux/UNIX"),
		UsageOperation:     ptr("RunInstances"),
		Tags:               tagList(im.tags),
	}
	if im.desc != "" {
		out.Description = ptr(im.desc)
	}
	if im.alias != "" {
		out.ImageOwnerAlias = ptr(im.alias)
	}
	if im.source != "" {
		out.SourceInstanceId = ptr(im.source)
	}
	for _, d := range im.disks {
		out.BlockDeviceMappings = append(out.BlockDeviceMappings, ec2types.BlockDeviceMapping{
			DeviceName: ptr(d.device),
			Ebs: &ec2types.EbsBlockDevice{
				SnapshotId:          ptr(d.snapshotID),
				VolumeSize:          ptr(d.size),
				VolumeType:          ec2types.VolumeType(d.volType),
				DeleteOnTermination: ptr(d.deleteOnTerm),
				Encrypted:           ptr(false),
			},
		})
	}
	return out
}

// DeregisterImage implements activities.EC2API. The snapshots are kept
// unless DeleteAssociatedSnapshots is set; a snapshot another image still
// uses is skipped.
func (c *Cloud) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	return call(c, ctx, svcEC2, "DeregisterImage", in, c.deregisterImage)
}

func (c *Cloud) deregisterImage(_ time.Time, in *ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error) {
	if err := need("DeregisterImage", req{"ImageId", in.ImageId != nil}); err != nil {
		return nil, err
	}
	im, err := c.imageByID(*in.ImageId)
	if err != nil {
		return nil, err
	}
	if im.owner != c.account {
		return nil, apiErr("AuthFailure", "Not authorized for image:%s", im.id)
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	c.images.del(im.id)
	out := &ec2.DeregisterImageOutput{Return: ptr(true)}
	if deref(in.DeleteAssociatedSnapshots) {
		for _, d := range im.disks {
			code := ec2types.SnapshotReturnCodesSuccess
			if c.imageUsing(d.snapshotID, im) != nil {
				code = ec2types.SnapshotReturnCodesWarnSkipped
			} else {
				c.snapshots.del(d.snapshotID)
			}
			out.DeleteSnapshotResults = append(out.DeleteSnapshotResults, ec2types.DeleteSnapshotReturnCode{SnapshotId: ptr(d.snapshotID), ReturnCode: code})
		}
	}
	return out, nil
}

// DeleteSnapshot implements activities.EC2API. A snapshot a registered image
// uses fails InvalidSnapshot.InUse.
func (c *Cloud) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return call(c, ctx, svcEC2, "DeleteSnapshot", in, c.deleteSnapshot)
}

func (c *Cloud) deleteSnapshot(_ time.Time, in *ec2.DeleteSnapshotInput) (*ec2.DeleteSnapshotOutput, error) {
	if err := need("DeleteSnapshot", req{"SnapshotId", in.SnapshotId != nil}); err != nil {
		return nil, err
	}
	id := *in.SnapshotId
	s, ok := c.snapshots.get(id)
	if !ok {
		if !validID(id, "snap") {
			return nil, apiErr("InvalidSnapshotID.Malformed", "Invalid id: \"%s\" (expecting \"snap-...\")", id)
		}
		return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	}
	if im := c.imageUsing(s.id, nil); im != nil {
		return nil, apiErr("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", s.id, im.id)
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	c.snapshots.del(s.id)
	return &ec2.DeleteSnapshotOutput{}, nil
}

// ---------------------------------------------------------------------------
// Tags.

// tagsOf returns the tag map of a resource, with the NotFound error EC2 gives
// for its kind.
func (c *Cloud) tagsOf(id string) (map[string]string, error) {
	prefix, _, _ := strings.Cut(id, "-")
	notFound := func(code, format string) (map[string]string, error) {
		return nil, apiErr(code, format, id)
	}
	switch prefix {
	case "i":
		if in, ok := c.instances.get(id); ok {
			return in.tags, nil
		}
		return notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist")
	case "ami":
		if im, ok := c.images.get(id); ok {
			return im.tags, nil
		}
		return notFound("InvalidAMIID.NotFound", "The image id '[%s]' does not exist")
	case "snap":
		if s, ok := c.snapshots.get(id); ok {
			return s.tags, nil
		}
		return notFound("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.")
	case "sg":
		if g, ok := c.secGroups.get(id); ok {
			return g.tags, nil
		}
		return notFound("InvalidGroup.NotFound", "The security group '%s' does not exist")
	case "subnet":
		if s, ok := c.subnets.get(id); ok {
			return s.tags, nil
		}
		return notFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist")
	case "vpc":
		if v, ok := c.vpcs.get(id); ok {
			return v.tags, nil
		}
		return notFound("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist")
	case "vol":
		if in, ok := c.volumes[id]; ok {
			for _, v := range in.vols {
				if v.id == id {
					return v.tags, nil
				}
			}
		}
		return notFound("InvalidVolume.NotFound", "The volume '%s' does not exist.")
	case "eni":
		if in, ok := c.enis[id]; ok {
			for _, e := range in.enis {
				if e.id == id {
					return e.tags, nil
				}
			}
		}
		return notFound("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist")
	}
	return notFound("InvalidID", "The ID '%s' is not valid")
}

func checkTagKey(k string) error {
	switch {
	case k == "" || len(k) > 128:
		return apiErr("InvalidParameterValue", "Tag keys must be between 1 and 128 characters long: '%s'", k)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return apiErr("InvalidParameterValue", "Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", k)
	}
	return nil
}

// CreateTags implements activities.EC2API for instances, images, snapshots,
// security groups, subnets, VPCs, volumes and network interfaces. It is all
// or nothing: an unknown resource fails with its kind's NotFound code.
func (c *Cloud) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return call(c, ctx, svcEC2, "CreateTags", in, c.createTags)
}

func (c *Cloud) createTags(_ time.Time, in *ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error) {
	if err := need("CreateTags", req{"Resources", in.Resources != nil}, req{"Tags", in.Tags != nil}); err != nil {
		return nil, err
	}
	for _, tag := range in.Tags {
		if err := checkTagKey(deref(tag.Key)); err != nil {
			return nil, err
		}
		if len(deref(tag.Value)) > 256 {
			return nil, apiErr("InvalidParameterValue", "Tag values may be at most 256 characters long (key '%s')", deref(tag.Key))
		}
	}
	var maps []map[string]string
	for _, id := range in.Resources {
		m, err := c.tagsOf(id)
		if err != nil {
			return nil, err
		}
		n := len(m)
		for _, tag := range in.Tags {
			if _, ok := m[deref(tag.Key)]; !ok {
				n++
			}
		}
		if n > 50 {
			return nil, apiErr("TagLimitExceeded", "The maximum number of tags for resource '%s' has been reached.", id)
		}
		maps = append(maps, m)
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	for _, m := range maps {
		for _, tag := range in.Tags {
			m[deref(tag.Key)] = deref(tag.Value)
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

// DeleteTags implements activities.EC2API: a tag without a value is deleted
// whatever its value; with a value, only if the value matches; no tags at all
// deletes every tag (except aws: ones).
func (c *Cloud) DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, _ ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error) {
	return call(c, ctx, svcEC2, "DeleteTags", in, c.deleteTags)
}

func (c *Cloud) deleteTags(_ time.Time, in *ec2.DeleteTagsInput) (*ec2.DeleteTagsOutput, error) {
	if err := need("DeleteTags", req{"Resources", in.Resources != nil}); err != nil {
		return nil, err
	}
	for _, tag := range in.Tags {
		if err := checkTagKey(deref(tag.Key)); err != nil {
			return nil, err
		}
	}
	var maps []map[string]string
	for _, id := range in.Resources {
		m, err := c.tagsOf(id)
		if err != nil {
			return nil, err
		}
		maps = append(maps, m)
	}
	if err := dry(in.DryRun); err != nil {
		return nil, err
	}
	for _, m := range maps {
		if len(in.Tags) == 0 {
			for k := range m {
				if !strings.HasPrefix(k, "aws:") {
					delete(m, k)
				}
			}
			continue
		}
		for _, tag := range in.Tags {
			k := deref(tag.Key)
			if v, ok := m[k]; ok && (tag.Value == nil || *tag.Value == v) {
				delete(m, k)
			}
		}
	}
	return &ec2.DeleteTagsOutput{}, nil
}
