package sns

import (
	"encoding/json"
	"net/netip"
	"strings"
	"time"
)

// GuardDuty finding, the fields Cordon reads. encoding/json matches names
// case-insensitively, so the PascalCase form (boto3 / CLI get-findings) decodes
// too. Numbers whose type varies between shapes (asn, launchTime) are not read.
type gdFinding struct {
	AccountID string  `json:"accountId"`
	Region    string  `json:"region"`
	ID        string  `json:"id"`
	Arn       string  `json:"arn"`
	Type      string  `json:"type"`
	Severity  float64 `json:"severity"`
	Title     string  `json:"title"`
	CreatedAt string  `json:"createdAt"`
	UpdatedAt string  `json:"updatedAt"`
	Resource  struct {
		ResourceType    string `json:"resourceType"`
		InstanceDetails *struct {
			InstanceID        string `json:"instanceId"`
			NetworkInterfaces []struct {
				PrivateIPAddress string `json:"privateIpAddress"`
				PrivateDNSName   string `json:"privateDnsName"`
			} `json:"networkInterfaces"`
		} `json:"instanceDetails"`
	} `json:"resource"`
	Service *struct {
		Action *struct {
			ActionType              string `json:"actionType"`
			NetworkConnectionAction *struct {
				ConnectionDirection string           `json:"connectionDirection"`
				RemoteIPDetails     gdIPDetails      `json:"remoteIpDetails"`
				LocalIPDetails      gdIPDetails      `json:"localIpDetails"`
				RemotePortDetails   gdPort           `json:"remotePortDetails"`
				LocalPortDetails    gdPort           `json:"localPortDetails"`
				Protocol            string           `json:"protocol"`
				Blocked             *json.RawMessage `json:"blocked"`
			} `json:"networkConnectionAction"`
			PortProbeAction *struct {
				PortProbeDetails []struct {
					LocalPortDetails gdPort      `json:"localPortDetails"`
					LocalIPDetails   gdIPDetails `json:"localIpDetails"`
					RemoteIPDetails  gdIPDetails `json:"remoteIpDetails"`
				} `json:"portProbeDetails"`
			} `json:"portProbeAction"`
			DNSRequestAction *struct {
				Domain   string `json:"domain"`
				Protocol string `json:"protocol"`
			} `json:"dnsRequestAction"`
			AwsAPICallAction *struct {
				API             string      `json:"api"`
				RemoteIPDetails gdIPDetails `json:"remoteIpDetails"`
			} `json:"awsApiCallAction"`
		} `json:"action"`
		AdditionalInfo struct {
			Sample *bool `json:"sample"`
		} `json:"additionalInfo"`
		EventFirstSeen string      `json:"eventFirstSeen"`
		EventLastSeen  string      `json:"eventLastSeen"`
		Count          json.Number `json:"count"`
	} `json:"service"`
}

type gdIPDetails struct {
	IPAddressV4 string `json:"ipAddressV4"`
	IPAddressV6 string `json:"ipAddressV6"`
}

func (d gdIPDetails) addr() netip.Addr {
	if a := parseAddr(d.IPAddressV4); a.IsValid() {
		return a
	}
	return parseAddr(d.IPAddressV6)
}

type gdPort struct {
	Port int `json:"port"`
}

// ParseGuardDuty parses a GuardDuty finding in any shape the corpus shows:
// the EventBridge event ("detail-type": "GuardDuty Finding", camelCase
// detail), a partial test envelope with only region and detail, or the bare
// API-format finding. The instance comes from the finding's resource; the
// remote address from the network-connection, port-probe or AWS-API-call
// action (a DNS action names a domain and no address; a finding without a
// remote address is still an alert about its instance). Other EventBridge
// events from aws.guardduty (e.g. "AWS API Call via CloudTrail") and findings
// about resources other than EC2 instances are not understood.
func ParseGuardDuty(body string) ([]Alert, error) {
	var env struct {
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Region     string          `json:"region"`
		Time       string          `json:"time"`
		ID         string          `json:"id"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return nil, notUnderstood(FormatGuardDuty, "not a JSON object: %v", err)
	}
	raw := json.RawMessage(body)
	if env.Detail != nil {
		if env.DetailType != "" && env.DetailType != "GuardDuty Finding" {
			return nil, notUnderstood(FormatGuardDuty, "EventBridge event %q from %s is not a GuardDuty finding", clean(env.DetailType, 80), clean(env.Source, 80))
		}
		if env.Source != "" && env.Source != "aws.guardduty" {
			return nil, notUnderstood(FormatGuardDuty, "EventBridge event from %s, not aws.guardduty", clean(env.Source, 80))
		}
		raw = env.Detail
	}
	var f gdFinding
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, notUnderstood(FormatGuardDuty, "the finding does not decode: %v", err)
	}
	if f.Type == "" || f.Service == nil {
		return nil, notUnderstood(FormatGuardDuty, "no finding type or service block")
	}
	a := Alert{
		Format: FormatGuardDuty, Source: "guardduty",
		Rule: clean(f.Type, 200), Severity: f.Severity,
		Account: firstNonEmpty(f.AccountID, env.Account), Region: firstNonEmpty(f.Region, env.Region),
		Ref: clean(firstNonEmpty(f.Arn, f.ID), 300), Raw: truncRaw(body),
	}
	if f.Service.AdditionalInfo.Sample != nil && *f.Service.AdditionalInfo.Sample {
		a.Sample = true
	}
	for _, ts := range []string{f.Service.EventLastSeen, f.Service.EventFirstSeen, f.UpdatedAt, f.CreatedAt, env.Time} {
		if t := parseTime(ts); !t.IsZero() {
			a.Time = t
			break
		}
	}
	id := f.Resource.InstanceDetails
	if !strings.EqualFold(f.Resource.ResourceType, "Instance") || id == nil || id.InstanceID == "" {
		return nil, notUnderstood(FormatGuardDuty, "finding %s is about resource type %q, not an EC2 instance", a.Rule, clean(f.Resource.ResourceType, 40))
	}
	a.InstanceID = clean(id.InstanceID, 40)
	for _, ni := range id.NetworkInterfaces {
		if x := parseAddr(ni.PrivateIPAddress); x.IsValid() && !x.IsUnspecified() && !a.SourceIP.IsValid() {
			a.SourceIP = x
		}
	}
	// GuardDuty's verdict is about the instance: a finding without a remote
	// address (a DNS finding, a placeholder 0.0.0.0) still opens an incident.
	act := f.Service.Action
	if act == nil {
		return []Alert{a}, nil
	}
	var dir string
	switch {
	case act.NetworkConnectionAction != nil:
		n := act.NetworkConnectionAction
		a.BadIP = n.RemoteIPDetails.addr()
		a.Port = n.RemotePortDetails.Port
		dir = strings.ToLower(n.ConnectionDirection)
		if l := n.LocalIPDetails.addr(); l.IsValid() && !l.IsUnspecified() {
			a.SourceIP = l
		}
	case act.PortProbeAction != nil && len(act.PortProbeAction.PortProbeDetails) > 0:
		p := act.PortProbeAction.PortProbeDetails[0]
		a.BadIP = p.RemoteIPDetails.addr()
		dir = "port-probe"
		a.Port = p.LocalPortDetails.Port
		if l := p.LocalIPDetails.addr(); l.IsValid() {
			a.SourceIP = l
		}
	case act.DNSRequestAction != nil:
		a.Domain = clean(act.DNSRequestAction.Domain, 253)
	case act.AwsAPICallAction != nil:
		a.BadIP = act.AwsAPICallAction.RemoteIPDetails.addr()
	}
	if a.BadIP.IsUnspecified() {
		a.BadIP = netip.Addr{} // 0.0.0.0: a placeholder in generated findings
	}
	a.Direction = dir
	return []Alert{a}, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x = strings.TrimSpace(x); x != "" {
			return x
		}
	}
	return ""
}

// DetectionKind marks Cordon's own detection JSON.
const DetectionKind = "cordon.detection"

// Detection is Cordon's own alert format, for any tool that can publish JSON
// to the topic (Cordon's detector, a Lambda, an ElastAlert rule with
// alert_text_type: alert_text_jinja, a SIEM):
//
//	{"kind":"cordon.detection","instanceID":"i-0123456789abcdef0",
//	 "account":"123456789012","region":"us-east-1","badIP":"203.0.113.66",
//	 "rule":"spamhaus-drop","time":"2026-12-03T16:12:09Z"}
//
// badIP is required; so is one of instanceID, sourceIP (the instance's
// private address) or host (its host name), the latter two resolved to an
// instance by the handler's Resolver. kind is optional.
type Detection struct {
	Kind       string    `json:"kind,omitempty"`
	InstanceID string    `json:"instanceID,omitempty"`
	Account    string    `json:"account,omitempty"`
	Region     string    `json:"region,omitempty"`
	BadIP      string    `json:"badIP"`
	Port       int       `json:"port,omitempty"`
	Domain     string    `json:"domain,omitempty"`
	SourceIP   string    `json:"sourceIP,omitempty"`
	Host       string    `json:"host,omitempty"`
	Rule       string    `json:"rule,omitempty"`
	Time       time.Time `json:"time,omitzero"`
	// Source names the emitter ("detector", "elastalert", …); default "cordon".
	Source string `json:"source,omitempty"`
	Ref    string `json:"ref,omitempty"`
}

// ParseDetection parses Cordon's detection JSON (see Detection).
func ParseDetection(body string) ([]Alert, error) {
	var d Detection
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&d); err != nil {
		return nil, notUnderstood(FormatDetection, "does not decode: %v", err)
	}
	if d.Kind != "" && d.Kind != DetectionKind {
		return nil, notUnderstood(FormatDetection, "kind %q is not %q", clean(d.Kind, 40), DetectionKind)
	}
	a := Alert{
		Format: FormatDetection, Source: "cordon",
		InstanceID: clean(d.InstanceID, 40), Account: clean(d.Account, 20), Region: clean(d.Region, 30),
		Host: clean(d.Host, 253), Rule: clean(d.Rule, 200), Time: d.Time.UTC(), Ref: clean(d.Ref, 300),
		Domain: clean(d.Domain, 253), Raw: truncRaw(body),
	}
	if d.Time.IsZero() {
		a.Time = time.Time{}
	}
	if src := clean(d.Source, 40); src != "" && validSourceName(src) {
		a.Source = src
	}
	if a.Rule == "" {
		a.Rule = "detection"
	}
	if d.Port > 0 && d.Port < 65536 {
		a.Port = d.Port
	}
	a.BadIP = parseAddr(d.BadIP)
	if !a.BadIP.IsValid() {
		return nil, notUnderstood(FormatDetection, "badIP %q is not an IP address", clean(d.BadIP, 60))
	}
	if d.SourceIP != "" {
		a.SourceIP = parseAddr(d.SourceIP)
		if !a.SourceIP.IsValid() {
			return nil, notUnderstood(FormatDetection, "sourceIP %q is not an IP address", clean(d.SourceIP, 60))
		}
	}
	if err := a.check(FormatDetection); err != nil {
		return nil, err
	}
	return []Alert{a}, nil
}

func validSourceName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
