package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cordonhq/cordon/alexa"
	"github.com/cordonhq/cordon/alexa/alexatest"
	"github.com/cordonhq/cordon/workflows"
)

type none struct{}

func (none) Open(context.Context) ([]alexa.Incident, error) { return nil, nil }
func (none) Status(context.Context, string) (workflows.Status, error) {
	return workflows.Status{}, workflows.ErrNoIncident
}
func (none) Decide(context.Context, string, string, workflows.Decision) (workflows.Status, bool, error) {
	return workflows.Status{}, false, workflows.ErrNoIncident
}

func (none) Breakers(context.Context) ([]alexa.Breaker, error) { return nil, nil }
func (none) ResetBreaker(context.Context, string, workflows.Decision) (workflows.GovernorStatus, error) {
	return workflows.GovernorStatus{}, alexa.ErrNoGovernor
}

// TestLambdaRuntimeAcceptsHandler runs the handler through aws-lambda-go's
// own handler wrapper, as the Lambda runtime does.
func TestLambdaRuntimeAcceptsHandler(t *testing.T) {
	const id = "amzn1.ask.skill.11111111-2222-3333-4444-555555555555"
	h := lambda.NewHandler(alexa.NewLambdaHandler(alexa.Config{SkillID: id}, &alexa.Skill{Incidents: none{}}))
	out, err := h.Invoke(context.Background(), alexatest.Call{AppID: id, Intent: alexa.IntentStatus}.JSON())
	if err != nil {
		t.Fatal(err)
	}
	var r alexa.ResponseEnvelope
	if err := json.Unmarshal(out, &r); err != nil || !strings.Contains(r.Spoken(), "No incident is open.") {
		t.Fatalf("%s %v", out, err)
	}
	if _, err := h.Invoke(context.Background(), alexatest.Call{AppID: "amzn1.ask.skill.other", Intent: alexa.IntentStatus}.JSON()); err == nil {
		t.Fatal("foreign skill accepted")
	}
}
