package alerts

// Generic: Sluice's own JSON, for any receiver (a bearer token when the Secret has one):
//
//	{"source": "sluice", "severity": "error", "message": "…", "namespace": "shop",
//	 "deployment": "web", "revision": "5d8c7f9b4a", "image": "ghcr.io/x/web:v2",
//	 "phase": "RollingBack", "weight": 20, "check": "request-success-rate", "value": "87.5"}
//
// Every key is always present (empty string or 0 when not known).

type genericPayload struct {
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

func genericMessage(m Message) genericPayload {
	return genericPayload{
		Source: "sluice", Severity: string(severity(m.Severity)), Message: m.Text,
		Namespace: m.Namespace, Deployment: m.Deployment, Revision: m.Revision, Image: m.Image,
		Phase: m.Phase, Weight: m.Weight, Check: m.Check, Value: m.Value,
	}
}
