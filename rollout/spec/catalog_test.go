package spec_test

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func validInfo() spec.RouterInfo {
	return spec.RouterInfo{
		Name: "widget",
		Kinds: []spec.RouteKind{
			{Kind: "widgetroute", Capability: spec.Capability{Strategies: []spec.Strategy{spec.StrategyCanary}, Headers: []string{"exact"}}},
			{Kind: "widgetsplit", Capability: spec.Capability{Strategies: []spec.Strategy{spec.StrategyCanary}}},
		},
		Queries: spec.Queries{SuccessRate: "sr", Duration: "d", Requests: "n"},
		RBAC:    []rbacv1.PolicyRule{{APIGroups: []string{"widgets.example"}, Resources: []string{"widgetroutes"}, Verbs: []string{"get"}}},
	}
}

// A description that admission or analysis could not use is refused, saying what is wrong.
func TestRouterInfoValidate(t *testing.T) {
	for _, info := range catalogtest.Catalog() {
		if err := info.Validate(); err != nil {
			t.Errorf("registered router: %v", err)
		}
	}
	if err := validInfo().Validate(); err != nil {
		t.Fatalf("valid description: %v", err)
	}
	for name, tc := range map[string]struct {
		mod  func(*spec.RouterInfo)
		want string
	}{
		"no name":              {func(i *spec.RouterInfo) { i.Name = "" }, `name "" must be a DNS-1035 label`},
		"no kinds":             {func(i *spec.RouterInfo) { i.Kinds = nil }, "no kinds"},
		"empty kind among two": {func(i *spec.RouterInfo) { i.Kinds[1].Kind = "" }, "an empty kind (no routing object) must be the only one"},
		"kind twice":           {func(i *spec.RouterInfo) { i.Kinds[1].Kind = "widgetroute" }, `kind "widgetroute" must be lower case and listed once`},
		"upper-case kind":      {func(i *spec.RouterInfo) { i.Kinds[0].Kind = "WidgetRoute" }, `kind "WidgetRoute" must be lower case`},
		"no strategies":        {func(i *spec.RouterInfo) { i.Kinds[0].Strategies = nil }, `kind "widgetroute": no strategies`},
		"unknown strategy":     {func(i *spec.RouterInfo) { i.Kinds[0].Strategies = []spec.Strategy{"shadow"} }, `unknown strategy "shadow"`},
		"unknown comparison":   {func(i *spec.RouterInfo) { i.Kinds[0].Headers = []string{"glob"} }, `unknown comparison "glob"`},
		"no request count":     {func(i *spec.RouterInfo) { i.Queries.Requests = "" }, "need SuccessRate, Duration and Requests queries"},
		"rule without verbs":   {func(i *spec.RouterInfo) { i.RBAC[0].Verbs = nil }, "needs verbs and resources"},
	} {
		t.Run(name, func(t *testing.T) {
			info := validInfo()
			tc.mod(&info)
			if err := info.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The catalog is the only source of router names: without it every router is unknown, and a
// router added to it is accepted with exactly its own capabilities.
func TestParseReadsTheCatalog(t *testing.T) {
	_, errs := spec.Parse(nil, spec.Defaults{})
	if got := spec.FormatErrors(errs); got != `sluice.dev/router: no router is registered in this controller, got "replicas"` {
		t.Errorf("Parse with an empty catalog: %s", got)
	}
	d := catalogtest.Defaults()
	d.Routers = append(d.Routers, validInfo())
	c, errs := spec.Parse(map[string]string{spec.AnnRouter: "widget", spec.AnnRoute: "widgetsplit/web"}, d)
	if len(errs) > 0 || c.RouteKind != "widgetsplit" || c.Route != "web" {
		t.Errorf("Parse(widget) = %+v, %s", c, spec.FormatErrors(errs))
	}
	_, errs = spec.Parse(map[string]string{spec.AnnRouter: "widget", spec.AnnStrategy: "ab", spec.AnnMatch: "- queryParams: {v: {exact: '2'}}"}, d)
	want := `sluice.dev/strategy: the widget (widgetroute) router cannot do ab releases (it can do canary), got "ab"`
	if got := spec.FormatErrors(errs); got != want {
		t.Errorf("ab through widget: %s\nwant %s", got, want)
	}
}
