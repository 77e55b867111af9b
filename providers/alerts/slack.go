package alerts

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Slack: an incoming webhook (address = the webhook URL) or, with a token, the
// chat.postMessage API (address https://slack.com/api/chat.postMessage, channel required).
// Both take the same message: one legacy attachment, coloured by severity, whose fields are
// the facts. Slack decodes &amp; &lt; &gt; in text, so those three are escaped (a check reason
// cannot ping <!channel>).

type slackPayload struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Fallback   string       `json:"fallback"`
	Color      string       `json:"color"`
	AuthorName string       `json:"author_name"`
	Text       string       `json:"text"`
	MrkdwnIn   []string     `json:"mrkdwn_in"`
	Fields     []slackField `json:"fields,omitempty"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackMessage(c Config, m Message) slackPayload {
	a := slackAttachment{
		Fallback:   slackEscape.Replace(title(m) + ": " + m.Text),
		Color:      slackColor(m.Severity),
		AuthorName: slackEscape.Replace(title(m)),
		Text:       slackEscape.Replace(m.Text),
		MrkdwnIn:   []string{"text"},
	}
	for _, f := range facts(m) {
		a.Fields = append(a.Fields, slackField{Title: f.name, Value: slackEscape.Replace(f.value), Short: len(f.value) <= 40})
	}
	return slackPayload{Channel: c.Channel, Username: c.Username, Attachments: []slackAttachment{a}}
}

func slackColor(s spec.AlertSeverity) string {
	switch s {
	case spec.SeverityError:
		return "danger"
	case spec.SeverityWarn:
		return "warning"
	default:
		return "good"
	}
}

// slackAccepted: chat.postMessage answers every failure with 200 and {"ok": false, "error":
// "channel_not_found"}; an incoming webhook answers "ok".
func slackAccepted(body []byte) error {
	var r struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &r) != nil || r.OK == nil || *r.OK {
		return nil
	}
	if r.Error == "" {
		r.Error = "no reason given"
	}
	return errors.New("the answer says ok: false (" + r.Error + ")")
}
