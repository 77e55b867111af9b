package alerts

import (
	"encoding/json"
	"errors"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Rocket.Chat: an incoming webhook integration. The message has Rocket.Chat's fields: alias
// (the name shown), channel (to override the integration's), and one attachment coloured by
// severity whose fields are the facts.

type rocketPayload struct {
	Alias       string             `json:"alias"`
	Channel     string             `json:"channel,omitempty"`
	Text        string             `json:"text"`
	Attachments []rocketAttachment `json:"attachments"`
}

type rocketAttachment struct {
	Title  string        `json:"title"`
	Text   string        `json:"text"`
	Color  string        `json:"color"`
	Fields []rocketField `json:"fields,omitempty"`
}

type rocketField struct {
	Short bool   `json:"short"`
	Title string `json:"title"`
	Value string `json:"value"`
}

func rocketMessage(c Config, m Message) rocketPayload {
	a := rocketAttachment{Title: title(m), Text: m.Text, Color: rocketColor(m.Severity)}
	for _, f := range facts(m) {
		a.Fields = append(a.Fields, rocketField{Short: len(f.value) <= 40, Title: f.name, Value: f.value})
	}
	return rocketPayload{Alias: c.Username, Channel: c.Channel, Text: title(m) + ": " + m.Text, Attachments: []rocketAttachment{a}}
}

func rocketColor(s spec.AlertSeverity) string {
	switch s {
	case spec.SeverityError:
		return "#E01E5A"
	case spec.SeverityWarn:
		return "#ECB22E"
	default:
		return "#2EB67D"
	}
}

// rocketAccepted: Rocket.Chat reports {"success": false, "error": "…"} in the body.
func rocketAccepted(body []byte) error {
	var r struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &r) != nil || r.Success == nil || *r.Success {
		return nil
	}
	if r.Error == "" {
		r.Error = "no reason given"
	}
	return errors.New("the answer says success: false (" + r.Error + ")")
}
