package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/cordonhq/cordon/workflows"
)

type slogLevel = slog.Level

func listRequest(query string, limit int) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: int32(limit)}
}

func keyword(sa *commonpb.SearchAttributes, name string) string {
	if sa == nil {
		return ""
	}
	p, ok := sa.IndexedFields[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func uiLink(base, namespace, id string) string {
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(id)
}

func printStatus(out io.Writer, st workflows.Status, uiBase string) {
	fmt.Fprintf(out, "incident   %s\n", st.IncidentID)
	fmt.Fprintf(out, "instance   %s (account %s, region %s)\n", st.InstanceID, st.Account, st.Region)
	if st.Group != "" {
		fmt.Fprintf(out, "group      %s\n", st.Group)
	}
	fmt.Fprintf(out, "bad IP     %s\n", st.BadIP)
	fmt.Fprintf(out, "phase      %s\n", st.Phase)
	if st.Outcome != "" {
		fmt.Fprintf(out, "outcome    %s\n", st.Outcome)
	}
	if st.Reason != "" {
		fmt.Fprintf(out, "reason     %s\n", st.Reason)
	}
	fmt.Fprintf(out, "opened     %s\n", st.Opened.UTC().Format(time.RFC3339))
	if !st.Closed.IsZero() {
		fmt.Fprintf(out, "closed     %s\n", st.Closed.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(out, "evidence   %d alert(s)\n", st.EvidenceCount)
	for _, w := range st.Warnings {
		fmt.Fprintf(out, "warning    %s\n", w)
	}
	r := st.Resources
	fmt.Fprintf(out, "image      %s %s deregistered=%t snapshots=%s deleted=%t\n", r.ImageID, r.ImageName, r.ImageDeregistered, strings.Join(r.SnapshotIDs, ","), r.SnapshotsDeleted)
	fmt.Fprintf(out, "copy       %s\n", r.QuarantineInstanceID)
	fmt.Fprintf(out, "replaced   %s\n", strings.Join(r.ReplacementIDs, ","))
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tOUTCOME\tSTARTED\tTOOK\tDETAIL")
	for _, s := range st.Steps {
		took := ""
		if !s.Ended.IsZero() {
			took = s.Ended.Sub(s.Started).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Outcome, s.Started.UTC().Format("15:04:05"), took, s.Detail)
	}
	_ = tw.Flush()
	if u := uiLink(uiBase, "default", st.IncidentID); u != "" {
		fmt.Fprintf(out, "\nWeb UI     %s\n", u)
	}
}

// phaseDurations renders "isolating 0.4s, imaging 3.1s, ..." from the phase history.
func phaseDurations(st workflows.Status) string {
	var parts []string
	for i, p := range st.Phases {
		if p.Phase == workflows.PhaseOpened || p.Phase.Final() {
			continue
		}
		end := st.Closed
		if i+1 < len(st.Phases) {
			end = st.Phases[i+1].At
		}
		if end.IsZero() {
			parts = append(parts, string(p.Phase)+" …")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", p.Phase, end.Sub(p.At).Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}
