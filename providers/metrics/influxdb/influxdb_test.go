package influxdb

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/providertest"
)

const (
	testOrg   = "acme/ops & co"
	testToken = "test-token"
	testFlux  = `from(bucket: "apps")
  |> range(start: -5m)
  |> filter(fn: (r) => r._measurement == "http_requests" and r.version == "v2" and r.code =~ /5../)
  |> group()
  |> mean()`
)

// Fixtures. Annotated CSV follows the examples at
// https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/ (the "Tables",
// "Multiple tables and results" and "Errors" examples); the plain CSV (header row, no
// annotations, CRLF line ends) is what /api/v2/query answers to a Content-Type:
// application/vnd.flux request, whose dialect has no annotations by default (same page, "Dialect
// options": annotations default empty). Error bodies follow the v2 API's {"code","message"}
// error object (https://docs.influxdata.com/influxdb/v2/api/query-data/), e.g.
// {"code":"unauthorized","message":"unauthorized access"} for HTTP 401.
const (
	annotatedOne = `#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#default,mean,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host,region
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east
`
	docsThreeTables = `#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#default,mean,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host,region
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east
,,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,59.25,mem,m,B,east
,,2,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,52.62,mem,m,C,east
`
	docsTwoSchemas = `#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host,region
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:00:00Z,15.43,mem,m,A,east

#group,false,false,true,true,true,true,false,false,true,true
#datatype,string,long,string,string,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string
#default,_result,,,,,,,,,
,result,table,_field,_measurement,_start,_stop,_time,_value,host,region
,,3,mem_level,m,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:00:00Z,ok,A,east
`
	// Two yield()s, each an annotated table 0; only #default tells the results apart.
	twoYields = `#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double
#group,false,false,true,true,false
#default,canary,,,,
,result,table,_start,_stop,_value
,,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,99.1

#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double
#group,false,false,true,true,false
#default,stable,,,,
,result,table,_start,_stop,_value
,,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,99.8
`
	// An empty cell takes the #default value of its column.
	defaultValue = `#datatype,string,long,double
#group,false,false,false
#default,_result,,0.5
,result,table,_value
,,0,
`
	docsError = `#datatype,string,long
,error,reference
,Failed to parse query,897
`
	plainOne       = ",result,table,_start,_stop,_value\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,99.5\r\n\r\n"
	plainLong      = ",result,table,_start,_stop,_value\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,42\r\n\r\n"
	plainNull      = ",result,table,_start,_stop,_value\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,\r\n\r\n"
	plainNaN       = ",result,table,_start,_stop,_value\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,NaN\r\n\r\n"
	plainInf       = ",result,table,_start,_stop,_value\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,+Inf\r\n\r\n"
	plainString    = ",result,table,_start,_stop,_value\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,ok\r\n\r\n"
	plainTwoRows   = ",result,table,_time,_value\r\n,_result,0,2023-01-01T00:04:00Z,99.1\r\n,_result,0,2023-01-01T00:05:00Z,99.5\r\n\r\n"
	plainNoValue   = ",result,table,_start,_stop,mean\r\n,_result,0,2023-01-01T00:00:00Z,2023-01-01T00:05:00Z,99.5\r\n\r\n"
	plainErrorTag  = ",result,table,error,_value\r\n,_result,0,timeout,3\r\n\r\n"
	plainEmpty     = "\r\n"
	plainMidStream = ",result,table,_value\r\n,_result,0,1\r\n\r\n,error,reference\r\n,\"panic: runtime error: out of memory\",\r\n\r\n"
	errCompile     = `{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier form"}`
	errUnauth      = `{"code":"unauthorized","message":"unauthorized access"}`
	errOrgMissing  = `{"code":"not found","message":"organization name \"acme/ops & co\" not found"}`
)

func checkRequest(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.Method)
	}
	if r.URL.Path != "/api/v2/query" {
		t.Errorf("path = %q, want /api/v2/query", r.URL.Path)
	}
	if strings.ContainsAny(r.URL.RawQuery, " /") {
		t.Errorf("raw query %q is not escaped", r.URL.RawQuery)
	}
	if got := r.URL.Query()["org"]; len(got) != 1 || got[0] != testOrg {
		t.Errorf("org = %q, want [%q]", got, testOrg)
	}
	for h, want := range map[string]string{
		"Authorization": "Token " + testToken,
		"Content-Type":  "application/vnd.flux",
		"Accept":        "application/csv",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read body: %v", err)
	}
	if string(body) != testFlux {
		t.Errorf("body = %q, want the Flux script %q", body, testFlux)
	}
}

func newProvider(t *testing.T, o Options) *Provider {
	t.Helper()
	if o.Org == "" {
		o.Org = testOrg
	}
	if o.Token == "" {
		o.Token = testToken
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func checkErr(t *testing.T, err, wantErr error, wantText []string) {
	t.Helper()
	providertest.CheckErr(t, err, wantErr, wantText...)
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		opts         Options
		wantErr      string
		wantEndpoint string
	}{
		"org is escaped into the endpoint": {
			opts:         Options{Address: "http://influxdb:8086", Org: "acme & co", Token: "t"},
			wantEndpoint: "http://influxdb:8086/api/v2/query?org=acme+%26+co",
		},
		"path prefix kept": {
			opts:         Options{Address: "https://proxy.example/influx/", Org: "o", Token: "t"},
			wantEndpoint: "https://proxy.example/influx/api/v2/query?org=o",
		},
		"missing address":        {opts: Options{Org: "o", Token: "t"}, wantErr: "Address is required"},
		"address without scheme": {opts: Options{Address: "influxdb:8086", Org: "o", Token: "t"}, wantErr: "Address"},
		"missing org":            {opts: Options{Address: "http://influxdb:8086", Token: "t"}, wantErr: "Org is required"},
		"missing token":          {opts: Options{Address: "http://influxdb:8086", Org: "o"}, wantErr: "Token is required"},
		"negative timeout":       {opts: Options{Address: "http://influxdb:8086", Org: "o", Token: "t", Timeout: -1}, wantErr: "Timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := New(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := p.endpoint.String(); got != tc.wantEndpoint {
				t.Errorf("endpoint = %q, want %q", got, tc.wantEndpoint)
			}
			if p.timeout != DefaultTimeout {
				t.Errorf("timeout = %s, want %s", p.timeout, DefaultTimeout)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	tests := map[string]struct {
		status   int
		body     string
		want     float64
		wantErr  error
		wantText []string
	}{
		"one annotated record":                    {status: http.StatusOK, body: annotatedOne, want: 15.43},
		"one plain record (vnd.flux default)":     {status: http.StatusOK, body: plainOne, want: 99.5},
		"long _value":                             {status: http.StatusOK, body: plainLong, want: 42},
		"a tag named error is not an error table": {status: http.StatusOK, body: plainErrorTag, want: 3},
		"null _value is no data": {
			status: http.StatusOK, body: plainNull, wantErr: metrics.ErrNoData, wantText: []string{"null"},
		},
		"NaN is no data": {
			status: http.StatusOK, body: plainNaN, wantErr: metrics.ErrNoData, wantText: []string{"NaN"},
		},
		"+Inf is no data": {
			status: http.StatusOK, body: plainInf, wantErr: metrics.ErrNoData, wantText: []string{"Inf"},
		},
		"empty answer is no data": {
			status: http.StatusOK, body: plainEmpty, wantErr: metrics.ErrNoData, wantText: []string{"no records"},
		},
		"two rows in one table are refused": {
			status: http.StatusOK, body: plainTwoRows, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 records in 1 table;"},
		},
		"three tables are refused": {
			status: http.StatusOK, body: docsThreeTables, wantErr: metrics.ErrMultipleSeries, wantText: []string{"3 records in 3 tables"},
		},
		"two yields are two tables, told apart by #default": {
			status: http.StatusOK, body: twoYields, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 records in 2 tables"},
		},
		"#default fills an empty _value": {status: http.StatusOK, body: defaultValue, want: 0.5},
		"two schemas are refused": {
			status: http.StatusOK, body: docsTwoSchemas, wantErr: metrics.ErrMultipleSeries, wantText: []string{"2 records in 2 tables"},
		},
		"string _value is an error": {
			status: http.StatusOK, body: plainString, wantText: []string{`"ok" is not a number`},
		},
		"no _value column is an error": {
			status: http.StatusOK, body: plainNoValue, wantText: []string{"no _value column"},
		},
		"error table carries its message": {
			status: http.StatusOK, body: docsError, wantText: []string{"Failed to parse query", "reference 897"},
		},
		"error after partial results carries its message": {
			status: http.StatusOK, body: plainMidStream, wantText: []string{"out of memory"},
		},
		"HTTP 400 carries code and message": {
			status: http.StatusBadRequest, body: errCompile, wantText: []string{"HTTP 400", "invalid: compilation failed", "undefined identifier form"},
		},
		"HTTP 401 names authentication": {
			status: http.StatusUnauthorized, body: errUnauth, wantText: []string{"authentication failed", "HTTP 401", "unauthorized access", "token"},
		},
		"HTTP 403 names authentication": {
			status: http.StatusForbidden, body: `{"code":"forbidden","message":"insufficient permissions for read:orgs/x/buckets/y"}`, wantText: []string{"authentication failed", "HTTP 403", "insufficient permissions"},
		},
		"HTTP 404 carries the message": {
			status: http.StatusNotFound, body: errOrgMissing, wantText: []string{"HTTP 404", "organization name"},
		},
		"non-JSON error body is quoted": {
			status: http.StatusBadGateway, body: "bad gateway", wantText: []string{"HTTP 502", "bad gateway"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r)
				if tc.status == http.StatusOK {
					w.Header().Set("Content-Type", "text/csv; charset=utf-8")
				} else {
					w.Header().Set("Content-Type", "application/json; charset=utf-8")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			p := newProvider(t, Options{Address: srv.URL})

			got, err := p.Query(t.Context(), testFlux)
			if tc.wantErr == nil && tc.wantText == nil {
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if got != tc.want {
					t.Errorf("Query = %v, want %v", got, tc.want)
				}
				return
			}
			checkErr(t, err, tc.wantErr, tc.wantText)
		})
	}
}

// A server that sends the header and then stalls mid-body is a timeout too, not a parse error.
func TestQueryTimeoutMidBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(",result,table,_value\r\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	p := newProvider(t, Options{Address: srv.URL, Timeout: 100 * time.Millisecond})

	_, err := p.Query(t.Context(), testFlux)
	checkErr(t, err, metrics.ErrUnreachable, []string{"no answer within 100ms"})
}

// FuzzParseCSV: no answer body makes the CSV reader panic.
func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{annotatedOne, twoYields, defaultValue, docsThreeTables, docsTwoSchemas, docsError, plainOne, plainNull, plainMidStream, plainErrorTag, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = parseCSV(body)
	})
}

// TestTransport: unreachable, timeout, caller cancel and connection reuse, as every HTTP
// provider must handle them.
func TestTransport(t *testing.T) {
	providertest.Transport{
		New: func(address string, timeout time.Duration) (metrics.Provider, error) {
			return New(Options{Address: address, Timeout: timeout, Org: testOrg, Token: testToken})
		},
		Query: testFlux,
		OK:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(plainOne)) },
	}.Run(t)
}
