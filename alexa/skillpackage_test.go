package alexa

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The interaction-model structure documented in alexa/README.md
// ("Interaction-model schema checked by the tests").

type ilModel struct {
	InteractionModel struct {
		LanguageModel struct {
			InvocationName     string     `json:"invocationName"`
			Intents            []ilIntent `json:"intents"`
			Types              []ilType   `json:"types"`
			ModelConfiguration *struct {
				FallbackIntentSensitivity struct {
					Level string `json:"level"`
				} `json:"fallbackIntentSensitivity"`
			} `json:"modelConfiguration,omitempty"`
		} `json:"languageModel"`
		Dialog *struct {
			DelegationStrategy string           `json:"delegationStrategy,omitempty"`
			Intents            []ilDialogIntent `json:"intents"`
		} `json:"dialog,omitempty"`
		Prompts []ilPrompt `json:"prompts,omitempty"`
	} `json:"interactionModel"`
}

type ilIntent struct {
	Name    string   `json:"name"`
	Slots   []ilSlot `json:"slots,omitempty"`
	Samples []string `json:"samples"`
}

type ilSlot struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Samples []string `json:"samples,omitempty"`
}

type ilType struct {
	Name   string `json:"name"`
	Values []struct {
		ID   string `json:"id,omitempty"`
		Name struct {
			Value    string   `json:"value"`
			Synonyms []string `json:"synonyms,omitempty"`
		} `json:"name"`
	} `json:"values"`
}

type ilDialogIntent struct {
	Name                 string            `json:"name"`
	DelegationStrategy   string            `json:"delegationStrategy,omitempty"`
	ConfirmationRequired bool              `json:"confirmationRequired"`
	Prompts              map[string]string `json:"prompts"`
	Slots                []struct {
		Name                 string            `json:"name"`
		Type                 string            `json:"type"`
		ConfirmationRequired bool              `json:"confirmationRequired"`
		ElicitationRequired  bool              `json:"elicitationRequired"`
		Prompts              map[string]string `json:"prompts"`
		Validations          []struct {
			Type   string   `json:"type"`
			Prompt string   `json:"prompt"`
			Value  string   `json:"value,omitempty"`
			Values []string `json:"values,omitempty"`
		} `json:"validations,omitempty"`
	} `json:"slots"`
}

type ilPrompt struct {
	ID         string `json:"id"`
	Variations []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"variations"`
}

// decodeStrict rejects unknown fields: a misspelt key is a schema error.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

var (
	wakeWords       = []string{"alexa", "amazon", "echo", "computer"}
	launchWords     = []string{"ask", "tell", "open", "launch", "start", "begin", "load", "run", "enable", "play", "resume", "use"}
	shortNameWords  = []string{"the", "a", "an", "for", "to", "of"}
	invocationChars = regexp.MustCompile(`^[a-z' .]+$`)
	intentName      = regexp.MustCompile(`^[A-Za-z_]+$`)
	builtinName     = regexp.MustCompile(`^AMAZON\.[A-Za-z]+$`)
	slotName        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sampleChars     = regexp.MustCompile(`^[A-Za-z' .{}_]+$`)
	slotRef         = regexp.MustCompile(`\{([^{}]*)\}`)
	quotedSlotRef   = regexp.MustCompile(`\\\{[A-Za-z0-9_]*\\\}`) // {slot} after regexp.QuoteMeta
)

// validateModel returns every problem of an interaction model.
func validateModel(m *ilModel) []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	lm := m.InteractionModel.LanguageModel

	inv := lm.InvocationName
	words := strings.Fields(inv)
	switch {
	case !invocationChars.MatchString(inv):
		bad("invocation name %q: only lower-case letters, spaces, apostrophes and periods", inv)
	case len(words) < 2:
		bad("invocation name %q: two or more words", inv)
	}
	for _, w := range words {
		if slices.Contains(wakeWords, w) || slices.Contains(launchWords, w) {
			bad("invocation name %q: contains the wake or launch word %q", inv, w)
		}
		if len(words) == 2 && slices.Contains(shortNameWords, w) {
			bad("invocation name %q: a two-word name cannot contain %q", inv, w)
		}
	}

	types := map[string]bool{}
	for _, t := range lm.Types {
		// AMAZON.* names extend a built-in list type with values (petmatch's AMAZON.Animal).
		if types[t.Name] || !(slotName.MatchString(t.Name) || builtinName.MatchString(t.Name)) {
			bad("slot type %q: duplicate or invalid name", t.Name)
		}
		types[t.Name] = true
		if len(t.Values) == 0 {
			bad("slot type %q: no values", t.Name)
		}
		for _, v := range t.Values {
			if strings.TrimSpace(v.Name.Value) == "" {
				bad("slot type %q: a value without a name", t.Name)
			}
		}
	}

	intents := map[string]ilIntent{}
	samples := map[string]string{}
	// sample checks one sample; seen is the set it must be unique in (the
	// whole model for intent samples, the slot for slot samples).
	sample := func(owner, s string, slots map[string]string, seen map[string]string) map[string]bool {
		used := map[string]bool{}
		if !sampleChars.MatchString(s) {
			bad("%s: sample %q: only letters, spaces, apostrophes, periods and {slot}", owner, s)
		}
		if strings.Count(s, "{") != strings.Count(s, "}") || strings.Count(s, "{") != len(slotRef.FindAllString(s, -1)) {
			bad("%s: sample %q: unbalanced braces", owner, s)
		}
		for _, ref := range slotRef.FindAllStringSubmatch(s, -1) {
			if _, ok := slots[ref[1]]; !ok {
				bad("%s: sample %q: slot {%s} is not declared", owner, s, ref[1])
			}
			used[ref[1]] = true
		}
		key := strings.Join(strings.Fields(strings.ToLower(s)), " ")
		if prev, ok := seen[key]; ok && prev != owner {
			bad("%s: sample %q is also a sample of %s", owner, s, prev)
		} else if ok {
			bad("%s: sample %q twice", owner, s)
		}
		seen[key] = owner
		return used
	}
	for _, in := range lm.Intents {
		if _, dup := intents[in.Name]; dup {
			bad("intent %q declared twice", in.Name)
		}
		intents[in.Name] = in
		builtin := strings.HasPrefix(in.Name, "AMAZON.")
		if (builtin && !builtinName.MatchString(in.Name)) || (!builtin && !intentName.MatchString(in.Name)) {
			bad("intent %q: invalid name", in.Name)
		}
		if !builtin && len(in.Samples) == 0 {
			bad("intent %s: no samples", in.Name)
		}
		if in.Name == "AMAZON.FallbackIntent" && len(in.Samples) > 0 {
			bad("AMAZON.FallbackIntent cannot have samples")
		}
		slots := map[string]string{}
		for _, s := range in.Slots {
			if _, dup := slots[s.Name]; dup || !slotName.MatchString(s.Name) {
				bad("intent %s: slot %q duplicate or invalid", in.Name, s.Name)
			}
			slots[s.Name] = s.Type
			if !strings.HasPrefix(s.Type, "AMAZON.") && !types[s.Type] {
				bad("intent %s: slot %s has undeclared type %q", in.Name, s.Name, s.Type)
			}
		}
		used := map[string]bool{}
		for _, s := range in.Samples {
			for k := range sample(in.Name, s, slots, samples) {
				used[k] = true
			}
		}
		for _, s := range in.Slots {
			slotSamples := map[string]string{}
			for _, ss := range s.Samples {
				sample(in.Name+"."+s.Name, ss, slots, slotSamples)
			}
			if !used[s.Name] {
				bad("intent %s: slot %s is used by no sample", in.Name, s.Name)
			}
		}
	}
	if mc := lm.ModelConfiguration; mc != nil && !slices.Contains([]string{"LOW", "MEDIUM", "HIGH"}, mc.FallbackIntentSensitivity.Level) {
		bad("fallbackIntentSensitivity %q: LOW, MEDIUM or HIGH", mc.FallbackIntentSensitivity.Level)
	}

	prompts := map[string]ilPrompt{}
	for _, pr := range m.InteractionModel.Prompts {
		if _, dup := prompts[pr.ID]; dup || pr.ID == "" {
			bad("prompt %q: duplicate or empty ID", pr.ID)
		}
		prompts[pr.ID] = pr
		if len(pr.Variations) == 0 {
			bad("prompt %s: no variations", pr.ID)
		}
		for _, v := range pr.Variations {
			if (v.Type != "PlainText" && v.Type != "SSML") || strings.TrimSpace(v.Value) == "" {
				bad("prompt %s: variation %+v: PlainText or SSML with a value", pr.ID, v)
			}
		}
	}
	referenced := map[string]map[string]string{} // prompt ID → slots of the intent using it
	ref := func(owner, id string, slots map[string]string) {
		if id == "" {
			return
		}
		if _, ok := prompts[id]; !ok {
			bad("%s: prompt %q does not exist", owner, id)
		}
		referenced[id] = slots
	}
	if d := m.InteractionModel.Dialog; d != nil {
		ds := []string{"", "ALWAYS", "SKILL_RESPONSE"}
		if !slices.Contains(ds, d.DelegationStrategy) {
			bad("dialog delegationStrategy %q", d.DelegationStrategy)
		}
		for _, di := range d.Intents {
			in, ok := intents[di.Name]
			if !ok {
				bad("dialog intent %s is not in the language model", di.Name)
				continue
			}
			if !slices.Contains(ds, di.DelegationStrategy) {
				bad("dialog intent %s: delegationStrategy %q", di.Name, di.DelegationStrategy)
			}
			slots := map[string]string{}
			lmSlots := map[string]ilSlot{}
			for _, s := range in.Slots {
				slots[s.Name] = s.Type
				lmSlots[s.Name] = s
			}
			if di.ConfirmationRequired && di.Prompts["confirmation"] == "" {
				bad("dialog intent %s: confirmationRequired without a confirmation prompt", di.Name)
			}
			for _, id := range di.Prompts {
				ref("dialog intent "+di.Name, id, slots)
			}
			for _, s := range di.Slots {
				owner := "dialog slot " + di.Name + "." + s.Name
				ls, ok := lmSlots[s.Name]
				if !ok || ls.Type != s.Type {
					bad("%s: not a slot of type %q in the language model", owner, s.Type)
				}
				if s.ElicitationRequired && (s.Prompts["elicitation"] == "" || len(ls.Samples) == 0) {
					bad("%s: elicitationRequired needs an elicitation prompt and slot samples", owner)
				}
				if s.ConfirmationRequired && s.Prompts["confirmation"] == "" {
					bad("%s: confirmationRequired without a confirmation prompt", owner)
				}
				for _, id := range s.Prompts {
					ref(owner, id, slots)
				}
				for _, v := range s.Validations {
					if v.Type == "" || v.Prompt == "" {
						bad("%s: validation without type or prompt", owner)
					}
					ref(owner, v.Prompt, slots)
				}
			}
		}
	}
	for id, pr := range prompts {
		slots, ok := referenced[id]
		if !ok {
			bad("prompt %s is referenced by no dialog", id)
			continue
		}
		for _, v := range pr.Variations {
			for _, r := range slotRef.FindAllStringSubmatch(v.Value, -1) {
				if _, ok := slots[r[1]]; !ok {
					bad("prompt %s: {%s} is not a slot of its intent", id, r[1])
				}
			}
		}
	}
	sort.Strings(p)
	return p
}

type manifest struct {
	Manifest struct {
		ManifestVersion       string `json:"manifestVersion"`
		PublishingInformation struct {
			Locales map[string]struct {
				Name           string   `json:"name"`
				Summary        string   `json:"summary"`
				Description    string   `json:"description"`
				ExamplePhrases []string `json:"examplePhrases"`
				Keywords       []string `json:"keywords"`
			} `json:"locales"`
			IsAvailableWorldwide  bool     `json:"isAvailableWorldwide"`
			DistributionCountries []string `json:"distributionCountries"`
			TestingInstructions   string   `json:"testingInstructions"`
			Category              string   `json:"category"`
		} `json:"publishingInformation"`
		APIs struct {
			Custom struct {
				Endpoint struct {
					URI                string `json:"uri"`
					SSLCertificateType string `json:"sslCertificateType,omitempty"`
				} `json:"endpoint"`
				Interfaces []any `json:"interfaces"`
			} `json:"custom"`
		} `json:"apis"`
		PrivacyAndCompliance *map[string]any `json:"privacyAndCompliance"`
	} `json:"manifest"`
}

// matchSample reports whether an utterance matches an intent's sample
// ({slot} stands for one or more words).
func matchSample(in ilIntent, utterance string) bool {
	u := strings.Join(strings.Fields(strings.ToLower(utterance)), " ")
	for _, s := range in.Samples {
		re := quotedSlotRef.ReplaceAllString(regexp.QuoteMeta(strings.ToLower(s)), `[a-z' ]+?`)
		if regexp.MustCompile("^" + re + "$").MatchString(u) {
			return true
		}
	}
	return false
}

var connectingWords = []string{"to", "for", "about", "whether", "if", "that", "and"}

func validateManifest(mf *manifest, m *ilModel) []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	man := mf.Manifest
	if man.ManifestVersion != "1.0" {
		bad("manifestVersion %q", man.ManifestVersion)
	}
	loc, ok := man.PublishingInformation.Locales["en-US"]
	if !ok || loc.Name == "" || loc.Summary == "" || loc.Description == "" {
		bad("en-US locale needs name, summary and description")
	}
	if n := len(loc.ExamplePhrases); n < 1 || n > 3 {
		bad("%d example phrases, want 1 to 3", n)
	}
	inv := m.InteractionModel.LanguageModel.InvocationName
	for _, ph := range loc.ExamplePhrases {
		rest, ok := strings.CutPrefix(ph, "Alexa, ")
		if !ok {
			bad("example %q does not start with \"Alexa, \"", ph)
			continue
		}
		if rest == "open "+inv {
			continue
		}
		rest, ok = strings.CutPrefix(rest, "ask "+inv+" ")
		if !ok {
			bad("example %q is neither \"Alexa, open %s\" nor \"Alexa, ask %s …\"", ph, inv, inv)
			continue
		}
		candidates := []string{rest}
		if w, after, ok := strings.Cut(rest, " "); ok && slices.Contains(connectingWords, w) {
			candidates = append(candidates, after)
		}
		found := false
		for _, in := range m.InteractionModel.LanguageModel.Intents {
			for _, c := range candidates {
				if matchSample(in, c) {
					found = true
				}
			}
		}
		if !found {
			bad("example %q: %q matches no sample", ph, rest)
		}
	}
	ep := man.APIs.Custom.Endpoint
	switch {
	case strings.HasPrefix(ep.URI, "https://"):
		if !slices.Contains([]string{"SelfSigned", "Wildcard", "Trusted"}, ep.SSLCertificateType) {
			bad("HTTPS endpoint needs sslCertificateType SelfSigned, Wildcard or Trusted, not %q", ep.SSLCertificateType)
		}
	case strings.HasPrefix(ep.URI, "arn:aws:lambda:"):
		if ep.SSLCertificateType != "" {
			bad("a Lambda endpoint has no sslCertificateType")
		}
	default:
		bad("endpoint %q is neither https:// nor a Lambda ARN", ep.URI)
	}
	if man.PrivacyAndCompliance == nil {
		bad("no privacyAndCompliance")
	}
	if !man.PublishingInformation.IsAvailableWorldwide && len(man.PublishingInformation.DistributionCountries) == 0 {
		bad("not available worldwide and no distributionCountries")
	}
	return p
}

func loadModel(t *testing.T, path string) *ilModel {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m ilModel
	if err := decodeStrict(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &m
}

const (
	modelPath    = "skill-package/interactionModels/custom/en-US.json"
	manifestPath = "skill-package/skill.json"
)

func TestSkillPackage(t *testing.T) {
	m := loadModel(t, modelPath)
	if p := validateModel(m); len(p) > 0 {
		t.Fatalf("interaction model:\n%s", strings.Join(p, "\n"))
	}
	var declared []string
	for _, in := range m.InteractionModel.LanguageModel.Intents {
		declared = append(declared, in.Name)
		for _, s := range in.Slots {
			if s.Name == SlotIncident && s.Type != "AMAZON.NUMBER" {
				t.Errorf("%s: incident slot is %s, want AMAZON.NUMBER", in.Name, s.Type)
			}
		}
		if slices.Contains([]string{IntentDetails, IntentApprove, IntentReject, IntentRelease}, in.Name) &&
			(len(in.Slots) != 1 || in.Slots[0].Name != SlotIncident) {
			t.Errorf("%s: want the one slot %q", in.Name, SlotIncident)
		}
		if in.Name == IntentResetBreaker && (len(in.Slots) != 1 || in.Slots[0].Name != SlotGroup || in.Slots[0].Type != "AMAZON.NUMBER") {
			t.Errorf("%s: want the one AMAZON.NUMBER slot %q", in.Name, SlotGroup)
		}
	}
	want := slices.Clone(Intents)
	slices.Sort(want)
	slices.Sort(declared)
	if !slices.Equal(want, declared) {
		t.Fatalf("model declares %v, the handler knows %v", declared, want)
	}

	b, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var mf manifest
	if err := decodeStrict(b, &mf); err != nil {
		t.Fatal(err)
	}
	if p := validateManifest(&mf, m); len(p) > 0 {
		t.Fatalf("skill.json:\n%s", strings.Join(p, "\n"))
	}
}

// TestReadmeTableMatchesModel: every quoted phrase of the README's "What to
// say" table is a sample of the intent in the same row.
func TestReadmeTableMatchesModel(t *testing.T) {
	m := loadModel(t, modelPath)
	intents := map[string]ilIntent{}
	for _, in := range m.InteractionModel.LanguageModel.Intents {
		intents[in.Name] = in
	}
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| you say | intent | Cordon does |")
	if !ok {
		t.Fatal("README has no what-to-say table")
	}
	quoted := regexp.MustCompile(`"([^"]+)"`)
	names := regexp.MustCompile("`([A-Za-z.]+)`")
	rows := 0
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cols := strings.Split(line, "|")
		phrases := quoted.FindAllStringSubmatch(cols[1], -1)
		var named []string
		for _, n := range names.FindAllStringSubmatch(cols[2], -1) {
			named = append(named, n[1])
		}
		if strings.TrimSpace(cols[2]) == "same" {
			named = []string{IntentApprove, IntentReject, IntentRelease}
		}
		for _, ph := range phrases {
			rows++
			ok := false
			for _, n := range named {
				in, found := intents[n]
				if !found {
					t.Errorf("README names %s, not in the model", n)
				}
				if strings.HasPrefix(n, "AMAZON.") || matchSample(in, ph[1]) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("README: %q is no sample of %v", ph[1], named)
			}
		}
	}
	if rows < 10 {
		t.Fatalf("only %d phrases checked", rows)
	}
}

// TestValidatorOnAmazonSamples: the validator accepts Amazon's own sample
// models (corpus) and catches each kind of mistake.
func TestValidatorOnAmazonSamples(t *testing.T) {
	for _, f := range []string{"hello-world_en-US.json", "petmatch_en-US.json"} {
		m := loadModel(t, filepath.Join(corpusDir, "interaction-models", f))
		if p := validateModel(m); len(p) > 0 {
			t.Errorf("%s:\n%s", f, strings.Join(p, "\n"))
		}
	}
}

func TestValidatorCatchesMistakes(t *testing.T) {
	mutations := map[string]func(m *ilModel){
		"invocation name \"Cordon Control\": only lower-case": func(m *ilModel) { m.InteractionModel.LanguageModel.InvocationName = "Cordon Control" },
		"two or more words":                          func(m *ilModel) { m.InteractionModel.LanguageModel.InvocationName = "cordon" },
		"contains the wake or launch word \"alexa\"": func(m *ilModel) { m.InteractionModel.LanguageModel.InvocationName = "alexa cordon" },
		"contains the wake or launch word \"ask\"":   func(m *ilModel) { m.InteractionModel.LanguageModel.InvocationName = "ask cordon now" },
		"a two-word name cannot contain \"the\"":     func(m *ilModel) { m.InteractionModel.LanguageModel.InvocationName = "the cordon" },
		"intent \"StatusIntent\" declared twice": func(m *ilModel) {
			lm := &m.InteractionModel.LanguageModel
			lm.Intents = append(lm.Intents, ilIntent{Name: IntentStatus, Samples: []string{"how goes it"}})
		},
		"slot {number} is not declared": func(m *ilModel) {
			in := &m.InteractionModel.LanguageModel.Intents[slices.IndexFunc(m.InteractionModel.LanguageModel.Intents, func(i ilIntent) bool { return i.Name == IntentApprove })]
			in.Samples = append(in.Samples, "approve {number}")
		},
		"has undeclared type \"IncidentNumber\"": func(m *ilModel) {
			in := &m.InteractionModel.LanguageModel.Intents[slices.IndexFunc(m.InteractionModel.LanguageModel.Intents, func(i ilIntent) bool { return i.Name == IntentReject })]
			in.Slots[0].Type = "IncidentNumber"
		},
		"only letters, spaces, apostrophes, periods": func(m *ilModel) {
			in := &m.InteractionModel.LanguageModel.Intents[slices.IndexFunc(m.InteractionModel.LanguageModel.Intents, func(i ilIntent) bool { return i.Name == IntentStatus })]
			in.Samples = append(in.Samples, "status of 2 incidents")
		},
		"is also a sample of StatusIntent": func(m *ilModel) {
			in := &m.InteractionModel.LanguageModel.Intents[slices.IndexFunc(m.InteractionModel.LanguageModel.Intents, func(i ilIntent) bool { return i.Name == IntentRelease })]
			in.Samples = append(in.Samples, "What's  happening")
		},
		"AMAZON.FallbackIntent cannot have samples": func(m *ilModel) {
			in := &m.InteractionModel.LanguageModel.Intents[slices.IndexFunc(m.InteractionModel.LanguageModel.Intents, func(i ilIntent) bool { return i.Name == IntentFallback })]
			in.Samples = []string{"blah blah"}
		},
		"prompt \"Elicit.Missing\" does not exist": func(m *ilModel) {
			m.InteractionModel.Dialog.Intents[0].Slots[0].Prompts["elicitation"] = "Elicit.Missing"
		},
		"is referenced by no dialog": func(m *ilModel) {
			m.InteractionModel.Prompts = append(m.InteractionModel.Prompts, ilPrompt{ID: "Orphan", Variations: m.InteractionModel.Prompts[0].Variations})
		},
		"dialog intent NoSuchIntent is not in the language model": func(m *ilModel) {
			m.InteractionModel.Dialog.Intents = append(m.InteractionModel.Dialog.Intents, ilDialogIntent{Name: "NoSuchIntent"})
		},
		"confirmationRequired without a confirmation prompt": func(m *ilModel) {
			m.InteractionModel.Dialog.Intents[0].ConfirmationRequired = true
		},
		"is used by no sample": func(m *ilModel) {
			in := &m.InteractionModel.LanguageModel.Intents[slices.IndexFunc(m.InteractionModel.LanguageModel.Intents, func(i ilIntent) bool { return i.Name == IntentStatus })]
			in.Slots = append(in.Slots, ilSlot{Name: "when", Type: "AMAZON.DATE"})
		},
		"fallbackIntentSensitivity \"SOMETIMES\"": func(m *ilModel) {
			m.InteractionModel.LanguageModel.ModelConfiguration.FallbackIntentSensitivity.Level = "SOMETIMES"
		},
	}
	for want, mutate := range mutations {
		m := loadModel(t, modelPath)
		mutate(m)
		p := validateModel(m)
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("mutation %q: problems %q", want, p)
		}
	}
	// A misspelt key is refused by the strict decoder.
	var m ilModel
	if err := decodeStrict([]byte(`{"interactionModel":{"languageModel":{"invocation_name":"x y"}}}`), &m); err == nil {
		t.Error("unknown field accepted")
	}

	model := loadModel(t, modelPath)
	for want, mutate := range map[string]func(*manifest){
		"matches no sample":        func(mf *manifest) { setPhrases(mf, "Alexa, ask cordon control to make coffee") },
		"neither \"Alexa, open":    func(mf *manifest) { setPhrases(mf, "Alexa, ask cordon what's happening") },
		"needs sslCertificateType": func(mf *manifest) { mf.Manifest.APIs.Custom.Endpoint.SSLCertificateType = "" },
		"neither https:// nor":     func(mf *manifest) { mf.Manifest.APIs.Custom.Endpoint.URI = "http://cordon.example.com/alexa" },
		"4 example phrases":        func(mf *manifest) { setPhrases(mf, "a", "b", "c", "d") },
		"has no sslCertificateType": func(mf *manifest) {
			mf.Manifest.APIs.Custom.Endpoint.URI = "arn:aws:lambda:us-east-1:111122223333:function:cordon-alexa"
		},
	} {
		b, _ := os.ReadFile(manifestPath)
		var mf manifest
		if err := decodeStrict(b, &mf); err != nil {
			t.Fatal(err)
		}
		mutate(&mf)
		if p := validateManifest(&mf, model); !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("manifest mutation %q: problems %q", want, p)
		}
	}
}

func setPhrases(mf *manifest, phrases ...string) {
	loc := mf.Manifest.PublishingInformation.Locales["en-US"]
	loc.ExamplePhrases = phrases
	mf.Manifest.PublishingInformation.Locales["en-US"] = loc
}
