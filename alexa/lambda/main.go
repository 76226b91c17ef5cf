// Command lambda is Cordon's Alexa skill as an AWS Lambda function (runtime
// provided.al2023, handler bootstrap; build with
// GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./alexa/lambda).
//
// Environment: CORDON_ALEXA_SKILL_ID (required: the skill's application ID,
// checked on every event), CORDON_ALEXA_USERS (optional comma-separated
// Alexa user IDs allowed to steer Cordon), CORDON_LOG_LEVEL, and the
// Temporal SDK's variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_*, …) naming the cluster the worker uses.
package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	tlog "go.temporal.io/sdk/log"

	"github.com/cordonhq/cordon/alexa"
)

func main() {
	var level slog.Level
	_ = level.UnmarshalText([]byte(os.Getenv("CORDON_LOG_LEVEL")))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := alexa.Config{SkillID: os.Getenv("CORDON_ALEXA_SKILL_ID"), Logger: log}
	for _, u := range strings.Split(os.Getenv("CORDON_ALEXA_USERS"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.Users = append(cfg.Users, u)
		}
	}
	if cfg.SkillID == "" {
		log.Error("alexa: set CORDON_ALEXA_SKILL_ID to the skill's application ID (amzn1.ask.skill.…)")
		os.Exit(1)
	}
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		log.Error("alexa: reading the Temporal client configuration (TEMPORAL_ADDRESS, …)", "error", err.Error())
		os.Exit(1)
	}
	opts.Logger = tlog.NewStructuredLogger(log)
	// Lazy: a Temporal outage at cold start must not crash the function;
	// the skill says it cannot reach Temporal instead.
	c, err := client.NewLazyClient(opts)
	if err != nil {
		log.Error("alexa: Temporal client", "error", err.Error())
		os.Exit(1)
	}
	defer c.Close()
	lambda.Start(alexa.NewLambdaHandler(cfg, alexa.NewSkill(c, log)))
}
