package alexa

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/cordonhq/cordon/workflows"
)

// breakerRef is a tripped breaker with its spoken number.
type breakerRef struct {
	N                      int
	ID                     string // governor workflow ID
	Account, Region, Group string
	Recent                 int
	Window                 time.Duration
}

// breakerOf names the breaker of governor id by what its ID says.
func breakerOf(n int, id string) breakerRef {
	b := breakerRef{N: n, ID: id}
	if acct, region, group, err := ParseGovernorID(id); err == nil {
		b.Account, b.Region, b.Group = acct, region, group
	}
	if b.Group == workflows.AccountScope { // the account-wide governor
		b.Group, b.Region = "all groups", "all regions"
	}
	return b
}

// rememberBreakers numbers a freshly listed set of tripped breakers for
// the session.
func (t *turn) rememberBreakers(brs []Breaker) []breakerRef {
	t.st.Breakers = nil
	var out []breakerRef
	for i, b := range brs {
		t.st.Breakers = append(t.st.Breakers, b.ID)
		r := breakerOf(i+1, b.ID) // names from the ID, as for a session's numbers
		r.Recent, r.Window = b.Recent, b.Limits.BreakerWindow
		out = append(out, r)
	}
	return out
}

// breakers returns the session's tripped breakers, listing them first if
// the session has none yet. A listing that fails part-way is used for what
// it found.
func (t *turn) breakers() ([]breakerRef, error) {
	if len(t.st.Breakers) > 0 {
		out := make([]breakerRef, len(t.st.Breakers))
		for i, id := range t.st.Breakers {
			out[i] = breakerOf(i+1, id)
		}
		return out, nil
	}
	brs, err := t.s.Incidents.Breakers(t.ctx)
	if err != nil {
		if len(brs) == 0 {
			return nil, err
		}
		t.s.log().Warn("alexa: some breakers could not be read", "error", err.Error())
	}
	return t.rememberBreakers(brs), nil
}

// breakerNews lists the tripped breakers, numbers them for the session and
// says so first in the status answer (and on its card). complete is false
// when some could not be read.
func (t *turn) breakerNews(sp *speech, card *strings.Builder) (refs []breakerRef, complete bool) {
	brs, err := t.s.Incidents.Breakers(t.ctx)
	if err != nil {
		t.s.log().Warn("alexa: could not read the breakers", "error", err.Error())
		fmt.Fprintf(card, "Breakers: not all read (%s)\n", err)
	}
	refs = t.rememberBreakers(brs)
	max := t.s.MaxSpoken
	if max <= 0 {
		max = 5
	}
	switch {
	case len(refs) == 1:
		sp.say("The breaker of %s is tripped: new incidents wait for approval. ", refs[0].Group)
	case len(refs) > 1:
		sp.say("The breakers of %d groups are tripped: ", len(refs))
		for i, b := range refs {
			if i == max {
				sp.say("; and %d more", len(refs)-max)
				break
			}
			if i > 0 {
				sp.say("; ")
			}
			sp.say("%d, %s", b.N, b.Group)
		}
		sp.say(". New incidents in them wait for approval. ")
	}
	if err != nil {
		if len(refs) == 0 {
			sp.say("I couldn't check the groups' breakers just now. ")
		} else {
			sp.say("I couldn't check every group's breaker. ")
		}
	}
	if len(refs) > 0 || err != nil {
		sp.pause()
	}
	for _, b := range refs {
		fmt.Fprintf(card, "Breaker %d tripped: group %s, account %s, %s", b.N, b.Group, b.Account, b.Region)
		if b.Window > 0 {
			fmt.Fprintf(card, ", %d incidents within %s", b.Recent, shortDuration(b.Window))
		}
		fmt.Fprintf(card, "  (%s)\n", b.ID)
	}
	return refs, err == nil
}

// shortDuration prints 1h, 90m, 45s rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// resetBreaker handles ResetBreakerIntent: find the breaker (by the group
// slot's number, the only tripped one, or ask which), then ask for
// confirmation, or act when the intent arrives confirmed.
func (t *turn) resetBreaker() *ResponseEnvelope {
	in := t.env.Request.Intent
	n, named, err := numberSlot(in, SlotGroup)
	if err != nil {
		sp := (&speech{}).say("I didn't catch the group's number. Say, for example, reset the breaker for group one.")
		return t.ask(sp, "Say, for example, reset the breaker for group one.", "")
	}
	brs, err := t.breakers()
	if err != nil {
		return t.failure(err, ref{})
	}
	sp := &speech{}
	if len(brs) == 0 {
		sp.say("No breaker is tripped, so there is nothing to reset. New incidents proceed as their policy says.")
		return t.tell(sp, "No tripped breakers.")
	}
	var b breakerRef
	switch {
	case named && n > len(brs):
		if len(brs) == 1 {
			sp.say("There is no tripped breaker %d: only the breaker of %s is tripped, number 1. Say reset the breaker for group one, or stop.", n, brs[0].Group)
		} else {
			sp.say("There is no tripped breaker %d: %d breakers are tripped. Say a number from 1 to %d, or say what's happening to hear them.", n, len(brs), len(brs))
		}
		return t.ask(sp, "Say reset the breaker for group one, or stop.", "")
	case named:
		b = brs[n-1]
	case len(brs) == 1:
		b = brs[0]
	default:
		sp.say("%d breakers are tripped: ", len(brs))
		for i, c := range brs {
			if i > 0 {
				sp.say("; ")
			}
			sp.say("%d, %s", c.N, c.Group)
		}
		hint := fmt.Sprintf("Say reset the breaker for group %d, or reset the breaker for group %d.", brs[0].N, brs[1].N)
		sp.say(". %s", hint)
		return t.ask(sp, hint, "")
	}
	switch in.ConfirmationStatus {
	case ConfirmationConfirmed:
		return t.reset(b)
	case ConfirmationDenied:
		sp.say("OK, I did not reset the breaker of %s; nothing changed.", b.Group)
		return t.tell(sp, "")
	}
	t.st.Pending = &pendingAction{Update: workflows.UpdateResetBreaker, Number: b.N, ID: b.ID, Group: b.Group}
	sp.say("Reset the breaker of group %s", b.Group)
	if b.Account != "" {
		sp.say(" in ").account(b.Account).say(", %s", b.Region)
	}
	sp.say("? New incidents in the group will then proceed without approval, unless their policy asks for it. Say yes or no.")
	return t.ask(sp, fmt.Sprintf("Should I reset the breaker of %s? Say yes or no.", b.Group), "Reset the breaker of "+b.ID+"?")
}

// reset sends the reset-breaker update.
func (t *turn) reset(b breakerRef) *ResponseEnvelope {
	d := workflows.Decision{By: t.by(), Comment: "by voice (Alexa)"}
	if _, err := t.s.Incidents.ResetBreaker(t.ctx, b.ID, d); err != nil {
		sp := &speech{}
		var app *temporal.ApplicationError
		switch {
		case errors.Is(err, ErrNoGovernor):
			sp.say("The governor of %s has ended, so its breaker is no longer tripped; nothing to reset.", b.Group)
			return t.tell(sp, err.Error())
		case errors.As(err, &app):
			sp.say("%s", refusal(app.Message(), ref{}))
			t.s.log().Info("alexa: reset refused", "governorID", b.ID, "reason", app.Message())
			return t.tell(sp, app.Message())
		}
		return t.failure(err, ref{})
	}
	t.s.log().Info("alexa: breaker reset", "governorID", b.ID, "by", d.By)
	sp := (&speech{}).say("Breaker reset: new incidents in %s proceed again as their policy says. Incidents it already held still wait for your approval; say what's happening to hear them.", b.Group)
	return t.tell(sp, fmt.Sprintf("%s %s: done (by %s)", workflows.UpdateResetBreaker, b.ID, d.By))
}
