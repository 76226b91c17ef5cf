package search

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/workflows"
)

// The detections index: the detector records every hit as an ECS alert
// document in a daily index <prefix>-YYYY.MM.DD (the day of the event, UTC),
// for Kibana (kibana/) and for anyone who searches the cluster. The index
// template <prefix> (DetectionsTemplate) maps addresses as ip, names as
// keyword and times as date; it is a composable index template
// (_index_template), which Elasticsearch 7.8+/8 and OpenSearch 1/2 share.
//
// Each document's _id is derived from the flow document it was found in
// (index and _id) and the listed address, and it is written with the bulk
// API's create action: a retried activity finds its documents there (409)
// and writes nothing twice.

// DefaultDetectionsPrefix is the worker's default prefix of the detections
// indices (--search-detections-prefix).
const DefaultDetectionsPrefix = "cordon-detections"

// DetectionDataset is event.dataset of a detection document.
const DetectionDataset = "cordon.detection"

// DetectionsTemplateVersion is the version of DetectionsTemplate. A template
// found in the cluster with this version or a higher one is left as it is
// (an operator may have changed it); a lower one or none is (re)written.
const DetectionsTemplateVersion = 1

// detectionsECSVersion is the ECS version the documents follow.
const detectionsECSVersion = "8.11.0"

// ValidDetectionsPrefix checks that prefix can name indices and an index
// template on both engines: lower case letters, digits, '-', '_' and '.',
// not starting with '-', '_' or '.', at most 200 bytes.
func ValidDetectionsPrefix(prefix string) error {
	switch {
	case prefix == "":
		return errors.New("detections index prefix: empty")
	case len(prefix) > 200:
		return fmt.Errorf("detections index prefix %q: longer than 200 bytes", prefix)
	case strings.ContainsAny(prefix[:1], "-_."):
		return fmt.Errorf("detections index prefix %q: must not start with '-', '_' or '.'", prefix)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("detections index prefix %q: only lower-case letters, digits, '-', '_' and '.'", prefix)
		}
	}
	return nil
}

// DetectionsIndex is the daily index of a detection at t: <prefix>-YYYY.MM.DD (UTC).
func DetectionsIndex(prefix string, t time.Time) string {
	return prefix + "-" + t.UTC().Format("2006.01.02")
}

// DetectionsPattern is the index pattern of all detections indices: <prefix>-*.
func DetectionsPattern(prefix string) string { return prefix + "-*" }

// DetectionsTemplate returns the composable index template of the
// detections indices of prefix (put as _index_template/<prefix>). Strings
// that the mappings do not name are keywords too.
func DetectionsTemplate(prefix string) string {
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	obj := func(props map[string]any) map[string]any { return map[string]any{"properties": props} }
	ip := map[string]any{"type": "ip"}
	port := map[string]any{"type": "long"}
	date := map[string]any{"type": "date"}
	tmpl := map[string]any{
		"index_patterns": []string{DetectionsPattern(prefix)},
		"priority":       200,
		"version":        DetectionsTemplateVersion,
		"_meta": map[string]any{
			"managed_by":  "cordon",
			"description": "Cordon detector: sessions to known bad actors (one document per blocklist hit)",
		},
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{"number_of_shards": 1}},
			"mappings": map[string]any{
				"dynamic_templates": []any{
					map[string]any{"strings_as_keyword": map[string]any{
						"match_mapping_type": "string",
						"mapping":            kw,
					}},
				},
				"properties": map[string]any{
					"@timestamp": date,
					"message":    map[string]any{"type": "text"},
					"ecs":        obj(map[string]any{"version": kw}),
					"event": obj(map[string]any{
						"kind": kw, "category": kw, "type": kw, "dataset": kw, "module": kw,
						"action": kw, "id": kw, "created": date,
					}),
					"source":      obj(map[string]any{"ip": ip, "port": port}),
					"destination": obj(map[string]any{"ip": ip, "port": port}),
					"related":     obj(map[string]any{"ip": ip}),
					"network":     obj(map[string]any{"transport": kw, "direction": kw, "community_id": kw}),
					"cloud": obj(map[string]any{
						"instance": obj(map[string]any{"id": kw}),
						"account":  obj(map[string]any{"id": kw}),
						"region":   kw,
					}),
					"host": obj(map[string]any{"name": kw}),
					"threat": obj(map[string]any{
						"indicator": obj(map[string]any{"ip": ip, "type": kw, "provider": kw, "description": kw}),
						"feed":      obj(map[string]any{"name": kw}),
					}),
					"rule": obj(map[string]any{"name": kw}),
					"cordon": obj(map[string]any{
						"list": kw, "entry": kw, "label": kw, "lists": kw, "entries": kw,
						"incident": obj(map[string]any{"id": kw}),
						"flow":     obj(map[string]any{"index": kw, "doc_id": kw, "ref": kw}),
					}),
				},
			},
		},
	}
	b, _ := json.Marshal(tmpl)
	return string(b)
}

// Detection is one document of the detections index.
type Detection struct {
	// Index is the daily index, ID the document's _id (DetectionID).
	Index, ID string
	Doc       DetectionDoc
}

// DetectionDoc is a detection in ECS: an alert (event.kind) about a network
// session (event.category) whose bad address is threat.indicator.ip.
type DetectionDoc struct {
	Timestamp   time.Time        `json:"@timestamp"`
	Message     string           `json:"message,omitempty"`
	ECS         DetectionECS     `json:"ecs"`
	Event       DetectionEvent   `json:"event"`
	Source      DetectionPeer    `json:"source"`
	Destination DetectionPeer    `json:"destination"`
	Related     DetectionRelated `json:"related"`
	Network     DetectionNetwork `json:"network"`
	Cloud       *DetectionCloud  `json:"cloud,omitempty"`
	Host        *DetectionHost   `json:"host,omitempty"`
	Threat      DetectionThreat  `json:"threat"`
	Rule        DetectionRule    `json:"rule"`
	Cordon      DetectionCordon  `json:"cordon"`
}

// DetectionECS is ecs.*.
type DetectionECS struct {
	Version string `json:"version"`
}

// DetectionEvent is the event.* of a detection.
type DetectionEvent struct {
	Kind     string    `json:"kind"`
	Category []string  `json:"category"`
	Type     []string  `json:"type"`
	Dataset  string    `json:"dataset"`
	Module   string    `json:"module"`
	Action   string    `json:"action"`
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
}

// DetectionPeer is source.* or destination.*.
type DetectionPeer struct {
	IP   string `json:"ip,omitempty"`
	Port uint16 `json:"port,omitempty"`
}

// DetectionRelated is related.*.
type DetectionRelated struct {
	IP []string `json:"ip,omitempty"`
}

// DetectionNetwork is network.*; Direction is "outbound" (the instance
// talked to the listed address) or "inbound".
type DetectionNetwork struct {
	Transport   string `json:"transport,omitempty"`
	Direction   string `json:"direction,omitempty"`
	CommunityID string `json:"community_id,omitempty"`
}

// DetectionCloud is cloud.*.
type DetectionCloud struct {
	Instance *struct {
		ID string `json:"id"`
	} `json:"instance,omitempty"`
	Account *struct {
		ID string `json:"id"`
	} `json:"account,omitempty"`
	Region string `json:"region,omitempty"`
}

// DetectionHost is host.*.
type DetectionHost struct {
	Name string `json:"name"`
}

// DetectionThreat is threat.*: the listed address and the list (feed) of
// the most specific entry covering it.
type DetectionThreat struct {
	Indicator struct {
		IP          string `json:"ip"`
		Type        string `json:"type"`
		Provider    string `json:"provider"`
		Description string `json:"description,omitempty"`
	} `json:"indicator"`
	Feed struct {
		Name string `json:"name"`
	} `json:"feed"`
}

// DetectionRule is rule.*: the list is the rule.
type DetectionRule struct {
	Name string `json:"name"`
}

// DetectionCordon is cordon.*: the list and entry that matched (the most
// specific; Lists and Entries are every list's entry, most specific first),
// the incident the hit belongs to and the flow document it was found in.
type DetectionCordon struct {
	List     string   `json:"list"`
	Entry    string   `json:"entry"`
	Label    string   `json:"label,omitempty"`
	Lists    []string `json:"lists"`
	Entries  []string `json:"entries"`
	Incident *struct {
		ID string `json:"id"`
	} `json:"incident,omitempty"`
	Flow struct {
		Index string `json:"index,omitempty"`
		DocID string `json:"doc_id,omitempty"`
		Ref   string `json:"ref"`
	} `json:"flow"`
}

// DetectionID is the _id of the detection of badIP (in direction) in the
// flow document flowIndex/flowID: the same hit always gets the same _id.
func DetectionID(flowIndex, flowID string, direction detector.Direction, badIP string) string {
	sum := sha256.Sum256([]byte("cordon-detection/1\x00" + flowIndex + "\x00" + flowID + "\x00" + string(direction) + "\x00" + badIP))
	return hex.EncodeToString(sum[:20])
}

// NewDetection makes the detection document of hit h of the detections
// indices of prefix. at is the event's time when the hit has none (the
// document's sort time); created is event.created.
func NewDetection(prefix string, h *detector.Hit, at, created time.Time) Detection {
	ts := h.Time
	if ts.IsZero() {
		ts = at
	}
	ts = ts.UTC()
	bad := h.BadIP.String()
	flowIndex, flowID := h.DocIndex, h.DocID
	if flowID == "" { // not from a search engine: the file reference
		flowID = h.Ref
	}
	id := DetectionID(flowIndex, flowID, h.Direction, bad)
	d := DetectionDoc{
		Timestamp: ts,
		Message:   h.Reason(),
		ECS:       DetectionECS{Version: detectionsECSVersion},
		Event: DetectionEvent{
			Kind: "alert", Category: []string{"network"}, Type: []string{"connection"},
			Dataset: DetectionDataset, Module: "cordon", Action: "blocklist-match", ID: id,
			Created: created.UTC(),
		},
		Network: DetectionNetwork{Transport: h.Transport, Direction: string(h.Direction), CommunityID: h.CommunityID},
	}
	if h.SourceIP.IsValid() {
		d.Source = DetectionPeer{IP: h.SourceIP.String(), Port: h.SourcePort}
		d.Related.IP = append(d.Related.IP, d.Source.IP)
	}
	if h.DestinationIP.IsValid() {
		d.Destination = DetectionPeer{IP: h.DestinationIP.String(), Port: h.DestinationPort}
		d.Related.IP = append(d.Related.IP, d.Destination.IP)
	}
	if h.InstanceID != "" || h.AccountID != "" || h.Region != "" {
		d.Cloud = &DetectionCloud{Region: h.Region}
		if h.InstanceID != "" {
			d.Cloud.Instance = &struct {
				ID string `json:"id"`
			}{h.InstanceID}
		}
		if h.AccountID != "" {
			d.Cloud.Account = &struct {
				ID string `json:"id"`
			}{h.AccountID}
		}
	}
	if h.HostName != "" {
		d.Host = &DetectionHost{Name: h.HostName}
	}
	d.Threat.Indicator.IP = bad
	d.Threat.Indicator.Type = "ipv4-addr"
	if h.BadIP.Is6() && !h.BadIP.Is4In6() {
		d.Threat.Indicator.Type = "ipv6-addr"
	}
	if len(h.Matches) > 0 {
		best := h.Best()
		d.Threat.Indicator.Provider, d.Threat.Feed.Name, d.Rule.Name = best.List, best.List, best.List
		d.Threat.Indicator.Description = best.Label
		d.Cordon.List, d.Cordon.Entry, d.Cordon.Label = best.List, entryText(best.Entry), best.Label
		for _, m := range h.Matches {
			d.Cordon.Lists = append(d.Cordon.Lists, m.List)
			d.Cordon.Entries = append(d.Cordon.Entries, entryText(m.Entry))
		}
	}
	// The incident the hit opens or joins: known when the event names the
	// instance, its account and region (otherwise EnsureIncident finds the
	// instance later, and the document has no cordon.incident).
	if workflows.ValidInstanceID(h.InstanceID) && h.AccountID != "" && h.Region != "" {
		d.Cordon.Incident = &struct {
			ID string `json:"id"`
		}{workflows.IncidentID(h.AccountID, h.Region, h.InstanceID)}
	}
	d.Cordon.Flow.Index, d.Cordon.Flow.DocID, d.Cordon.Flow.Ref = h.DocIndex, h.DocID, h.Ref
	return Detection{Index: DetectionsIndex(prefix, ts), ID: id, Doc: d}
}

func entryText(e detector.Entry) string {
	if e.Text != "" {
		return e.Text
	}
	return e.Prefix.String()
}

// EnsureDetectionsTemplate puts the index template of the detections
// indices of prefix unless the cluster has it already in this version or a
// later one. It returns whether it wrote it.
func (c *Client) EnsureDetectionsTemplate(ctx context.Context, prefix string) (bool, error) {
	if err := ValidDetectionsPrefix(prefix); err != nil {
		return false, err
	}
	res, err := c.do(ctx, http.MethodGet, "/_index_template/"+prefix, nil)
	if err != nil {
		return false, fmt.Errorf("search: reading index template %s: %w", prefix, err)
	}
	switch {
	case res.StatusCode == http.StatusOK:
		var got struct {
			IndexTemplates []struct {
				Name          string `json:"name"`
				IndexTemplate struct {
					Version int `json:"version"`
				} `json:"index_template"`
			} `json:"index_templates"`
		}
		err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&got)
		res.Body.Close()
		if err == nil && len(got.IndexTemplates) == 1 && got.IndexTemplates[0].IndexTemplate.Version >= DetectionsTemplateVersion {
			return false, nil
		}
	case res.StatusCode == http.StatusNotFound:
		res.Body.Close()
	default:
		defer res.Body.Close()
		return false, apiError("reading index template "+prefix, res)
	}
	es, err := c.client(ctx)
	if err != nil {
		return false, err
	}
	put := es.Indices.PutIndexTemplate
	pres, err := put(prefix, strings.NewReader(DetectionsTemplate(prefix)), put.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("search: putting index template %s: %w", prefix, err)
	}
	defer pres.Body.Close()
	if pres.IsError() {
		return false, apiError("putting index template "+prefix, pres)
	}
	return true, nil
}

// DeleteDetectionsTemplate deletes the index template of prefix (none: no error).
func (c *Client) DeleteDetectionsTemplate(ctx context.Context, prefix string) error {
	res, err := c.do(ctx, http.MethodDelete, "/_index_template/"+prefix, nil)
	if err != nil {
		return fmt.Errorf("search: deleting index template %s: %w", prefix, err)
	}
	defer res.Body.Close()
	if res.IsError() && res.StatusCode != http.StatusNotFound {
		return apiError("deleting index template "+prefix, res)
	}
	return nil
}

// WriteDetectionsResult says what WriteDetections did.
type WriteDetectionsResult struct {
	// Created documents are new; Existing ones were there already (an
	// earlier attempt wrote them); Failed ones could not be written.
	Created, Existing, Failed int
	// FirstErr is the first refusal, e.g. "429 es_rejected_execution_exception: …".
	FirstErr string
}

// detectionsBulkSize bounds the documents of one bulk request.
const detectionsBulkSize = 500

// WriteDetections writes dets with the bulk API's create action: a document
// whose _id exists is left as it is (Existing). Documents refused for a
// passing reason (429, 5xx), or a request that failed as a whole for one,
// are tried once more after a short pause. The error is that of the last
// request that failed as a whole; the result counts every document either
// way. refresh is "", "true" or "wait_for".
func (c *Client) WriteDetections(ctx context.Context, dets []Detection, refresh string) (WriteDetectionsResult, error) {
	var out WriteDetectionsResult
	var lastErr error
	for len(dets) > 0 {
		n := min(detectionsBulkSize, len(dets))
		pending := dets[:n]
		dets = dets[n:]
		for attempt := 1; ; attempt++ {
			again := attempt < 2
			retry, err := c.bulkCreate(ctx, pending, refresh, &out)
			if err != nil {
				if again && retryableBulkError(err) && sleepCtx(ctx, 500*time.Millisecond) == nil {
					continue
				}
				out.Failed += len(pending)
				if out.FirstErr == "" {
					out.FirstErr = err.Error()
				}
				lastErr = err
				break
			}
			if len(retry) == 0 {
				break
			}
			if again && sleepCtx(ctx, 500*time.Millisecond) == nil {
				pending = retry
				continue
			}
			out.Failed += len(retry)
			break
		}
	}
	return out, lastErr
}

// retryableBulkError: a request that failed as a whole for a passing reason.
func retryableBulkError(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500
	}
	return true // transport: connection refused, reset, timeout
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// bulkCreate sends one bulk request and counts its answer into out:
// created, existing, and failed for good. It returns the documents refused
// for a passing reason (429, 5xx), counted in none of these.
func (c *Client) bulkCreate(ctx context.Context, dets []Detection, refresh string, out *WriteDetectionsResult) ([]Detection, error) {
	es, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, d := range dets {
		if err := enc.Encode(map[string]any{"create": map[string]string{"_index": d.Index, "_id": d.ID}}); err != nil {
			return nil, err
		}
		if err := enc.Encode(d.Doc); err != nil {
			return nil, err
		}
	}
	call := es.Bulk
	opts := []func(*esapi.BulkRequest){call.WithContext(ctx), call.WithFilterPath("errors", "items.*._id", "items.*.status", "items.*.error")}
	if refresh != "" {
		opts = append(opts, call.WithRefresh(refresh))
	}
	res, err := call(bytes.NewReader(buf.Bytes()), opts...)
	if err != nil {
		return nil, fmt.Errorf("search: bulk detections: %w", err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return nil, apiError("bulk detections", res)
	}
	var br struct {
		Items []map[string]struct {
			ID     string          `json:"_id"`
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
		return nil, fmt.Errorf("search: bulk detections: decoding the answer: %w", err)
	}
	if len(br.Items) != len(dets) {
		return nil, fmt.Errorf("search: bulk detections: %d answers to %d documents", len(br.Items), len(dets))
	}
	var retry []Detection
	for i, it := range br.Items {
		for _, r := range it {
			switch {
			case r.Status >= 200 && r.Status < 300:
				out.Created++
			case r.Status == http.StatusConflict:
				out.Existing++
			default:
				if r.Status == http.StatusTooManyRequests || r.Status >= 500 {
					retry = append(retry, dets[i])
				} else {
					out.Failed++
				}
				if out.FirstErr == "" {
					out.FirstErr = fmt.Sprintf("%s: %d %s", dets[i].Index, r.Status, snippet(r.Error))
				}
			}
		}
	}
	return retry, nil
}
