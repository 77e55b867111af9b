package alerts_test

// The services' documented incoming-message formats, as local servers that refuse what the
// service would refuse (or silently drop): each decodes the body strictly into the fields the
// service documents and checks the rules its documentation states. Written from the services'
// documentation, not from Sluice's types, so a renamed or misplaced field fails here.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// service is one service's receiving end.
type service struct {
	// validate checks one request and returns the texts the service would show.
	validate func(r *http.Request, body []byte) ([]string, error)
	// ok is the service's answer to an accepted message.
	status int
	answer string
}

var services = map[string]service{
	"slack":   {validate: validateSlack, status: 200, answer: "ok"},
	"msteams": {validate: validateTeams, status: 202},
	"discord": {validate: validateDiscord, status: 204},
	"rocket":  {validate: validateRocket, status: 200, answer: `{"success":true}`},
	"gchat":   {validate: validateGChat, status: 200, answer: `{"name":"spaces/AAA/messages/BBB"}`},
	"generic": {validate: validateGeneric, status: 200},
}

func strictJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func jsonContentType(r *http.Request) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("charset %q", cs)
	}
	return nil
}

// Slack: chat.postMessage / incoming webhook arguments and legacy secondary attachments.
type slackDoc struct {
	Text        string          `json:"text"`
	Blocks      json.RawMessage `json:"blocks"`
	Attachments []struct {
		Fallback   string   `json:"fallback"`
		Color      string   `json:"color"`
		Pretext    string   `json:"pretext"`
		AuthorName string   `json:"author_name"`
		AuthorLink string   `json:"author_link"`
		AuthorIcon string   `json:"author_icon"`
		Title      string   `json:"title"`
		TitleLink  string   `json:"title_link"`
		Text       string   `json:"text"`
		Footer     string   `json:"footer"`
		MrkdwnIn   []string `json:"mrkdwn_in"`
		Fields     []struct {
			Title string `json:"title"`
			Value string `json:"value"`
			Short bool   `json:"short"`
		} `json:"fields"`
	} `json:"attachments"`
	Channel   string `json:"channel"`
	Username  string `json:"username"`
	IconEmoji string `json:"icon_emoji"`
	IconURL   string `json:"icon_url"`
	Mrkdwn    *bool  `json:"mrkdwn"`
	ThreadTS  string `json:"thread_ts"`
}

var slackColors = regexp.MustCompile(`^(good|warning|danger|#[0-9a-fA-F]{6})$`)

// slackText: "<", ">" and "&" are control characters; as text they must arrive escaped.
func slackText(s string) error {
	if strings.ContainsAny(s, "<>") {
		return fmt.Errorf("unescaped < or > in %q (Slack reads them as control sequences)", s)
	}
	if rest := regexp.MustCompile(`&(amp|lt|gt);`).ReplaceAllString(s, ""); strings.Contains(rest, "&") {
		return fmt.Errorf("unescaped & in %q", s)
	}
	return nil
}

func validateSlack(r *http.Request, body []byte) ([]string, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	var m slackDoc
	if err := strictJSON(body, &m); err != nil {
		return nil, err
	}
	if m.Text == "" && len(m.Attachments) == 0 && len(m.Blocks) == 0 {
		return nil, errors.New("no text, attachments or blocks")
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && m.Channel == "" {
		return nil, errors.New("chat.postMessage without channel")
	}
	shown := []string{m.Text}
	for i, a := range m.Attachments {
		if a.Fallback == "" {
			return nil, fmt.Errorf("attachments[%d]: no fallback (the required plain-text summary)", i)
		}
		if a.Color != "" && !slackColors.MatchString(a.Color) {
			return nil, fmt.Errorf("attachments[%d]: color %q", i, a.Color)
		}
		for _, f := range a.MrkdwnIn {
			if f != "pretext" && f != "text" && f != "fields" {
				return nil, fmt.Errorf("attachments[%d]: mrkdwn_in %q", i, f)
			}
		}
		shown = append(shown, a.Fallback, a.AuthorName, a.Text)
		for j, f := range a.Fields {
			if f.Title == "" || f.Value == "" {
				return nil, fmt.Errorf("attachments[%d].fields[%d]: title and value are required", i, j)
			}
			shown = append(shown, f.Title, f.Value)
		}
	}
	for _, s := range shown {
		if err := slackText(s); err != nil {
			return nil, err
		}
	}
	return unescapeSlack(shown), nil
}

func unescapeSlack(ss []string) []string {
	r := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = r.Replace(s)
	}
	return out
}

// Teams (Workflows): a message whose attachments are Adaptive Cards.
type teamsDoc struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string  `json:"contentType"`
		ContentURL  *string `json:"contentUrl"`
		Content     struct {
			Schema  string `json:"$schema"`
			Type    string `json:"type"`
			Version string `json:"version"`
			Body    []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				Weight   string `json:"weight"`
				Size     string `json:"size"`
				Color    string `json:"color"`
				Wrap     bool   `json:"wrap"`
				IsSubtle bool   `json:"isSubtle"`
				Facts    []struct {
					Title string `json:"title"`
					Value string `json:"value"`
				} `json:"facts"`
			} `json:"body"`
			MSTeams json.RawMessage `json:"msteams"`
		} `json:"content"`
	} `json:"attachments"`
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func validateTeams(r *http.Request, body []byte) ([]string, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	var m teamsDoc
	if err := strictJSON(body, &m); err != nil {
		return nil, err
	}
	if m.Type != "message" || len(m.Attachments) == 0 {
		return nil, fmt.Errorf("type %q with %d attachments, want a message with an attachment", m.Type, len(m.Attachments))
	}
	var shown []string
	for i, a := range m.Attachments {
		c := a.Content
		switch {
		case a.ContentType != "application/vnd.microsoft.card.adaptive":
			return nil, fmt.Errorf("attachments[%d].contentType %q (Workflows take Adaptive Cards only)", i, a.ContentType)
		case c.Type != "AdaptiveCard" || c.Schema != "http://adaptivecards.io/schemas/adaptive-card.json":
			return nil, fmt.Errorf("attachments[%d].content is no Adaptive Card: type %q, $schema %q", i, c.Type, c.Schema)
		case !oneOf(c.Version, "1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
			return nil, fmt.Errorf("attachments[%d]: Adaptive Card version %q (Teams renders up to 1.5)", i, c.Version)
		case len(c.Body) == 0:
			return nil, fmt.Errorf("attachments[%d]: empty card", i)
		}
		for j, e := range c.Body {
			switch e.Type {
			case "TextBlock":
				if e.Text == "" || len(e.Facts) > 0 {
					return nil, fmt.Errorf("body[%d]: a TextBlock needs text and has no facts", j)
				}
				if (e.Weight != "" && !oneOf(e.Weight, "Default", "Lighter", "Bolder")) ||
					(e.Size != "" && !oneOf(e.Size, "Default", "Small", "Medium", "Large", "ExtraLarge")) ||
					(e.Color != "" && !oneOf(e.Color, "Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention")) {
					return nil, fmt.Errorf("body[%d]: weight %q size %q color %q", j, e.Weight, e.Size, e.Color)
				}
				shown = append(shown, e.Text)
			case "FactSet":
				if len(e.Facts) == 0 || e.Text != "" {
					return nil, fmt.Errorf("body[%d]: a FactSet needs facts", j)
				}
				for k, f := range e.Facts {
					if f.Title == "" || f.Value == "" {
						return nil, fmt.Errorf("body[%d].facts[%d]: title and value are required", j, k)
					}
					shown = append(shown, f.Title, f.Value)
				}
			default:
				return nil, fmt.Errorf("body[%d]: element type %q", j, e.Type)
			}
		}
	}
	return shown, nil
}

// Discord: Execute Webhook JSON params and the embed object's limits.
type discordDoc struct {
	Content   string `json:"content"`
	Username  string `json:"username"`
	AvatarURL string `json:"avatar_url"`
	TTS       bool   `json:"tts"`
	Embeds    []struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		URL         string `json:"url"`
		Timestamp   string `json:"timestamp"`
		Color       *int   `json:"color"`
		Fields      []struct {
			Name   string `json:"name"`
			Value  string `json:"value"`
			Inline bool   `json:"inline"`
		} `json:"fields"`
	} `json:"embeds"`
	AllowedMentions *struct {
		Parse []string `json:"parse"`
		Roles []string `json:"roles"`
		Users []string `json:"users"`
	} `json:"allowed_mentions"`
	Flags      int    `json:"flags"`
	ThreadName string `json:"thread_name"`
}

func validateDiscord(r *http.Request, body []byte) ([]string, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	if strings.HasSuffix(r.URL.Path, "/slack") {
		return nil, errors.New("Discord's own format posted to the Slack-compatible endpoint")
	}
	var m discordDoc
	if err := strictJSON(body, &m); err != nil {
		return nil, err
	}
	n := utf8.RuneCountInString
	lower := strings.ToLower(m.Username)
	switch {
	case m.Content == "" && len(m.Embeds) == 0:
		return nil, errors.New("neither content nor embeds")
	case n(m.Content) > 2000:
		return nil, errors.New("content over 2000 characters")
	case m.Username != "" && (n(m.Username) > 80 || strings.Contains(lower, "discord") || strings.Contains(lower, "clyde")):
		return nil, fmt.Errorf("username %q", m.Username)
	case len(m.Embeds) > 10:
		return nil, errors.New("more than 10 embeds")
	}
	if am := m.AllowedMentions; am != nil {
		for _, p := range am.Parse {
			if !oneOf(p, "roles", "users", "everyone") {
				return nil, fmt.Errorf("allowed_mentions.parse %q", p)
			}
		}
	}
	shown := []string{m.Content}
	total := 0
	for i, e := range m.Embeds {
		switch {
		case n(e.Title) > 256 || n(e.Description) > 4096 || len(e.Fields) > 25:
			return nil, fmt.Errorf("embeds[%d]: title, description or field count over Discord's limits", i)
		case e.Color != nil && (*e.Color < 0 || *e.Color > 0xFFFFFF):
			return nil, fmt.Errorf("embeds[%d]: color %d", i, *e.Color)
		}
		total += n(e.Title) + n(e.Description)
		shown = append(shown, e.Title, e.Description)
		for j, f := range e.Fields {
			if f.Name == "" || f.Value == "" || n(f.Name) > 256 || n(f.Value) > 1024 {
				return nil, fmt.Errorf("embeds[%d].fields[%d]: name 1..256 and value 1..1024 characters", i, j)
			}
			total += n(f.Name) + n(f.Value)
			shown = append(shown, f.Name, f.Value)
		}
	}
	if total > 6000 {
		return nil, fmt.Errorf("embeds carry %d characters, over 6000", total)
	}
	return shown, nil
}

// Rocket.Chat: the incoming webhook's message (chat.postMessage's fields).
type rocketDoc struct {
	Text        string `json:"text"`
	Alias       string `json:"alias"`
	Emoji       string `json:"emoji"`
	Avatar      string `json:"avatar"`
	Channel     string `json:"channel"`
	RoomID      string `json:"roomId"`
	Attachments []struct {
		AudioURL          string `json:"audio_url"`
		AuthorIcon        string `json:"author_icon"`
		AuthorLink        string `json:"author_link"`
		AuthorName        string `json:"author_name"`
		Collapsed         bool   `json:"collapsed"`
		Color             string `json:"color"`
		ImageURL          string `json:"image_url"`
		MessageLink       string `json:"message_link"`
		Text              string `json:"text"`
		ThumbURL          string `json:"thumb_url"`
		Title             string `json:"title"`
		TitleLink         string `json:"title_link"`
		TitleLinkDownload bool   `json:"title_link_download"`
		TS                string `json:"ts"`
		VideoURL          string `json:"video_url"`
		Fields            []struct {
			Short bool   `json:"short"`
			Title string `json:"title"`
			Value string `json:"value"`
		} `json:"fields"`
	} `json:"attachments"`
}

var cssColor = regexp.MustCompile(`^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-z]+)$`)

func validateRocket(r *http.Request, body []byte) ([]string, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	var m rocketDoc
	if err := strictJSON(body, &m); err != nil {
		return nil, err
	}
	if m.Text == "" && len(m.Attachments) == 0 {
		return nil, errors.New("neither text nor attachments")
	}
	shown := []string{m.Text}
	for i, a := range m.Attachments {
		if a.Color != "" && !cssColor.MatchString(a.Color) {
			return nil, fmt.Errorf("attachments[%d].color %q", i, a.Color)
		}
		shown = append(shown, a.Title, a.Text)
		for j, f := range a.Fields {
			if f.Title == "" || f.Value == "" {
				return nil, fmt.Errorf("attachments[%d].fields[%d]: title and value are required", i, j)
			}
			shown = append(shown, f.Title, f.Value)
		}
	}
	return shown, nil
}

// Google Chat: a Message with text and cardsV2 (Cards v2: header, sections of widgets, one
// kind of widget each).
type gchatDoc struct {
	Text    string `json:"text"`
	CardsV2 []struct {
		CardID string `json:"cardId"`
		Card   struct {
			Header *struct {
				Title        string `json:"title"`
				Subtitle     string `json:"subtitle"`
				ImageURL     string `json:"imageUrl"`
				ImageType    string `json:"imageType"`
				ImageAltText string `json:"imageAltText"`
			} `json:"header"`
			Sections []struct {
				Header  string `json:"header"`
				Widgets []struct {
					DecoratedText *struct {
						TopLabel    string `json:"topLabel"`
						Text        string `json:"text"`
						BottomLabel string `json:"bottomLabel"`
						WrapText    bool   `json:"wrapText"`
					} `json:"decoratedText"`
					TextParagraph *struct {
						Text string `json:"text"`
					} `json:"textParagraph"`
				} `json:"widgets"`
			} `json:"sections"`
		} `json:"card"`
	} `json:"cardsV2"`
	Thread *struct {
		ThreadKey string `json:"threadKey"`
	} `json:"thread"`
}

func validateGChat(r *http.Request, body []byte) ([]string, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	var m gchatDoc
	if err := strictJSON(body, &m); err != nil {
		return nil, err
	}
	if m.Text == "" && len(m.CardsV2) == 0 {
		return nil, errors.New("neither text nor cardsV2")
	}
	if utf8.RuneCountInString(m.Text) > 4096 {
		return nil, errors.New("text over 4096 characters")
	}
	shown := []string{m.Text}
	for i, c := range m.CardsV2 {
		if c.CardID == "" {
			return nil, fmt.Errorf("cardsV2[%d]: no cardId", i)
		}
		if h := c.Card.Header; h != nil {
			if h.Title == "" {
				return nil, fmt.Errorf("cardsV2[%d].card.header: no title", i)
			}
			shown = append(shown, h.Title, h.Subtitle)
		}
		for j, s := range c.Card.Sections {
			if len(s.Widgets) == 0 {
				return nil, fmt.Errorf("cardsV2[%d].card.sections[%d]: no widgets", i, j)
			}
			for k, w := range s.Widgets {
				switch {
				case (w.DecoratedText == nil) == (w.TextParagraph == nil):
					return nil, fmt.Errorf("cardsV2[%d].card.sections[%d].widgets[%d]: exactly one widget kind", i, j, k)
				case w.DecoratedText != nil && w.DecoratedText.Text == "":
					return nil, fmt.Errorf("cardsV2[%d].card.sections[%d].widgets[%d]: decoratedText needs text", i, j, k)
				case w.DecoratedText != nil:
					shown = append(shown, w.DecoratedText.TopLabel, htmlText(w.DecoratedText.Text))
				default:
					shown = append(shown, htmlText(w.TextParagraph.Text))
				}
			}
		}
	}
	return shown, nil
}

// htmlText is what Chat shows of a card text: its supported tags rendered, entities decoded.
func htmlText(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#34;", `"`, "&#39;", "'", "&amp;", "&").Replace(s)
}

// Generic: Sluice's own documented JSON, every key present.
type genericDoc struct {
	Source     string `json:"source"`
	Severity   string `json:"severity"`
	Message    string `json:"message"`
	Namespace  string `json:"namespace"`
	Deployment string `json:"deployment"`
	Revision   string `json:"revision"`
	Image      string `json:"image"`
	Phase      string `json:"phase"`
	Weight     int    `json:"weight"`
	Check      string `json:"check"`
	Value      string `json:"value"`
}

func validateGeneric(r *http.Request, body []byte) ([]string, error) {
	if err := jsonContentType(r); err != nil {
		return nil, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return nil, err
	}
	for _, k := range []string{"source", "severity", "message", "namespace", "deployment", "revision", "image", "phase", "weight", "check", "value"} {
		if _, ok := keys[k]; !ok {
			return nil, fmt.Errorf("key %q missing", k)
		}
	}
	var m genericDoc
	if err := strictJSON(body, &m); err != nil {
		return nil, err
	}
	if m.Source != "sluice" || !oneOf(m.Severity, "info", "warn", "error") || m.Message == "" {
		return nil, fmt.Errorf("source %q severity %q message %q", m.Source, m.Severity, m.Message)
	}
	return []string{m.Message, m.Namespace + "/" + m.Deployment, m.Revision, m.Image, m.Phase, fmt.Sprintf("%d%%", m.Weight), m.Check, m.Value, m.Severity}, nil
}
