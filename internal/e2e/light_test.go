package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/app"
	"github.com/cordonhq/cordon/simcloud"
	"github.com/cordonhq/cordon/workflows"
)

// TestLightStaysRedUntilLastIncidentCloses: three incidents at once; the
// LIFX light breathes red for each and is restored only once, at the end.
func TestLightStaysRedUntilLastIncidentCloses(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	lifx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusMultiStatus)
		_, _ = w.Write([]byte(`{"results":[{"id":"d073d5000001","label":"Desk","status":"ok"}]}`))
	}))
	defer lifx.Close()

	h := New(t, simcloud.Delays{ImageAvailable: 2 * time.Second}, "")
	h.Acts.Notifier.LIFXToken = "test-token"
	h.Acts.Notifier.LIFXBaseURL = lifx.URL + "/v1"
	h.Acts.Notifier.OtherOpenIncidents = app.OtherOpenIncidents(h.Client)

	ctx := context.Background()
	var ids []string
	for i, inst := range []string{"i-0144394dc883f9fe0", "i-085a2fa5fa92cd19c", "i-04f2ae54915567738"} {
		in := workflows.QuarantineInput{Account: "123456789012", Region: "us-east-1", InstanceID: inst,
			Evidence: workflows.Evidence{Source: "test", BadIP: "1.19.6.4"}}
		if i == 2 {
			time.Sleep(500 * time.Millisecond) // the last one opens later and so closes last
		}
		_, err := workflows.Open(ctx, h.Client, in)
		require.NoError(t, err)
		ids = append(ids, workflows.IncidentID(in.Account, in.Region, in.InstanceID))
	}
	for _, st := range h.WaitFinal(ids, time.Minute) {
		require.Equal(t, workflows.OutcomeResolved, st.Outcome, st.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	breathe, off := 0, 0
	for _, c := range calls {
		switch {
		case strings.HasSuffix(c, "/effects/breathe"):
			breathe++
		case strings.HasSuffix(c, "/effects/off"):
			off++
		}
	}
	require.Equal(t, 3, breathe, "%v", calls)
	require.Equal(t, 1, off, "the light is restored once, when the last incident closes: %v", calls)
	require.True(t, strings.HasSuffix(calls[len(calls)-1], "/effects/off"), "%v", calls)
}
