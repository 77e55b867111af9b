package alerts

import "github.com/sluice-dev/sluice/rollout/spec"

// Microsoft Teams: a Workflows webhook ("When a Teams webhook request is received"), which
// takes a message with one Adaptive Card attachment — the format that replaced the Office 365
// connectors' MessageCard (which Flagger still sends, and Workflows do not accept).

type teamsPayload struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string        `json:"$schema"`
	Type    string        `json:"type"`
	Version string        `json:"version"`
	Body    []cardElement `json:"body"`
}

// cardElement is a TextBlock or a FactSet.
type cardElement struct {
	Type   string     `json:"type"`
	Text   string     `json:"text,omitempty"`
	Weight string     `json:"weight,omitempty"`
	Size   string     `json:"size,omitempty"`
	Color  string     `json:"color,omitempty"`
	Wrap   bool       `json:"wrap,omitempty"`
	Facts  []cardFact `json:"facts,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

const (
	adaptiveCardType   = "application/vnd.microsoft.card.adaptive"
	adaptiveCardSchema = "http://adaptivecards.io/schemas/adaptive-card.json"
	// adaptiveCardVersion is the newest version Teams renders everywhere (desktop, web, mobile).
	adaptiveCardVersion = "1.4"
)

func teamsMessage(m Message) teamsPayload {
	body := []cardElement{
		{Type: "TextBlock", Text: title(m), Weight: "Bolder", Size: "Medium", Color: teamsColor(m.Severity), Wrap: true},
		{Type: "TextBlock", Text: m.Text, Wrap: true},
	}
	if fs := facts(m); len(fs) > 0 {
		set := cardElement{Type: "FactSet"}
		for _, f := range fs {
			set.Facts = append(set.Facts, cardFact{Title: f.name, Value: f.value})
		}
		body = append(body, set)
	}
	return teamsPayload{Type: "message", Attachments: []teamsAttachment{{
		ContentType: adaptiveCardType,
		Content:     adaptiveCard{Schema: adaptiveCardSchema, Type: "AdaptiveCard", Version: adaptiveCardVersion, Body: body},
	}}}
}

func teamsColor(s spec.AlertSeverity) string {
	switch s {
	case spec.SeverityError:
		return "Attention"
	case spec.SeverityWarn:
		return "Warning"
	default:
		return "Good"
	}
}
