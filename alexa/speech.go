package alexa

import (
	"fmt"
	"strings"
	"time"

	"github.com/cordonhq/cordon/workflows"
)

// speech builds the same words twice: SSML for Alexa and plain text for
// cards, logs and tests.
type speech struct {
	ssml, text strings.Builder
}

var ssmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// say appends a sentence fragment.
func (s *speech) say(format string, a ...any) *speech {
	t := fmt.Sprintf(format, a...)
	s.text.WriteString(t)
	s.ssml.WriteString(ssmlEscaper.Replace(t))
	return s
}

// chars appends a string spelled character by character.
func (s *speech) chars(v string) *speech {
	s.text.WriteString(v)
	s.ssml.WriteString(`<say-as interpret-as="characters">` + ssmlEscaper.Replace(v) + `</say-as>`)
	return s
}

// instance appends "instance ending 27eb" (the last four characters, spelled).
func (s *speech) instance(id string) *speech {
	if id == "" {
		return s.say("an unknown instance")
	}
	tail := id
	if len(tail) > 4 {
		tail = tail[len(tail)-4:]
	}
	s.say("instance ending ")
	return s.chars(tail)
}

// account appends "account ending 9012" (the last four digits, spelled).
func (s *speech) account(id string) *speech {
	tail := id
	if len(tail) > 4 {
		tail = tail[len(tail)-4:]
	}
	s.say("account ending ")
	return s.chars(tail)
}

// ip appends an address read as "1 dot 19 dot 6 dot 4" (IPv6: spelled).
func (s *speech) ip(addr string) *speech {
	if strings.Contains(addr, ":") {
		return s.chars(addr)
	}
	s.text.WriteString(addr)
	s.ssml.WriteString(ssmlEscaper.Replace(strings.ReplaceAll(addr, ".", " dot ")))
	return s
}

func (s *speech) pause() *speech {
	s.ssml.WriteString(`<break time="300ms"/>`)
	return s
}

func (s *speech) output() *OutputSpeech { return SSML(s.ssml.String()) }

func (s *speech) String() string { return s.text.String() }

// phaseWords says where an incident is, completing "it is …".
func phaseWords(p workflows.Phase) string {
	switch p {
	case workflows.PhaseOpened:
		return "just opened"
	case workflows.PhasePreflight:
		return "being checked"
	case workflows.PhaseQueued:
		return "queued until its group can spare it"
	case workflows.PhaseIsolating:
		return "being isolated"
	case workflows.PhaseAwaitingApproval:
		return "waiting for your approval"
	case workflows.PhaseImaging:
		return "being imaged"
	case workflows.PhaseRelaunching:
		return "launching its quarantine copy"
	case workflows.PhaseTerminating:
		return "terminating the original"
	case workflows.PhaseHealing:
		return "waiting for its group to heal"
	case workflows.PhaseCleaningUp:
		return "cleaning up"
	case workflows.PhaseReleasing:
		return "being released"
	case workflows.PhaseResolved:
		return "resolved"
	case workflows.PhaseReleased:
		return "released"
	case workflows.PhaseNeedsAttention:
		return "in need of attention"
	case workflows.PhaseSkipped:
		return "skipped"
	case "":
		return "starting"
	}
	return strings.ReplaceAll(string(p), "-", " ")
}

// phaseName is a phase as a short spoken noun ("awaiting approval").
func phaseName(p string) string { return strings.ReplaceAll(p, "-", " ") }

// ago says how long ago t was, roughly.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "less than a minute ago"
	case d < 2*time.Minute:
		return "a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d/time.Minute))
	case d < 2*time.Hour:
		return "an hour ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
