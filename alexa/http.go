package alexa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// NewHTTPHandler returns the skill's HTTPS endpoint (mount it at POST
// /alexa). Every request is verified as the Alexa Skills Kit requires
// (Verifier); a request that fails gets HTTP 400 and one log line with the
// reason, and never reaches the skill.
func NewHTTPHandler(cfg Config, skill *Skill) http.Handler {
	if cfg.SkillID == "" {
		cfg.logger().Error("alexa: no skill ID configured; every request will be refused")
	}
	return &httpHandler{cfg: cfg, v: NewVerifier(cfg), skill: skill}
}

type httpHandler struct {
	cfg   Config
	v     *Verifier
	skill *Skill
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an Alexa request", http.StatusMethodNotAllowed)
		return
	}
	limit := orInt(h.cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.cfg.logger().Warn("alexa: request refused", "reason", "body too large", "limit", limit, "remote", r.RemoteAddr)
			http.Error(w, fmt.Sprintf("request body too large: Alexa requests are far below the %d-byte cap", limit), http.StatusRequestEntityTooLarge)
			return
		}
		h.refuse(w, r, fmt.Errorf("%w: reading the body: %v", ErrMalformedRequest, err))
		return
	}
	env, err := h.v.Verify(r.Context(), r.Header, body)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	resp := respond(r.Context(), h.cfg, h.skill, env)
	b, err := json.Marshal(resp)
	if err != nil { // cannot happen with these types; never leave Alexa without an answer
		h.cfg.logger().Error("alexa: encoding the response", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(b)
}

func (h *httpHandler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h.cfg.logger().Warn("alexa: request refused", "reason", err.Error(), "remote", r.RemoteAddr,
		"certURL", r.Header.Get(HeaderCertChainURL))
	http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
}

// respond lets the skill answer a verified request from an allowed user.
func respond(ctx context.Context, cfg Config, skill *Skill, env *RequestEnvelope) *ResponseEnvelope {
	if len(cfg.Users) > 0 && !slices.Contains(cfg.Users, env.UserID()) {
		cfg.logger().Warn("alexa: user not allowed", "userId", env.UserID())
		if env.Request.Type == TypeSessionEnded {
			return &ResponseEnvelope{Version: "1.0"}
		}
		sp := (&speech{}).say("This Alexa account may not steer Cordon. Ask an operator to add your user ID.")
		return &ResponseEnvelope{Version: "1.0", Response: Response{
			OutputSpeech: sp.output(), ShouldEndSession: Bool(true),
			Card: &Card{Type: CardSimple, Title: "Cordon", Content: "Not allowed. Your Alexa user ID: " + env.UserID()},
		}}
	}
	return skill.Handle(ctx, env)
}

// LambdaHandler is the function a Lambda-hosted skill runs (pass it to
// lambda.Start).
type LambdaHandler func(ctx context.Context, event json.RawMessage) (*ResponseEnvelope, error)

// NewLambdaHandler returns the handler of a Lambda-hosted skill. Lambda
// requests are not signed (the Alexa Skills Kit trigger with skill ID
// verification guards the function); the handler checks the application ID
// itself and returns an error (Alexa says the skill had a problem) for a
// malformed event or a foreign skill.
func NewLambdaHandler(cfg Config, skill *Skill) LambdaHandler {
	return func(ctx context.Context, event json.RawMessage) (*ResponseEnvelope, error) {
		env, err := ParseRequest(event)
		if err == nil {
			err = checkApplicationID(env, cfg.SkillID)
		}
		if err != nil {
			cfg.logger().Warn("alexa: request refused", "reason", err.Error())
			return nil, errors.New("alexa: request refused: " + err.Error())
		}
		return respond(ctx, cfg, skill, env), nil
	}
}
