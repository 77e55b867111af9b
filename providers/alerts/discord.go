package alerts

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Discord: Execute Webhook with one embed, coloured by severity, whose fields are the facts.
// Mentions are switched off (allowed_mentions), so a check reason cannot ping @everyone.

type discordPayload struct {
	Username        string          `json:"username"`
	Embeds          []discordEmbed  `json:"embeds"`
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordMentions struct {
	Parse []string `json:"parse"`
}

func discordMessage(c Config, m Message) discordPayload {
	e := discordEmbed{Title: title(m), Description: m.Text, Color: discordColor(m.Severity)}
	for _, f := range facts(m) {
		e.Fields = append(e.Fields, discordField{Name: f.name, Value: f.value, Inline: len(f.value) <= 40})
	}
	return discordPayload{Username: c.Username, Embeds: []discordEmbed{e}, AllowedMentions: discordMentions{Parse: []string{}}}
}

func discordColor(s spec.AlertSeverity) int {
	switch s {
	case spec.SeverityError:
		return 0xE01E5A
	case spec.SeverityWarn:
		return 0xECB22E
	default:
		return 0x2EB67D
	}
}

// discordUsername refuses a name Discord would answer 400 to: 1–80 characters, without
// "discord" or "clyde".
func discordUsername(name string) error {
	lower := strings.ToLower(name)
	switch {
	case len([]rune(name)) > 80:
		return fmt.Errorf("discord: username must be at most 80 characters")
	case strings.Contains(lower, "discord"), strings.Contains(lower, "clyde"):
		return fmt.Errorf("discord: username %q is refused by Discord (it may not contain \"discord\" or \"clyde\")", name)
	}
	return nil
}
