package install

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluice-dev/sluice/providers/catalogtest"
)

// Every RBAC rule every registered router declares (spec.RouterInfo.RBAC, in its own package) is
// granted by what an operator installs: the chart's ClusterRole with default values, the
// kustomize base, deploy/rbac (what the e2e suite runs sluice under), the chart with that router
// alone in `routers`, and the Role of a watched namespace. The routers are providers/builtin's,
// the list the binary registers.
func TestChartGrantsEveryRouterRule(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repo, "deploy", "rbac", "clusterrole.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clusterRole := func(r rendered) []rbacv1.PolicyRule {
		return into[rbacv1.ClusterRole](t, r.one(t, "ClusterRole", "sluice")).Rules
	}
	installs := map[string][]rbacv1.PolicyRule{
		"chart, default values": clusterRole(renderChart(t, "sluice", sluiceNS)),
		"kustomize base":        clusterRole(renderKustomize(t)),
		"deploy/rbac":           clusterRole(parseManifest(t, raw)),
		"chart, watched namespace": into[rbacv1.Role](t, roleIn(t,
			renderChart(t, "sluice", sluiceNS, "watchNamespaces={"+teamA+"}"), "Role", "sluice", teamA)).Rules,
	}
	catalog := catalogtest.Catalog()
	for _, info := range catalog {
		name := info.Name
		installs["chart, routers={"+name+"}"] = clusterRole(renderChart(t, "sluice", sluiceNS,
			"routers={"+name+"}", "controller.defaultRouter="+name))
	}
	for install, granted := range installs {
		for _, info := range catalog {
			if alone := strings.HasPrefix(install, "chart, routers="); alone && install != "chart, routers={"+info.Name+"}" {
				continue
			}
			for _, rule := range info.RBAC {
				if missing := notGranted(granted, rule); len(missing) > 0 {
					t.Errorf("%s: the %s router needs %s, not granted", install, info.Name, strings.Join(missing, ", "))
				}
			}
		}
	}
}

// notGranted lists the verb, resource and group of rule that no rule of granted allows (on every
// object: a grant limited to resourceNames does not count).
func notGranted(granted []rbacv1.PolicyRule, rule rbacv1.PolicyRule) []string {
	allows := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	var missing []string
	for _, group := range rule.APIGroups {
		for _, resource := range rule.Resources {
			for _, verb := range rule.Verbs {
				if !slices.ContainsFunc(granted, func(g rbacv1.PolicyRule) bool {
					return allows(g.APIGroups, group) && allows(g.Resources, resource) && allows(g.Verbs, verb) && len(g.ResourceNames) == 0
				}) {
					missing = append(missing, fmt.Sprintf("%s %s %s", verb, resource, cmp.Or(group, "(core)")))
				}
			}
		}
	}
	return missing
}
