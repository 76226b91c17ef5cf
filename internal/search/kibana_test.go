package search_test

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detector"
	"github.com/cordonhq/cordon/internal/search"
	"github.com/cordonhq/cordon/internal/search/searchtest"
)

// kibanaObject is one saved object of an export (ndjson) file.
type kibanaObject struct {
	Type                 string            `json:"type"`
	ID                   string            `json:"id"`
	Attributes           map[string]any    `json:"attributes"`
	References           []kibanaRef       `json:"references"`
	CoreMigrationVersion string            `json:"coreMigrationVersion"`
	MigrationVersion     map[string]string `json:"migrationVersion"`
	TypeMigrationVersion string            `json:"typeMigrationVersion"`
}

type kibanaRef struct {
	Name, Type, ID string
}

// Attributes Kibana 8 accepts (its saved-object schemas forbid others):
// dashboard (dashboardAttributesSchema) and search (SCHEMA_SEARCH_BASE).
var kibanaAllowedAttributes = map[string][]string{
	"dashboard": {"title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom", "timeTo",
		"refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON", "hits", "version"},
	"search": {"title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage", "hideChart",
		"breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery", "usesAdHocDataView", "timeRestore",
		"timeRange", "refreshInterval", "viewMode", "hideAggregatedPreview", "hits", "version"},
}

// kibanaVersion parses "7.17.0" for comparison.
func kibanaVersion(t *testing.T, v string) [3]int {
	t.Helper()
	parts := strings.Split(v, ".")
	require.Len(t, parts, 3, "version %q", v)
	var out [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		require.NoError(t, err, "version %q", v)
		out[i] = n
	}
	return out
}

func versionLess(a, b [3]int) bool { return slices.Compare(a[:], b[:]) < 0 }

// fullDetectionFields are the fields a detection of a hit with every piece
// of context (cloud metadata, ports, list entry, flow document) has.
func fullDetectionFields(t *testing.T) map[string]bool {
	t.Helper()
	h := detector.Hit{
		InstanceID: "i-0123456789abcdef0", AccountID: "123456789012", Region: "us-east-1", HostName: "ip-10-0-1-10",
		Direction: detector.Outbound, BadIP: netip.MustParseAddr("1.19.6.4"),
		SourceIP: netip.MustParseAddr("10.0.1.10"), DestinationIP: netip.MustParseAddr("1.19.6.4"),
		SourcePort: 51544, DestinationPort: 443, Transport: "tcp",
		Matches:  []detector.Match{{List: "spamhaus_drop.netset", Entry: detector.Entry{Prefix: netip.MustParsePrefix("1.19.0.0/16"), Text: "1.19.0.0/16"}}},
		Time:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		DocIndex: "packetbeat-a", DocID: "x", Ref: "packetbeat-a/_doc/x",
	}
	b, err := json.Marshal(search.NewDetection(search.DefaultDetectionsPrefix, &h, time.Time{}, time.Now()).Doc)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	out := map[string]bool{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
			} else {
				out[prefix+k] = true
			}
		}
	}
	walk("", doc)
	return out
}

// TestKibanaSavedObjects checks kibana/*.ndjson the way Kibana 8's import
// reads it, and ties it to the detections the detector writes: every line
// is JSON; every object has a type, an id and attributes, a migration
// version Kibana 8 accepts, and only attributes its schema allows; every
// reference resolves to an object of the file; every index and panel
// reference name in the attributes has its reference; the data view is
// cordon-detections-* over @timestamp; and every field a visualization or
// the saved search uses is in the index template's mappings with a type
// its aggregation takes, and in the documents the writer makes.
func TestKibanaSavedObjects(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "kibana", "*.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "kibana/*.ndjson")

	var tmpl struct {
		IndexPatterns []string `json:"index_patterns"`
		Template      struct {
			Mappings map[string]any `json:"mappings"`
		} `json:"template"`
	}
	require.NoError(t, json.Unmarshal([]byte(search.DetectionsTemplate(search.DefaultDetectionsPrefix)), &tmpl))
	types := mappingTypes(tmpl.Template.Mappings)
	written := fullDetectionFields(t)
	// useField checks a field a Kibana object uses.
	useField := func(t *testing.T, who, field string, want ...string) {
		t.Helper()
		typ, ok := types[field]
		require.True(t, ok, "%s uses %s, which the index template does not map", who, field)
		if len(want) > 0 {
			require.Contains(t, want, typ, "%s uses %s (%s) where it needs %v", who, field, typ, want)
		}
		require.True(t, written[field], "%s uses %s, which the detector does not write", who, field)
	}

	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			lines := searchtest.ReadNDJSON(t, file)
			objs := map[string]kibanaObject{} // type/id →
			var order []kibanaObject
			var summary map[string]any
			for i, l := range lines {
				var raw map[string]any
				require.NoError(t, json.Unmarshal(l, &raw), "line %d is not a JSON object", i+1)
				if _, ok := raw["exportedCount"]; ok {
					require.Equal(t, len(lines)-1, i, "the export summary is the last line")
					summary = raw
					continue
				}
				var o kibanaObject
				require.NoError(t, json.Unmarshal(l, &o), "line %d", i+1)
				require.NotEmpty(t, o.Type, "line %d: type", i+1)
				require.NotEmpty(t, o.ID, "line %d: id", i+1)
				require.NotNil(t, o.Attributes, "line %d: attributes", i+1)
				require.NotNil(t, o.References, "line %d: references (empty list at least)", i+1)
				require.Contains(t, []string{"index-pattern", "visualization", "search", "dashboard"}, o.Type, "line %d", i+1)
				key := o.Type + "/" + o.ID
				_, dup := objs[key]
				require.False(t, dup, "line %d: %s twice", i+1, key)
				objs[key] = o
				order = append(order, o)

				// A migration version of Kibana 7.0 … 8.0 (7.0 brought the
				// reference format used here): Kibana 8 runs the later
				// migrations itself and refuses versions newer than its own.
				v := o.TypeMigrationVersion
				if v == "" {
					v = o.MigrationVersion[o.Type]
				}
				require.NotEmpty(t, v, "%s: migrationVersion.%s", key, o.Type)
				for _, ver := range []string{v, o.CoreMigrationVersion} {
					pv := kibanaVersion(t, ver)
					require.False(t, versionLess(pv, [3]int{7, 0, 0}), "%s: version %s before 7.0 (no references format)", key, ver)
					require.False(t, versionLess([3]int{8, 0, 0}, pv), "%s: version %s newer than Kibana 8.0", key, ver)
				}
				if allowed, ok := kibanaAllowedAttributes[o.Type]; ok {
					for a := range o.Attributes {
						require.Contains(t, allowed, a, "%s: attribute %s is refused by Kibana's schema", key, a)
					}
				}
				require.NotEmpty(t, o.Attributes["title"], "%s: title", key)
			}
			require.NotNil(t, summary, "the export summary line")
			require.EqualValues(t, len(order), summary["exportedCount"])
			require.EqualValues(t, 0, summary["missingRefCount"])

			// References resolve, names are unique per object.
			for _, o := range order {
				names := map[string]bool{}
				for _, r := range o.References {
					require.NotEmpty(t, r.Name, "%s/%s: reference without a name", o.Type, o.ID)
					require.False(t, names[r.Name], "%s/%s: reference %s twice", o.Type, o.ID, r.Name)
					names[r.Name] = true
					_, ok := objs[r.Type+"/"+r.ID]
					require.True(t, ok, "%s/%s: reference %s → %s/%s is not in the file", o.Type, o.ID, r.Name, r.Type, r.ID)
				}
			}
			refByName := func(o kibanaObject, name string) kibanaRef {
				for _, r := range o.References {
					if r.Name == name {
						return r
					}
				}
				t.Fatalf("%s/%s: no reference named %s", o.Type, o.ID, name)
				return kibanaRef{}
			}
			searchSource := func(o kibanaObject) map[string]any {
				meta, _ := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
				s, _ := meta["searchSourceJSON"].(string)
				require.NotEmpty(t, s, "%s/%s: kibanaSavedObjectMeta.searchSourceJSON", o.Type, o.ID)
				var ss map[string]any
				require.NoError(t, json.Unmarshal([]byte(s), &ss), "%s/%s: searchSourceJSON", o.Type, o.ID)
				return ss
			}

			var dataViews, dashboards int
			for _, o := range order {
				who := o.Type + "/" + o.ID
				switch o.Type {
				case "index-pattern":
					dataViews++
					require.Equal(t, search.DetectionsPattern(search.DefaultDetectionsPrefix), o.Attributes["title"], "the data view is the detections pattern")
					require.Equal(t, tmpl.IndexPatterns, []string{o.Attributes["title"].(string)}, "the data view is what the template covers")
					require.Equal(t, "@timestamp", o.Attributes["timeFieldName"])
					useField(t, who, "@timestamp", "date")

				case "visualization", "search":
					ss := searchSource(o)
					ref := refByName(o, ss["indexRefName"].(string))
					require.Equal(t, "index-pattern", ref.Type, "%s: its index", who)
					require.Equal(t, search.DetectionsPattern(search.DefaultDetectionsPrefix), objs["index-pattern/"+ref.ID].Attributes["title"])
					require.Nil(t, ss["index"], "%s: index ids are references (indexRefName), not inline", who)
					if o.Type == "search" {
						cols, _ := o.Attributes["columns"].([]any)
						require.NotEmpty(t, cols, "%s: columns", who)
						for _, c := range cols {
							useField(t, who, c.(string))
						}
						sorts, _ := o.Attributes["sort"].([]any)
						require.NotEmpty(t, sorts, "%s: sort", who)
						for _, s := range sorts {
							pair := s.([]any)
							require.Len(t, pair, 2)
							useField(t, who, pair[0].(string), "date", "keyword", "ip", "long")
							require.Contains(t, []string{"asc", "desc"}, pair[1])
						}
						continue
					}
					var vs struct {
						Title  string         `json:"title"`
						Type   string         `json:"type"`
						Params map[string]any `json:"params"`
						Aggs   []struct {
							ID      string         `json:"id"`
							Enabled bool           `json:"enabled"`
							Type    string         `json:"type"`
							Schema  string         `json:"schema"`
							Params  map[string]any `json:"params"`
						} `json:"aggs"`
					}
					require.NoError(t, json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vs), "%s: visState", who)
					require.Equal(t, o.Attributes["title"], vs.Title, "%s: visState.title", who)
					require.Contains(t, []string{"histogram", "line", "area", "table", "pie", "metric"}, vs.Type, "%s: a legacy aggregation-based type", who)
					require.NotEmpty(t, vs.Aggs, who)
					aggIDs := map[string]bool{}
					metrics := 0
					for _, a := range vs.Aggs {
						require.False(t, aggIDs[a.ID], "%s: agg id %s twice", who, a.ID)
						aggIDs[a.ID] = true
						require.True(t, a.Enabled)
						field, _ := a.Params["field"].(string)
						switch a.Type {
						case "count":
							require.Empty(t, field)
						case "date_histogram":
							useField(t, who, field, "date")
						case "terms":
							useField(t, who, field, "keyword", "ip", "long")
							require.True(t, aggIDs[a.Params["orderBy"].(string)] || a.Params["orderBy"] == "_key", "%s: terms %s ordered by a metric defined before it", who, field)
						case "cardinality":
							useField(t, who, field, "keyword", "ip", "long", "date")
						default:
							t.Fatalf("%s: aggregation %s not checked here", who, a.Type)
						}
						if a.Schema == "metric" {
							metrics++
						} else {
							require.Contains(t, []string{"segment", "group", "bucket", "split"}, a.Schema, "%s", who)
						}
					}
					require.Positive(t, metrics, "%s: a metric", who)

				case "dashboard":
					dashboards++
					require.Equal(t, "Sessions to known bad actors", o.Attributes["title"])
					var panels []struct {
						Type         string         `json:"type"`
						PanelIndex   string         `json:"panelIndex"`
						PanelRefName string         `json:"panelRefName"`
						ID           string         `json:"id"`
						GridData     map[string]any `json:"gridData"`
					}
					require.NoError(t, json.Unmarshal([]byte(o.Attributes["panelsJSON"].(string)), &panels))
					var opts map[string]any
					require.NoError(t, json.Unmarshal([]byte(o.Attributes["optionsJSON"].(string)), &opts))
					searchSource(o)
					used := map[string]bool{}
					kinds := map[string]int{}
					indices := map[string]bool{}
					for _, p := range panels {
						require.NotEmpty(t, p.PanelRefName, "%s: panel %s without panelRefName", who, p.PanelIndex)
						require.Empty(t, p.ID, "%s: panel ids are references (panelRefName), not inline", who)
						r := refByName(o, p.PanelRefName)
						require.Equal(t, r.Type, p.Type, "%s: panel %s type", who, p.PanelIndex)
						used[p.PanelRefName] = true
						kinds[p.Type]++
						require.False(t, indices[p.PanelIndex], "%s: panelIndex %s twice", who, p.PanelIndex)
						indices[p.PanelIndex] = true
						require.Equal(t, p.PanelIndex, p.GridData["i"], "%s: gridData.i", who)
						x, w := p.GridData["x"].(float64), p.GridData["w"].(float64)
						require.LessOrEqual(t, x+w, 48.0, "%s: panel %s inside the 48-column grid", who, p.PanelIndex)
						require.Positive(t, p.GridData["h"].(float64))
					}
					for _, r := range o.References {
						require.True(t, used[r.Name], "%s: reference %s used by no panel", who, r.Name)
					}
					require.Equal(t, map[string]int{"visualization": 3, "search": 1}, kinds,
						"count over time, top instances, top bad IPs, latest sessions")
				}
			}
			require.Equal(t, 1, dataViews)
			require.Equal(t, 1, dashboards)
		})
	}
}
