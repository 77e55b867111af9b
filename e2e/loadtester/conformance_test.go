package loadtester

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Payloads from Flagger's documentation (docs/gitbook/usage/webhooks.md of v1.36.1).
const (
	// The webhook payload example.
	docPayload = `{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b","metadata":{"test":"all","token":"16688eb5e9f289f1991c"}}`
	// The body of the documented `curl -d … /gate/open` (and close, rollback/open, rollback/close).
	docGate = `{"name": "podinfo","namespace":"test"}`
)

// hook is a payload of release podinfo.test carrying metadata (a JSON object's inside).
func hook(metadata string) string {
	return `{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b","metadata":{` + metadata + `}}`
}

// step is one request of the conformance table and Flagger's answer to it. sluice, when set,
// is sluice-loadtester's different answer and why it differs (docs/loadtester.md lists them).
type step struct {
	name         string
	method, path string
	body         string
	flagger      answer
	prefix       bool // the body must start with the answer's body (the rest varies)
	sluice       *answer
	why          string
}

// conformance is the table: one sequence (gate state carries from step to step) replayed into
// each tester, both started with -timeout=2s -namespace-regexp=^test.
func conformance(loadTarget string) []step {
	forbidden := answer{403, "Forbidden"}
	approved := answer{200, "Approved"}
	accepted := answer{202, ""}
	bad := answer{400, ""}
	return []step{
		{name: "healthz", method: "GET", path: "/healthz", flagger: answer{200, "OK"}},
		{name: "metrics", method: "GET", path: "/metrics", flagger: answer{200, "# HELP "}, prefix: true},

		// Manual gating (docs: "Manual gating", "Rollback").
		{name: "confirm-rollout to /gate/approve", path: "/gate/approve", body: docPayload, flagger: answer{200, "OK"}},
		{name: "confirm-rollout to /gate/halt", path: "/gate/halt", body: docPayload, flagger: forbidden},
		{name: "gate closed by default", path: "/gate/check", body: docPayload, flagger: forbidden},
		{name: "curl /gate/open", path: "/gate/open", body: docGate, flagger: accepted},
		{name: "gate open", path: "/gate/check", body: docPayload, flagger: approved},
		{name: "gate is per name.namespace", path: "/gate/check", body: `{"name":"podinfo","namespace":"test-b"}`, flagger: forbidden},
		{name: "curl /gate/close", path: "/gate/close", body: docGate, flagger: accepted},
		{name: "gate closed again", path: "/gate/check", body: docPayload, flagger: forbidden},
		{name: "rollback closed by default", path: "/rollback/check", body: docPayload, flagger: forbidden},
		{name: "curl /rollback/open", path: "/rollback/open", body: docGate, flagger: accepted},
		{name: "rollback open", path: "/rollback/check", body: docPayload, flagger: approved},
		{name: "rollback gate apart from the gate", path: "/gate/check", body: docPayload, flagger: forbidden},
		{name: "curl /rollback/close", path: "/rollback/close", body: docGate, flagger: accepted},
		{name: "rollback closed again", path: "/rollback/check", body: docPayload, flagger: forbidden},
		{name: "gate check without a body", method: "GET", path: "/gate/check", flagger: bad},
		{name: "gate open with a broken body", path: "/gate/open", body: `{"name":`, flagger: bad},

		// The namespace allow-list (-namespace-regexp).
		{name: "gate open outside the allow-list", path: "/gate/open", body: `{"name":"podinfo","namespace":"prod"}`, flagger: forbidden},
		{name: "gate check outside the allow-list", path: "/gate/check", body: `{"name":"podinfo","namespace":"prod"}`, flagger: forbidden},
		{name: "rollback check outside the allow-list", path: "/rollback/check", body: `{"name":"podinfo","namespace":"prod"}`, flagger: forbidden},
		{name: "task outside the allow-list", path: "/", body: `{"name":"podinfo","namespace":"prod","metadata":{"type":"bash","cmd":"echo hi"}}`, flagger: forbidden},

		// Tasks (docs: "Load Testing", "Integration Testing").
		{name: "the documented webhook payload (no type, no cmd)", path: "/", body: docPayload, flagger: answer{400, "cmd not found in metadata"}},
		{name: "no metadata", path: "/", body: docGate, flagger: answer{400, "metadata not found in payload"}},
		{name: "not JSON", path: "/", body: "load please", flagger: bad},
		{name: "metadata that is not strings", path: "/", body: hook(`"cmd":"echo","rate":5`), flagger: bad},
		{name: "documented hey load test (cmd)", path: "/", body: hook(`"type":"cmd","cmd":"hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"`), flagger: accepted},
		{name: "documented hey load test again while it runs", path: "/", body: hook(`"type":"cmd","cmd":"hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"`), flagger: accepted},
		{name: "cmd without a type", path: "/", body: hook(`"cmd":"sleep 1"`), flagger: accepted},
		{name: "bash succeeds", path: "/", body: hook(`"type":"bash","cmd":"echo ok"`), flagger: answer{200, ""}},
		{name: "bash returnCmdOutput", path: "/", body: hook(`"type":"bash","cmd":"echo ok","returnCmdOutput":"true"`), flagger: answer{200, "ok\n"}},
		{name: "documented bats acceptance test (bash)", path: "/", body: hook(`"type":"bash","cmd":"bats /tests/acceptance.bats"`),
			flagger: answer{500, "command bats /tests/acceptance.bats failed: bash: line 1: bats: command not found\n: exit status 127"}},
		{name: "bash fails with output", path: "/", body: hook(`"type":"bash","cmd":"echo broken; exit 3"`),
			flagger: answer{500, "command echo broken; exit 3 failed: broken\n: exit status 3"}},
		{name: "bash past the timeout", path: "/", body: hook(`"type":"bash","cmd":"sleep 10"`),
			flagger: answer{500, "command sleep 10 failed: : signal: killed"},
			sluice:  &answer{500, "command sleep 10 failed: : timed out after 2s (signal: killed)"}, why: "the answer says it timed out"},
		{name: "documented helm test (helmv3)", path: "/", body: hook(`"type":"helmv3","cmd":"test podinfo -n test"`),
			flagger: answer{500, `command test podinfo -n test failed: : exec: "helm": executable file not found in $PATH`}},
		{name: "documented helm test (helm)", path: "/", body: hook(`"type":"helm","cmd":"test podinfo --cleanup"`),
			flagger: answer{500, `command test podinfo --cleanup failed: : exec: "helm": executable file not found in $PATH`}},
		{name: "documented kubectl task", path: "/", body: hook(`"type":"kubectl","cmd":"run test --image=alpine"`),
			flagger: answer{500, `command run test --image=alpine failed: : exec: "kubectl": executable file not found in $PATH`}},
		{name: "unknown path is a task post", path: "/nope", body: docPayload, flagger: answer{400, "cmd not found in metadata"}},

		// Where sluice-loadtester answers differently, on purpose.
		{name: "unknown task type", path: "/", body: hook(`"type":"jmeter","cmd":"run"`),
			flagger: answer{},
			sluice:  &answer{400, "unknown task type jmeter (sluice-loadtester runs cmd, bash, helm, helmv3, kubectl, load)"},
			why:     "Flagger's tester panics on an unknown type and drops the connection"},
		{name: "bash without cmd", path: "/", body: hook(`"type":"bash"`),
			flagger: answer{200, ""}, sluice: &answer{400, "cmd not found in metadata"},
			why: "Flagger's runs the empty command and passes the hook"},
		{name: "documented concord task", path: "/", body: hook(`"type":"concord","org":"your-concord-org","project":"your-concord-project","repo":"your-concord-repo","entrypoint":"your-concord-entrypoint","apiKeyPath":"/tmp/concord-api-key","endpoint":"https://canary-endpoint/","pollInterval":"5","pollTimeout":"60"`),
			flagger: answer{500, "`server` is required with type concord"},
			sluice:  &answer{400, "unknown task type concord (sluice-loadtester runs cmd, bash, helm, helmv3, kubectl, load)"},
			why:     "concord tasks are not supported"},
		{name: "documented ngrinder task", path: "/", body: hook(`"type":"ngrinder","server":"http://ngrinder-server:8080","clone":"100","username":"admin","passwd":"YWRtaW4=","pollInterval":"5s"`),
			flagger: accepted,
			sluice:  &answer{400, "unknown task type ngrinder (sluice-loadtester runs cmd, bash, helm, helmv3, kubectl, load)"},
			why:     "ngrinder tasks are not supported"},
		{name: "load task", path: "/", body: hook(`"type":"load","url":"` + loadTarget + `","rate":"20","duration":"500ms"`),
			flagger: answer{},
			sluice:  &answer{200, "load GET " + loadTarget + " for 500ms: 10 requests"}, prefix: true,
			why: "the load task is sluice-loadtester's own (Flagger's drops the connection on the unknown type)"},
	}
}

// TestFlaggerConformance replays Flagger's documented payloads (and the edges around them)
// into Flagger's own load tester and into sluice-loadtester: both must give Flagger's answers,
// except where the table says why not.
func TestFlaggerConformance(t *testing.T) {
	sluice, flagger := sluiceLoadtester(t), flaggerLoadtester(t)
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	steps := conformance(target.URL + "/")
	env := []string{"PATH=" + toolPath(t), "HOME=" + t.TempDir()}
	common := []string{"-timeout=2s", "-namespace-regexp=^test", "-log-level=info"}

	for _, tc := range []struct {
		name, binary string
		args         []string
	}{
		// Flagger's tester takes only -port and binds every interface; the test talks to it
		// on 127.0.0.1.
		{"flagger", flagger, common},
		{"sluice", sluice, append([]string{"-address=127.0.0.1"}, common...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := startTester(t, tc.name+"-loadtester", tc.binary, env, tc.args...)
			for i, st := range steps {
				want := st.flagger
				if tc.name == "sluice" && st.sluice != nil {
					want = *st.sluice
				}
				method := st.method
				if method == "" {
					method = http.MethodPost
				}
				got := tr.call(method, st.path, st.body)
				ok := got.code == want.code && got.body == want.body
				if st.prefix {
					ok = got.code == want.code && strings.HasPrefix(got.body, want.body)
				}
				if !ok {
					why := ""
					if st.why != "" {
						why = fmt.Sprintf(" (differs from Flagger's on purpose: %s)", st.why)
					}
					t.Errorf("step %d %q: %s %s %s\n got %v\nwant %v%s", i, st.name, method, st.path, st.body, got, want, why)
				}
			}
		})
	}
}
