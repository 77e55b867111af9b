// Package loadtester is sluice-loadtester's HTTP server: Flagger's load tester API (so a hook
// written for Flagger's tester works unchanged against it, and Sluice's hooks can target
// either), plus a built-in `load` task that generates HTTP load in-process and judges it.
//
// It exists because a release's hooks need something to call: a gate a human opens, a smoke
// test to run, traffic for a canary that gets none. Flagger ships that as a separate image with
// `hey` and shell tools inside; sluice-loadtester keeps the API and answers (status codes and
// body texts, gate keys `name.namespace`, background `cmd` tasks de-duplicated per name,
// namespace and command, blocking `bash` tasks), and adds what Flagger's lacks: gate state that
// survives a restart (GateStore; a ConfigMap in the cluster), load generation without an
// external binary, commands killed with their whole process group at the timeout, and metrics.
//
// The API (every path answers every method, as Flagger's does; unknown paths are task posts):
//
//	POST /                hook payload {name, namespace, phase, checksum, metadata}; metadata.type:
//	                        cmd (default)  sh -c metadata.cmd in the background → 202; the same
//	                                       command of the same name.namespace is not started
//	                                       twice while it runs
//	                        bash           bash -c metadata.cmd, blocking → 200 (output only with
//	                                       returnCmdOutput: "true") or 500 "command … failed: OUTPUT: …"
//	                        helm, helmv3, kubectl   `helm …` / `kubectl …`, blocking, as bash
//	                        load           HTTP load in-process, blocking → 200 report or 500
//	                                       "load test failed: …" (see ParseLoad for the fields)
//	/gate/check           200 "Approved" when the gate name.namespace is open, else 403 "Forbidden"
//	/gate/open, /gate/close          202 (gates start closed)
//	/gate/approve         200 "OK" (always)      /gate/halt   403 "Forbidden" (always)
//	/rollback/check|open|close       the same for the gate rollback.name.namespace
//	/healthz              200 "OK"               /metrics     Prometheus text format
//
// A gate is a key in the GateStore:
//
//	          /gate/open                 /gate/check → 200 Approved
//	closed ───────────────▶ open  ◀──┐
//	(default) ◀───────────────    ───┘
//	          /gate/close          /gate/check on closed → 403 Forbidden
//
// Bad input is answered as Flagger answers it (an undecodable body is a bare 400, a namespace
// outside the allow-list a 403 "Forbidden", a payload without metadata 400 "metadata not found
// in payload"), except where Flagger's answer hides a mistake: an unknown task type is a 400
// naming it (Flagger's tester drops the connection), a `bash` task without `cmd` a 400 (Flagger
// runs the empty command and answers 200). docs/loadtester.md lists every difference.
package loadtester
