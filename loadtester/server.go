package loadtester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/singleflight"
)

// Payload is the body a hook POSTs: Flagger's CanaryWebhookPayload (Sluice's hooks send the
// same, plus `type`). Unknown fields are ignored, as Flagger's tester ignores them.
type Payload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Type      string            `json:"type,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// release is the key Flagger's tester uses for gates and de-duplication.
func (p Payload) release() string { return p.Name + "." + p.Namespace }

// maxPayload bounds a request body; a hook payload is a few hundred bytes.
const maxPayload = 1 << 20

// Authorizer decides which namespaces may use the tester. The zero value allows every one.
type Authorizer struct {
	// Namespaces allowed by name.
	Namespaces []string
	// Regexp allowed by match (unanchored, as Flagger's -namespace-regexp).
	Regexp *regexp.Regexp
}

// Allows reports whether namespace may use the tester: no restriction is set, or it is listed,
// or it matches.
func (a Authorizer) Allows(namespace string) bool {
	if len(a.Namespaces) == 0 && a.Regexp == nil {
		return true
	}
	return slices.Contains(a.Namespaces, namespace) || (a.Regexp != nil && a.Regexp.MatchString(namespace))
}

// Server serves the load tester API. Build it with New.
type Server struct {
	gates   GateStore
	runner  *Runner
	auth    Authorizer
	timeout time.Duration
	log     logr.Logger
	metrics *Metrics
	loads   singleflight.Group
	mux     *http.ServeMux
}

// Config is what New needs.
type Config struct {
	Gates GateStore // default: MemoryGates
	Auth  Authorizer
	// Timeout bounds every task (Flagger's -timeout, default one hour there).
	Timeout time.Duration
	Log     logr.Logger
	Metrics *Metrics // default: NewMetrics()
}

// New returns a Server; Close stops its background commands.
func New(c Config) *Server {
	if c.Gates == nil {
		c.Gates = &MemoryGates{}
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Hour
	}
	s := &Server{
		gates: c.Gates, auth: c.Auth, timeout: c.Timeout, log: c.Log, metrics: c.Metrics,
		runner: NewRunner(c.Timeout, c.Log.WithName("cmd"), c.Metrics),
		mux:    http.NewServeMux(),
	}
	handle := func(path string, h http.HandlerFunc) { s.mux.Handle(path, s.metrics.instrument(path, h)) }
	handle("/metrics", s.metrics.Handler().ServeHTTP)
	handle("/healthz", func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, "OK") })
	handle("/gate/approve", func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusOK, "OK") })
	handle("/gate/halt", func(w http.ResponseWriter, _ *http.Request) { answer(w, http.StatusForbidden, "Forbidden") })
	handle("/gate/check", s.gateCheck("gate", ""))
	handle("/gate/open", s.gateSet("gate", "", true))
	handle("/gate/close", s.gateSet("gate", "", false))
	handle("/rollback/check", s.gateCheck("rollback", "rollback."))
	handle("/rollback/open", s.gateSet("rollback", "rollback.", true))
	handle("/rollback/close", s.gateSet("rollback", "rollback.", false))
	handle("/", s.task)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close kills the running background commands and waits for them (at most ctx).
func (s *Server) Close(ctx context.Context) error { return s.runner.Close(ctx) }

// Running reports whether the background command of name.namespace is running.
func (s *Server) Running(release, command string) bool { return s.runner.Running(release, command) }

func answer(w http.ResponseWriter, code int, body string) {
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// payload decodes the request as Flagger's tester does: an unreadable or undecodable body is
// a bare 400, a namespace outside the allow-list a 403 "Forbidden". ok is false when it
// answered.
func (s *Server) payload(w http.ResponseWriter, r *http.Request) (p Payload, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil {
		s.log.V(1).Info("refused an undecodable payload", "path", r.URL.Path, "error", err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return Payload{}, false
	}
	if !s.auth.Allows(p.Namespace) {
		s.log.Info("refused a namespace outside the allow-list", "path", r.URL.Path, "namespace", p.Namespace, "name", p.Name)
		answer(w, http.StatusForbidden, "Forbidden")
		return Payload{}, false
	}
	return p, true
}

func (s *Server) gateCheck(kind, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.payload(w, r)
		if !ok {
			return
		}
		key := prefix + p.release()
		open, err := s.gates.IsOpen(r.Context(), key)
		switch {
		case errors.Is(err, ErrBadGateKey):
			s.metrics.gateCheck(kind, "error")
			answer(w, http.StatusBadRequest, err.Error())
		case err != nil:
			s.metrics.gateCheck(kind, "error")
			s.log.Error(err, "gate check failed", "gate", key)
			answer(w, http.StatusServiceUnavailable, err.Error())
		case open:
			s.metrics.gateCheck(kind, GateOpen)
			answer(w, http.StatusOK, "Approved")
		default:
			s.metrics.gateCheck(kind, GateClosed)
			answer(w, http.StatusForbidden, "Forbidden")
		}
		if err == nil {
			s.log.Info(kind+" check", "gate", key, "approved", open)
		}
	}
}

func (s *Server) gateSet(kind, prefix string, open bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.payload(w, r)
		if !ok {
			return
		}
		key := prefix + p.release()
		switch err := s.gates.Set(r.Context(), key, open); {
		case errors.Is(err, ErrBadGateKey):
			answer(w, http.StatusBadRequest, err.Error())
		case err != nil:
			s.log.Error(err, "gate change failed", "gate", key)
			answer(w, http.StatusServiceUnavailable, err.Error())
		default:
			s.metrics.gateChange(kind, open)
			s.log.Info(kind+" changed", "gate", key, "open", open)
			w.WriteHeader(http.StatusAccepted)
		}
	}
}

// task runs the task the metadata names (see the package documentation).
func (s *Server) task(w http.ResponseWriter, r *http.Request) {
	p, ok := s.payload(w, r)
	if !ok {
		return
	}
	if len(p.Metadata) == 0 {
		answer(w, http.StatusBadRequest, "metadata not found in payload")
		return
	}
	typ, ok := p.Metadata["type"]
	if !ok {
		typ = TaskCmd
	}
	command, hasCmd := p.Metadata["cmd"]
	returnOutput, _ := strconv.ParseBool(p.Metadata["returnCmdOutput"])
	log := s.log.WithValues("release", p.release(), "type", typ)

	switch typ {
	case TaskCmd:
		if !hasCmd {
			answer(w, http.StatusBadRequest, "cmd not found in metadata")
			return
		}
		logOutput, _ := strconv.ParseBool(p.Metadata["logCmdOutput"])
		s.runner.Start(p.release(), command, logOutput)
		w.WriteHeader(http.StatusAccepted)
	case TaskBash, TaskHelm, TaskHelmv3, TaskKubectl:
		if !hasCmd {
			answer(w, http.StatusBadRequest, "cmd not found in metadata")
			return
		}
		argv := []string{"bash", "-c", command}
		switch typ {
		case TaskHelm, TaskHelmv3:
			argv = append([]string{"helm"}, strings.Fields(command)...)
		case TaskKubectl:
			argv = append([]string{"kubectl"}, strings.Fields(command)...)
		}
		s.blocking(w, r, log, typ, command, argv, returnOutput)
	case TaskLoad:
		s.load(w, r, log, p)
	default:
		answer(w, http.StatusBadRequest, fmt.Sprintf("unknown task type %s (sluice-loadtester runs %s)", typ,
			strings.Join([]string{TaskCmd, TaskBash, TaskHelm, TaskHelmv3, TaskKubectl, TaskLoad}, ", ")))
	}
}

// blocking runs a command and answers with its outcome, in Flagger's words: 200 (with the
// output when asked), or 500 "command CMD failed: OUTPUT: ERROR". A caller that hangs up
// cancels the command: nobody would read its answer.
func (s *Server) blocking(w http.ResponseWriter, r *http.Request, log logr.Logger, typ, command string, argv []string, returnOutput bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	log = log.WithValues("command", command)
	log.Info("running command")
	start := time.Now()
	s.metrics.running(typ, 1)
	out, err := runCommand(ctx, s.timeout, argv...)
	s.metrics.running(typ, -1)
	if err != nil {
		s.metrics.task(typ, ResultFailed, time.Since(start))
		log.Error(err, "command failed", "output", string(out))
		answer(w, http.StatusInternalServerError, fmt.Sprintf("command %s failed: %s: %v", command, out, err))
		return
	}
	s.metrics.task(typ, ResultSucceeded, time.Since(start))
	log.Info("command finished")
	w.WriteHeader(http.StatusOK)
	if returnOutput {
		_, _ = w.Write(out)
	}
}

// load runs a load task and answers 200 with its report, or 500 "load test failed: WHY" with
// it. The same load of the same release asked again while it runs (a hook retried after a
// timeout) joins the running one instead of doubling the load; the load itself runs to its end
// even when every caller has gone.
func (s *Server) load(w http.ResponseWriter, r *http.Request, log logr.Logger, p Payload) {
	spec, err := ParseLoad(p.Metadata, s.timeout)
	if err != nil {
		answer(w, http.StatusBadRequest, "invalid load task: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	key := p.release() + "\x00" + loadKey(p.Metadata)
	ch := s.loads.DoChan(key, func() (any, error) {
		log.Info("load starting", "url", spec.URL.Redacted(), "rate", spec.Rate, "duration", spec.Duration.String())
		start := time.Now()
		s.metrics.running(TaskLoad, 1)
		defer s.metrics.running(TaskLoad, -1)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.timeout)
		defer cancel()
		res, err := RunLoad(ctx, spec)
		s.metrics.loadResult(res.Requests-res.Errors, res.Errors)
		why := Judge(spec, res)
		if err != nil {
			why = append([]string{err.Error()}, why...)
		}
		result := ResultSucceeded
		if len(why) > 0 {
			result = ResultFailed
		}
		s.metrics.task(TaskLoad, result, time.Since(start))
		report := Report(spec, res)
		log.Info("load finished", "result", result, "report", report)
		return loadOutcome{why: why, report: report}, nil
	})
	select {
	case <-r.Context().Done():
		return
	case res := <-ch:
		o := res.Val.(loadOutcome)
		if len(o.why) > 0 {
			answer(w, http.StatusInternalServerError, "load test failed: "+strings.Join(o.why, "; ")+"\n"+o.report)
			return
		}
		answer(w, http.StatusOK, o.report)
	}
}

type loadOutcome struct {
	why    []string
	report string
}

// loadKey is a canonical text of the metadata, so equal loads share one run.
func loadKey(meta map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		fmt.Fprintf(&b, "%q=%q;", k, meta[k])
	}
	return b.String()
}
