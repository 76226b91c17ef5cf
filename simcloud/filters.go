package simcloud

import (
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// filterValues returns a resource's values for one filter name and whether
// the name is supported.
type filterValues func(name string) ([]string, bool)

// checkFilters rejects unsupported filter names, as EC2 does, before any
// resource is matched (so a typo fails even when nothing would match).
func checkFilters(filters []ec2types.Filter, supported map[string]bool) error {
	for _, f := range filters {
		name := deref(f.Name)
		if strings.HasPrefix(name, "tag:") && len(name) > 4 {
			continue
		}
		if !supported[name] {
			return apiErr("InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		if len(f.Values) == 0 {
			return apiErr("InvalidParameterValue", "The filter '%s' has no values", name)
		}
	}
	return nil
}

// matchFilters reports whether a resource matches every filter: for each
// filter, one of the resource's values matches one of the filter's values
// (which may use the * and ? wildcards, as on AWS).
func matchFilters(filters []ec2types.Filter, tags map[string]string, get filterValues) bool {
	for _, f := range filters {
		name := deref(f.Name)
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			if v, ok := tags[name[4:]]; ok {
				have = []string{v}
			}
		case name == "tag-key":
			have = sortedKeys(tags)
		case name == "tag-value":
			for _, k := range sortedKeys(tags) {
				have = append(have, tags[k])
			}
		default:
			have, _ = get(name)
		}
		if !anyMatch(f.Values, have) {
			return false
		}
	}
	return true
}

func anyMatch(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if glob(p, v) {
				return true
			}
		}
	}
	return false
}

// glob matches s against an EC2 filter pattern: * is any run of characters,
// ? is one character and \ escapes the next one.
func glob(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if glob(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		case '\\':
			if len(p) > 1 {
				p = p[1:]
			}
			fallthrough
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func tagList(tags map[string]string) []ec2types.Tag {
	if len(tags) == 0 {
		return nil
	}
	out := make([]ec2types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, ec2types.Tag{Key: ptr(k), Value: ptr(tags[k])})
	}
	return out
}
