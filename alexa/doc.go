// Package alexa will hold Cordon's Alexa skill: the request and response
// types, request verification, and the handler that turns intents into
// incident updates and queries through the names in workflows/. It is a
// placeholder until the skill lands.
package alexa
