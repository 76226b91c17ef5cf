package simcloud_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cordonhq/cordon/simcloud"
)

// A worker in demo mode uses the simulated cloud as its CloudProvider.
func ExampleNew() {
	env, err := simcloud.LoadEnvironment("testdata/seed.yaml")
	if err != nil {
		panic(err)
	}
	cloud, err := simcloud.New(env, simcloud.Options{}) // zero delays: every change settles by the next call
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	clients, _ := cloud.Clients(ctx, "123456789012", "us-east-1")

	out, _ := clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("private-ip-address"), Values: []string{"10.0.1.10"}}},
	})
	inst := out.Reservations[0].Instances[0]
	fmt.Println(aws.ToString(inst.InstanceId), len(inst.NetworkInterfaces), "interfaces")

	_, _ = clients.AutoScaling.DetachInstances(ctx, &autoscaling.DetachInstancesInput{
		AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{aws.ToString(inst.InstanceId)},
		ShouldDecrementDesiredCapacity: aws.Bool(false),
	})
	g, _ := cloud.Group("web-asg")
	fmt.Println(len(g.InService()), "in service, desired", g.Desired)
	// Output:
	// i-04f2ae54915567738 2 interfaces
	// 5 in service, desired 5
}
