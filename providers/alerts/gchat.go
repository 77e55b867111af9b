package alerts

import "html"

// Google Chat: a space's incoming webhook. The message's text is the summary (what
// notifications show); one card (cardsV2) carries the facts as decorated texts. Card texts
// take a subset of HTML, so values are escaped.

type gchatPayload struct {
	Text    string      `json:"text"`
	CardsV2 []gchatCard `json:"cardsV2"`
}

type gchatCard struct {
	CardID string        `json:"cardId"`
	Card   gchatCardBody `json:"card"`
}

type gchatCardBody struct {
	Header   gchatHeader    `json:"header"`
	Sections []gchatSection `json:"sections"`
}

type gchatHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle"`
}

type gchatSection struct {
	Widgets []gchatWidget `json:"widgets"`
}

type gchatWidget struct {
	DecoratedText gchatDecoratedText `json:"decoratedText"`
}

type gchatDecoratedText struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
}

func gchatMessage(m Message) gchatPayload {
	var ws []gchatWidget
	for _, f := range facts(m) {
		ws = append(ws, gchatWidget{DecoratedText: gchatDecoratedText{TopLabel: f.name, Text: html.EscapeString(f.value)}})
	}
	card := gchatCardBody{Header: gchatHeader{Title: title(m), Subtitle: "Sluice · " + string(severity(m.Severity))}}
	if len(ws) > 0 {
		card.Sections = []gchatSection{{Widgets: ws}}
	}
	return gchatPayload{Text: title(m) + ": " + m.Text, CardsV2: []gchatCard{{CardID: "sluice-" + string(severity(m.Severity)), Card: card}}}
}
