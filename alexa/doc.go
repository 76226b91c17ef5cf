// Package alexa is Cordon's Alexa custom skill: the operator asks what is
// happening, hears the open incidents newest first, asks for the details of
// one by its spoken number, and approves, rejects or releases it by voice.
//
// The package holds everything on the standard library and the Temporal SDK
// (no Alexa library is served): the request and response JSON types
// (request.go, response.go), request verification exactly as the Alexa Skills
// Kit requires of an HTTPS endpoint (verify.go), the HTTPS and Lambda entry
// points (http.go), and the Skill, which turns intents into the updates,
// query and visibility list named in workflows/ (skill.go, incidents.go).
//
// The interaction model and manifest are in skill-package/ (ASK CLI layout),
// the Lambda main in lambda/, and the end-to-end test on the embedded
// Temporal server in skilltest/.
package alexa
