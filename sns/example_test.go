package sns_test

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/cordonhq/cordon/sns"
	"github.com/cordonhq/cordon/workflows"
)

// Mounting the endpoint (what `starter serve` does): a verified SNS
// subscriber on POST /sns whose alerts open incidents on Temporal.
func ExampleNewHandler() {
	var c client.Client // the Temporal client (app.ConnectTemporal)
	h, err := sns.NewHandler(sns.Config{
		Topics:         []string{"arn:aws:sns:us-east-1:123456789012:security-alerts"},
		RawSecret:      os.Getenv("CORDON_SNS_RAW_SECRET"), // empty: raw delivery refused
		DefaultAccount: "123456789012",
		DefaultRegion:  "us-east-1",
		Policy:         workflows.Policy{Approval: workflows.ApprovalBeforeDestructive},
		Logger:         slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	}, sns.TemporalOpener{Client: c})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sns", h)
	prometheus.NewRegistry().MustRegister(h.Stats())
	// Output:
}
