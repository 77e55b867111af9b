package spec

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// HookType is when a hook is called and what its answer means; the types and their meaning are
// Flagger's (`Canary.spec.analysis.webhooks[].type`).
type HookType string

// Hook types.
const (
	// HookConfirmRollout gates the start of a release (before the canary is scaled up): the
	// release waits until the hook answers 200–202.
	HookConfirmRollout HookType = "confirm-rollout"
	// HookPreRollout runs before traffic goes to the canary; a refusal counts as a failed run.
	HookPreRollout HookType = "pre-rollout"
	// HookRollout runs every analysis interval before the metric checks; a refusal counts as a
	// failed run. An empty type means this one (Flagger's default).
	HookRollout HookType = "rollout"
	// HookConfirmTrafficIncrease gates every weight increase.
	HookConfirmTrafficIncrease HookType = "confirm-traffic-increase"
	// HookConfirmPromotion gates the promotion; analysis goes on while it waits.
	HookConfirmPromotion HookType = "confirm-promotion"
	// HookPostRollout runs after the release was promoted or rolled back; its answer is only
	// reported.
	HookPostRollout HookType = "post-rollout"
	// HookRollback is polled while a release progresses or waits: an answer of 200–202 rolls
	// the release back.
	HookRollback HookType = "rollback"
	// HookEvent receives every event Sluice records about the release.
	HookEvent HookType = "event"
)

// HookTypes are the known hook types, in the order a release meets them.
var HookTypes = []HookType{
	HookConfirmRollout, HookPreRollout, HookRollout, HookConfirmTrafficIncrease,
	HookConfirmPromotion, HookPostRollout, HookRollback, HookEvent,
}

// Hook bounds.
const (
	// DefaultHookTimeout is a hook call's timeout when the hook sets none (Flagger's).
	DefaultHookTimeout = 10 * time.Second
	// MaxHookTimeout bounds one call: a longer-running job belongs behind a hook that starts
	// it and a gate that reports its end.
	MaxHookTimeout = time.Hour
	// MaxHookRetries bounds the retries of one call.
	MaxHookRetries = 10
)

// Hook is one entry of `sluice.dev/webhooks` (or of the analysis block's `webhooks`), in the
// shape of Flagger's CanaryWebhook so a Flagger user's list pastes unchanged.
type Hook struct {
	Name string   `json:"name"`
	Type HookType `json:"type,omitempty"`
	URL  string   `json:"url"`
	// MuteAlert keeps the alerts this hook would cause (a closed gate) from being sent.
	MuteAlert bool `json:"muteAlert,omitempty"`
	// Timeout of one call, a Go duration; empty means DefaultHookTimeout.
	Timeout string `json:"timeout,omitempty"`
	// Metadata is sent in the payload's `metadata`.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Retries is how many times a call is repeated after a connection error, a timeout or a
	// 5xx answer.
	Retries int `json:"retries,omitempty"`
	// DisableTLS accepts any TLS certificate from the hook's server (Flagger's field).
	DisableTLS bool `json:"disableTLS,omitempty"`
}

// TimeoutDuration is the hook's per-call timeout: its Timeout, or DefaultHookTimeout when it
// sets none (or one validation would refuse).
func (h Hook) TimeoutDuration() time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(h.Timeout))
	if err != nil || d <= 0 {
		return DefaultHookTimeout
	}
	return d
}

// HookKind is the hook's type with Flagger's default applied: an empty type is a rollout hook.
func (h Hook) HookKind() HookType {
	if h.Type == "" {
		return HookRollout
	}
	return h.Type
}

// DefaultHooks returns hs with defaults applied (an empty type becomes HookRollout; empty
// metadata none), so the frozen plan says what runs and reads back the same. hs is not
// changed.
func DefaultHooks(hs []Hook) []Hook {
	if hs == nil {
		return nil
	}
	out := make([]Hook, len(hs))
	for i, h := range hs {
		h.Type = h.HookKind()
		h.Metadata = maps.Clone(h.Metadata)
		if len(h.Metadata) == 0 {
			h.Metadata = nil
		}
		out[i] = h
	}
	return out
}

// ParseHooks reads the YAML list of `sluice.dev/webhooks` (key names the annotation in errors):
// unknown fields are refused, defaults applied, every entry validated.
func ParseHooks(key, raw string) ([]Hook, field.ErrorList) {
	var hs []Hook
	if err := yaml.UnmarshalStrict([]byte(raw), &hs); err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath(key), "", "not a valid YAML list of webhooks: "+cleanYAMLError(err))}
	}
	hs = DefaultHooks(hs)
	if errs := ValidateHooks(key, hs); len(errs) > 0 {
		return nil, errs
	}
	return hs, nil
}

// ValidateHooks checks hooks parsed from the annotation or the analysis block named key. Each
// error names its entry by index: `sluice.dev/webhooks[2].url`.
func ValidateHooks(key string, hs []Hook) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]int{}
	for i, h := range hs {
		p := field.NewPath(key).Index(i)
		switch name := strings.TrimSpace(h.Name); name {
		case "":
			errs = append(errs, field.Required(p.Child("name"), "every webhook needs a name"))
		default:
			if j, dup := seen[name]; dup {
				errs = append(errs, field.Invalid(p.Child("name"), h.Name, fmt.Sprintf("the same name as %s[%d]: names tell the webhooks apart in events and the release state", key, j)))
			} else {
				seen[name] = i
			}
		}
		if h.Type != "" && !slices.Contains(HookTypes, h.Type) {
			errs = append(errs, field.Invalid(p.Child("type"), string(h.Type), "must be one of "+joinHookTypes()))
		}
		if err := hookURL(h.URL); err != "" {
			if strings.TrimSpace(h.URL) == "" {
				errs = append(errs, field.Required(p.Child("url"), err))
			} else {
				errs = append(errs, field.Invalid(p.Child("url"), maskUserInfo(h.URL), err))
			}
		}
		if h.Timeout != "" {
			d, err := time.ParseDuration(strings.TrimSpace(h.Timeout))
			switch {
			case err != nil || d <= 0:
				errs = append(errs, field.Invalid(p.Child("timeout"), h.Timeout, "must be a positive duration such as 10s or 2m"))
			case d > MaxHookTimeout:
				errs = append(errs, field.Invalid(p.Child("timeout"), h.Timeout, "must be at most "+shortDuration(MaxHookTimeout)))
			}
		}
		if h.Retries < 0 || h.Retries > MaxHookRetries {
			errs = append(errs, field.Invalid(p.Child("retries"), strconv.Itoa(h.Retries), fmt.Sprintf("must be 0..%d", MaxHookRetries)))
		}
	}
	return errs
}

// hookURL explains what is wrong with a hook's URL, or returns "".
func hookURL(s string) string {
	if strings.TrimSpace(s) == "" {
		return "every webhook needs a url"
	}
	if s != strings.TrimSpace(s) {
		return "must not start or end with white space"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.Host == "" || u.Opaque != "" || u.Hostname() == "":
		return "must name a host, e.g. http://loadtester.test/"
	}
	return ""
}

// maskUserInfo hides the user info of a URL that is quoted in an error (denials are printed,
// and may be logged, where the annotation's own readers are not the only ones).
func maskUserInfo(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i, j := strings.Index(s, "://"), strings.LastIndex(s, "@"); i >= 0 && j > i {
			return s[:i+3] + "xxxxx" + s[j:]
		}
		return s
	}
	u.User = url.User("xxxxx")
	return u.String()
}

func joinHookTypes() string {
	names := make([]string, len(HookTypes))
	for i, t := range HookTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// shortDuration renders whole hours and minutes as Go would parse them, without trailing zero
// units ("1h", not "1h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// AlertSeverity is the lowest severity an alert target receives, and the severity of a message.
// The levels are Flagger's; empty means info.
type AlertSeverity string

// Severities, lowest first.
const (
	SeverityInfo  AlertSeverity = "info"
	SeverityWarn  AlertSeverity = "warn"
	SeverityError AlertSeverity = "error"
)

// Alert is one entry of `sluice.dev/alerts` (or of the analysis block's `alerts`), shaped like
// Flagger's CanaryAlert: the messages of at least Severity go to the AlertProvider ProviderRef.
type Alert struct {
	Name        string           `json:"name"`
	Severity    AlertSeverity    `json:"severity,omitempty"`
	ProviderRef AlertProviderRef `json:"providerRef"`
}

// AlertProviderRef names an AlertProvider; Namespace defaults to the Deployment's.
type AlertProviderRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// ParseAlerts reads the YAML list of `sluice.dev/alerts` (key names the annotation in errors):
// unknown fields are refused, every entry validated.
func ParseAlerts(key, raw string) ([]Alert, field.ErrorList) {
	var as []Alert
	if err := yaml.UnmarshalStrict([]byte(raw), &as); err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath(key), "", "not a valid YAML list of alerts: "+cleanYAMLError(err))}
	}
	if errs := ValidateAlerts(key, as); len(errs) > 0 {
		return nil, errs
	}
	return as, nil
}

// ValidateAlerts checks alerts parsed from the annotation or the analysis block named key. Each
// error names its entry by index: `sluice.dev/alerts[1].severity`.
func ValidateAlerts(key string, as []Alert) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]int{}
	for i, a := range as {
		p := field.NewPath(key).Index(i)
		switch name := strings.TrimSpace(a.Name); name {
		case "":
			errs = append(errs, field.Required(p.Child("name"), "every alert needs a name"))
		default:
			if j, dup := seen[name]; dup {
				errs = append(errs, field.Invalid(p.Child("name"), a.Name, fmt.Sprintf("the same name as %s[%d]", key, j)))
			} else {
				seen[name] = i
			}
		}
		switch a.Severity {
		case "", SeverityInfo, SeverityWarn, SeverityError:
		default:
			errs = append(errs, field.Invalid(p.Child("severity"), string(a.Severity), "must be info, warn or error (empty means info)"))
		}
		ref := p.Child("providerRef")
		switch n := a.ProviderRef.Name; {
		case n == "":
			errs = append(errs, field.Required(ref.Child("name"), "the AlertProvider to post to"))
		case !validSubdomain(n):
			errs = append(errs, field.Invalid(ref.Child("name"), n, "must name an AlertProvider (a DNS-1123 subdomain)"))
		}
		if ns := a.ProviderRef.Namespace; ns != "" && !validName(ns) {
			errs = append(errs, field.Invalid(ref.Child("namespace"), ns, "must be a namespace name"))
		}
	}
	return errs
}

// CrossNamespaceAlerts refuses every alert of as (from key) whose AlertProvider is in another
// namespace than the Deployment's: a provider posts with its own namespace's Secret, so without
// the controller's consent a Deployment could post through another team's channel. The caller
// skips this when the controller allows cross-namespace references.
func CrossNamespaceAlerts(key string, as []Alert, namespace string) field.ErrorList {
	var errs field.ErrorList
	for i, a := range as {
		if ns := a.ProviderRef.Namespace; ns != "" && ns != namespace {
			errs = append(errs, field.Forbidden(field.NewPath(key).Index(i).Child("providerRef", "namespace"),
				fmt.Sprintf("AlertProvider %s/%s is in another namespace than the Deployment (%s); the controller allows that only with --allow-cross-namespace-templates", ns, a.ProviderRef.Name, namespace)))
		}
	}
	return errs
}

// Alert provider types.
const (
	AlertSlack   = "slack"
	AlertMSTeams = "msteams"
	AlertDiscord = "discord"
	AlertRocket  = "rocket"
	AlertGChat   = "gchat"
	// AlertGeneric posts Sluice's own JSON message to any HTTP endpoint.
	AlertGeneric = "generic"
)

// AlertProviderTypes are the known AlertProvider types.
var AlertProviderTypes = []string{AlertSlack, AlertMSTeams, AlertDiscord, AlertRocket, AlertGChat, AlertGeneric}

// AlertProvider is where alerts go (namespaced CRD `alertproviders.sluice.dev`, deploy/crds),
// shaped like Flagger's AlertProvider so one ports by changing apiVersion.
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              AlertProviderSpec `json:"spec"`
}

// AlertProviderSpec is the service and how to reach it. The address is either inline or, since
// for most services the address itself is the credential, the key `address` of the Secret
// SecretRef names (which may also hold a bearer `token`).
type AlertProviderSpec struct {
	Type      string     `json:"type"`
	Channel   string     `json:"channel,omitempty"`
	Username  string     `json:"username,omitempty"`
	Address   string     `json:"address,omitempty"`
	SecretRef *SecretRef `json:"secretRef,omitempty"`
}

// AlertProviderList is a list of AlertProviders.
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (p *AlertProvider) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopy copies the provider.
func (p *AlertProvider) DeepCopy() *AlertProvider {
	if p == nil {
		return nil
	}
	out := *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if p.Spec.SecretRef != nil {
		ref := *p.Spec.SecretRef
		out.Spec.SecretRef = &ref
	}
	return &out
}

// DeepCopyObject implements runtime.Object.
func (l *AlertProviderList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]AlertProvider, len(l.Items))
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopy()
	}
	return &out
}

// ValidateAlertProviderSpec checks what the CRD schema cannot: an inline address is an http(s)
// URL with a host and without user info (credentials belong in the Secret). Errors name
// `spec.<field>`.
func ValidateAlertProviderSpec(s AlertProviderSpec) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	if !slices.Contains(AlertProviderTypes, s.Type) {
		errs = append(errs, field.Invalid(p.Child("type"), s.Type, "must be one of "+strings.Join(AlertProviderTypes, ", ")))
	}
	switch {
	case s.Address == "" && s.SecretRef == nil:
		errs = append(errs, field.Required(p.Child("address"), "give address, or secretRef naming a Secret with the key address"))
	case s.Address != "" && s.SecretRef != nil:
		errs = append(errs, field.Invalid(p.Child("address"), maskUserInfo(s.Address), "give address or secretRef, not both"))
	case s.Address != "":
		if err := hookURL(s.Address); err != "" {
			errs = append(errs, field.Invalid(p.Child("address"), maskUserInfo(s.Address), strings.Replace(err, "every webhook needs a url", "needs a URL", 1)))
		} else if u, _ := url.Parse(s.Address); u.User != nil {
			errs = append(errs, field.Invalid(p.Child("address"), maskUserInfo(s.Address), "must not carry user info; put credentials in the Secret named by secretRef"))
		}
	}
	if s.SecretRef != nil && !validSubdomain(s.SecretRef.Name) {
		errs = append(errs, field.Invalid(p.Child("secretRef", "name"), s.SecretRef.Name, "must name a Secret"))
	}
	return errs
}
